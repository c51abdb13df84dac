from datetime import UTC, datetime

import pytest
from sqlalchemy.exc import DataError, OperationalError

from signup_contracts import amqp
from signup_shared.errors import PermanentError, PoisonMessageError, TransientError
from signup_shared.messaging import failures
from signup_shared.messaging.failures import Action


def test_permanent_failures_are_dead_lettered_at_once() -> None:
    decision = failures.decide(PoisonMessageError("bad"), previous_attempts=0, retry_slots=3)
    assert (decision.action, decision.kind, decision.attempt) == (
        Action.DEAD_LETTER,
        "permanent",
        1,
    )


@pytest.mark.parametrize(
    "previous,action", [(0, Action.RETRY), (2, Action.RETRY), (3, Action.DEAD_LETTER)]
)
def test_transient_failures_retry_until_the_slots_are_used(previous: int, action: Action) -> None:
    decision = failures.decide(TransientError("later"), previous_attempts=previous, retry_slots=3)
    assert decision.action is action
    assert decision.attempt == previous + 1


def test_exhausted_retries_say_so() -> None:
    assert failures.decide(RuntimeError("bug"), 3, 3).kind == "exhausted"


def test_in_process_retry_only_for_transient_kinds() -> None:
    assert failures.is_transient(OperationalError("select", {}, Exception("down")))
    assert failures.is_transient(ConnectionRefusedError())
    assert not failures.is_transient(PermanentError("no"))
    assert not failures.is_transient(KeyError("bug"))


def test_attempts_header_tolerates_garbage() -> None:
    assert failures.attempts_so_far({"x-signup-attempts": 2}) == 2
    assert failures.attempts_so_far({"x-signup-attempts": "x"}) == 0
    assert failures.attempts_so_far(None) == 0


def test_failure_headers_keep_the_first_failure_and_origin() -> None:
    first = datetime(2026, 1, 1, tzinfo=UTC)
    later = datetime(2026, 1, 2, tzinfo=UTC)
    decision = failures.decide(TransientError("smtp 421"), 0, 3)
    headers = failures.failure_headers(
        {"x-event-version": 1},
        decision,
        service="notifications",
        queue="notifications.user_signed_up",
        exchange="events",
        routing_key="accounts.user_signed_up",
        now=first,
    )
    again = failures.failure_headers(
        headers,
        failures.decide(TransientError("x"), 1, 3),
        service="notifications",
        queue="notifications.user_signed_up",
        exchange="",
        routing_key="notifications.user_signed_up.retry.1s",
        now=later,
    )
    assert again[amqp.FIRST_FAILURE_AT_HEADER] == first.isoformat()
    assert again[amqp.LAST_FAILURE_AT_HEADER] == later.isoformat()
    assert again[amqp.ORIGINAL_ROUTING_KEY_HEADER] == "accounts.user_signed_up"
    assert again[amqp.ORIGINAL_EXCHANGE_HEADER] == "events"
    assert again[amqp.ATTEMPTS_HEADER] == 2
    assert again[amqp.ERROR_TYPE_HEADER] == "TransientError"
    assert again["x-event-version"] == 1


class PgError(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__("pg")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    "sqlstate,outage",
    [(None, True), ("08006", True), ("57P01", True), ("40001", False), ("40P01", False)],
)
def test_outage_is_the_database_being_unreachable(sqlstate: str | None, outage: bool) -> None:
    assert failures.is_outage(OperationalError("select", {}, PgError(sqlstate))) is outage


def test_other_errors_are_not_outages() -> None:
    assert not failures.is_outage(TransientError("smtp"))
    assert not failures.is_outage(ConnectionRefusedError())


def test_error_text_keeps_only_the_primary_message_of_a_database_error() -> None:
    orig = Exception(
        "unsupported Unicode escape sequence\nDETAIL:  \\u0000 cannot be converted to text.\n"
        'CONTEXT:  JSON data, line 1: {"full_name": "Ada Lovelace", "email": "ada@example.com"}'
    )
    error = DataError("INSERT INTO notifications ... %(full_name)s", {"full_name": "Ada"}, orig)
    assert failures.error_text(error) == "unsupported Unicode escape sequence"


def test_error_text_scrubs_contact_details_and_survives_unprintable_errors() -> None:
    class Unprintable(Exception):
        def __str__(self) -> str:
            raise RuntimeError

    assert failures.error_text(PermanentError("refused ada@example.com")) == "refused <email>"
    assert failures.error_text(Unprintable()) == "<unprintable Unprintable>"
    assert len(failures.error_text(RuntimeError("x" * 5000))) == failures.MAX_ERROR_MESSAGE
