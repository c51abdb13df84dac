import pytest
import structlog

from signup_shared.logging import (
    correlation_scope,
    current_correlation_id,
    mask,
    mask_personal_data,
)


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


def test_correlation_scope_binds_and_restores() -> None:
    structlog.contextvars.clear_contextvars()
    with correlation_scope("abc") as cid:
        assert cid == "abc"
        assert current_correlation_id() == "abc"
        with correlation_scope(None) as inner:
            assert current_correlation_id() == inner != "abc"
        assert current_correlation_id() == "abc"
    assert current_correlation_id() is None
