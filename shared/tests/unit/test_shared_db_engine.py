from typing import Any

import pytest

from signup_shared import db


def test_engines_hide_bound_parameters_from_error_text(monkeypatch: pytest.MonkeyPatch) -> None:
    # Error text is logged and copied into dead-letter headers; parameters are emails and names.
    created: dict[str, Any] = {}
    monkeypatch.setattr(db, "create_engine", lambda url, **options: created.update(options))
    db.make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert created["hide_parameters"] is True
