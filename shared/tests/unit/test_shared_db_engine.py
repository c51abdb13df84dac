from signup_shared.db import make_engine


def test_engines_hide_bound_parameters_from_error_text() -> None:
    # Error text is logged and copied into dead-letter headers; parameters are emails and names.
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        assert engine.hide_parameters is True
    finally:
        engine.dispose()
