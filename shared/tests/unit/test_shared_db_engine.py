from typing import Any

import pytest

from signup_shared import db


def test_engines_hide_bound_parameters_from_error_text(monkeypatch: pytest.MonkeyPatch) -> None:
    # Error text is logged and copied into dead-letter headers; parameters are emails and names.
    created: dict[str, Any] = {}
    monkeypatch.setattr(db, "create_engine", lambda url, **options: created.update(options))
    monkeypatch.setattr(db, "ping_idle_connections", lambda engine, after: None)
    db.make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert created["hide_parameters"] is True


def test_engines_do_not_ping_on_every_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    created: dict[str, Any] = {}
    monkeypatch.setattr(db, "create_engine", lambda url, **options: created.update(options))
    monkeypatch.setattr(db, "ping_idle_connections", lambda engine, after: None)
    db.make_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert not created.get("pool_pre_ping")


@pytest.mark.parametrize(
    ("last_used", "now", "expected"),
    [(None, 100.0, False), (99.5, 100.0, False), (99.0, 100.0, True), (10.0, 100.0, True)],
)
def test_a_connection_is_pinged_only_after_sitting_unused(
    last_used: float | None, now: float, expected: bool
) -> None:
    assert db.needs_ping(last_used, now, after=1.0) is expected
