import io
import json
import logging
import re
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog

from signup_shared.logging import (
    configure_logging,
    correlation_scope,
    current_correlation_id,
    mask,
    mask_personal_data,
    scrub,
)
from signup_shared.redact import EMAIL_MASK, PHONE_MASK

ADA = "ada.lovelace@example.com"
PHONE = "+14155550123"


@pytest.mark.parametrize(
    "value,masked",
    [("ada@example.com", "a***@example.com"), ("+14155550123", "+*********23"), ("Ada", "A***")],
)
def test_mask(value: str, masked: str) -> None:
    assert mask(value) == masked


def test_processor_masks_only_personal_keys() -> None:
    event = {"event": "x", "email": "ada@example.com", "phone": "+14155550123", "plan": "pro"}
    assert mask_personal_data(None, "info", event) == {
        "event": "x",
        "email": "a***@example.com",
        "phone": "+*********23",
        "plan": "pro",
    }


def test_full_names_are_masked_by_key_since_no_pattern_finds_them() -> None:
    event = mask_personal_data(None, "info", {"event": "x", "full_name": "Ada Lovelace"})
    assert event["full_name"] == "A***"


def test_processor_scrubs_every_value_by_pattern() -> None:
    user_id = str(uuid.uuid4())
    event = mask_personal_data(
        None,
        "warning",
        {
            "event": f"signup by {ADA} failed",
            "error": f"IntegrityError: Key (email)=({ADA}) exists; sms to {PHONE}",
            "reason": ValueError(f"bad recipient {PHONE}"),
            "recipients": [ADA, PHONE],
            "body": {"email": ADA, "note": f"call {PHONE}", "items": ({"to": PHONE},)},
            "user_id": user_id,
            "attempt": 3,
            "elapsed": 0.25,
            "ok": True,
            "nothing": None,
        },
    )
    assert event == {
        "event": f"signup by {EMAIL_MASK} failed",
        "error": f"IntegrityError: Key (email)=({EMAIL_MASK}) exists; sms to {PHONE_MASK}",
        "reason": f"ValueError: bad recipient {PHONE_MASK}",
        "recipients": [EMAIL_MASK, PHONE_MASK],
        "body": {
            "email": "a***@example.com",
            "note": f"call {PHONE_MASK}",
            "items": [{"to": "+*********23"}],
        },
        "user_id": user_id,
        "attempt": 3,
        "elapsed": 0.25,
        "ok": True,
        "nothing": None,
    }


def test_scrub_makes_any_value_renderable() -> None:
    class Opaque:
        def __repr__(self) -> str:
            return f"<Opaque {ADA}>"

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert scrub(Opaque()) == f"<Opaque {EMAIL_MASK}>"
    assert scrub(2**80) == str(2**80)  # beyond what orjson renders as a number
    assert scrub(-(2**63)) == -(2**63)
    assert scrub(Unprintable()) == "Unprintable: <unprintable Unprintable>"
    deep: Any = [[[[[[ADA]]]]]]
    assert ADA not in json.dumps(scrub(deep))


# --- configure_logging: what really reaches stderr ------------------------------------------


@pytest.fixture
def logs(capsys: pytest.CaptureFixture[str]) -> Iterator[pytest.CaptureFixture[str]]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    access = logging.getLogger("uvicorn.access")
    saved_access = access.handlers[:], access.propagate, access.disabled
    saved_structlog = structlog.get_config()
    yield capsys
    structlog.configure(**saved_structlog)  # the session's (root conftest), not the defaults
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    access.handlers[:], access.propagate, access.disabled = saved_access


def json_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().err.splitlines()]


def test_json_lines_with_service_level_timestamp_and_correlation_id(
    logs: pytest.CaptureFixture[str],
) -> None:
    configure_logging("notifications-consume", "INFO", "json")
    log = structlog.get_logger()
    with correlation_scope("c-1"):
        log.info("message.handled", queue="q", attempt=1, email=ADA)
        log.debug("message.details", queue="q")
    [line] = json_lines(logs)
    assert line["event"] == "message.handled"
    assert line["service"] == "notifications-consume"
    assert line["level"] == "info"
    assert line["correlation_id"] == "c-1"
    assert line["email"] == "a***@example.com"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["timestamp"])
    stamped = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - stamped).total_seconds()) < 5


def test_exception_text_and_traceback_are_scrubbed(logs: pytest.CaptureFixture[str]) -> None:
    configure_logging("accounts-web", "INFO", "json")
    try:
        raise RuntimeError(f"insert failed for {ADA} / {PHONE}")
    except RuntimeError as exc:
        structlog.get_logger().exception("signup.failed", error=str(exc))
    [line] = json_lines(logs)
    assert line["level"] == "error"
    assert "Traceback" in line["exception"]
    assert "RuntimeError: insert failed for <email> / <phone>" in line["exception"]
    assert line["error"] == "insert failed for <email> / <phone>"


def test_stdlib_records_go_through_the_same_masking_and_renderer(
    logs: pytest.CaptureFixture[str],
) -> None:
    configure_logging("accounts-web", "INFO", "json")
    try:
        raise ValueError(f"bad {PHONE}")
    except ValueError:
        logging.getLogger("uvicorn.error").error("Exception in ASGI app for %s", ADA, exc_info=True)
    logging.getLogger("sqlalchemy.engine").warning("pool for %s", ADA)
    logging.getLogger("kombu").info("library chatter below WARNING is not rendered")
    logging.getLogger("uvicorn.access").warning('127.0.0.1 - "POST /signups" 201')
    first, second = json_lines(logs)
    assert first["event"] == "Exception in ASGI app for <email>"
    assert first["logger"] == "uvicorn.error"
    assert first["service"] == "accounts-web"
    assert first["exception"].endswith("ValueError: bad <phone>")
    assert second == {**second, "event": "pool for <email>", "level": "warning"}


def test_console_renderer_only_when_asked_and_still_masked(
    logs: pytest.CaptureFixture[str],
) -> None:
    configure_logging("stats-web", "INFO", "console")
    structlog.get_logger().info("request.failed", error=f"no such user {ADA}")
    err = logs.readouterr().err
    assert not err.startswith("{")
    assert "request.failed" in err
    assert "<email>" in err
    assert ADA not in err


def test_auto_format_is_json_when_stderr_is_not_a_terminal(
    logs: pytest.CaptureFixture[str],
) -> None:
    configure_logging("stats-web")
    structlog.get_logger().warning("x.y")
    assert json_lines(logs)[0]["event"] == "x.y"


def test_unrenderable_values_never_break_the_caller(logs: pytest.CaptureFixture[str]) -> None:
    configure_logging("stats-consume", "INFO", "json")
    structlog.get_logger().info("odd", name="\ud800", attempts=2**70)
    [line] = json_lines(logs)
    assert line["attempts"] == str(2**70)
    assert line["name"] == "\ud800"


def test_a_text_only_stderr_gets_the_same_json(
    logs: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text_only = io.StringIO()
    monkeypatch.setattr(sys, "stderr", text_only)
    configure_logging("stats-web", "INFO", "json")
    structlog.get_logger().info("x.y", error=f"for {PHONE}")
    logging.getLogger("kombu").error("lost %s", ADA)
    first, second = (json.loads(line) for line in text_only.getvalue().splitlines())
    assert (first["event"], first["error"]) == ("x.y", "for <phone>")
    assert (second["event"], second["logger"]) == ("lost <email>", "kombu")


def test_correlation_scope_binds_and_restores() -> None:
    structlog.contextvars.clear_contextvars()
    with correlation_scope("abc") as cid:
        assert cid == "abc"
        assert current_correlation_id() == "abc"
        with correlation_scope(None) as inner:
            assert current_correlation_id() == inner != "abc"
        assert current_correlation_id() == "abc"
    assert current_correlation_id() is None
