"""What to do with a message whose handling failed: retry later or dead-letter, and the headers.

Permanent failures (poison, validation, a provider's definitive refusal) go straight to the
dead-letter queue. Anything else counts as transient: it is retried in process a few times,
then through the broker's delay queues, and dead-lettered once those are used up. Attempts are
counted in our own header rather than in ``x-death`` (whose counting changed in RabbitMQ 3.13).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from pydantic import ValidationError
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from signup_contracts.amqp import (
    ATTEMPTS_HEADER,
    ERROR_MESSAGE_HEADER,
    ERROR_TYPE_HEADER,
    FAILURE_KIND_HEADER,
    FIRST_FAILURE_AT_HEADER,
    LAST_FAILURE_AT_HEADER,
    ORIGINAL_EXCHANGE_HEADER,
    ORIGINAL_QUEUE_HEADER,
    ORIGINAL_ROUTING_KEY_HEADER,
    SERVICE_HEADER,
)
from signup_shared.errors import PermanentError, TransientError
from signup_shared.messaging.wire import header_int, sanitize_headers, short_text
from signup_shared.redact import redact

MAX_ERROR_MESSAGE = 1_000
MAX_ATTEMPTS = 1_000_000
UNPROCESSABLE = "unprocessable"


class Action(Enum):
    ACK = "ack"
    RETRY = "retry"
    DEAD_LETTER = "dead_letter"


@dataclass(frozen=True)
class Decision:
    action: Action
    attempt: int = 0
    kind: str = ""
    error: BaseException | None = None


ACK = Decision(Action.ACK)


class AfterCommitError(Exception):
    """The handler's transaction committed; the work after it (``after_commit``) failed.

    Decided on ``error`` (its reason, transient or permanent) and never retried in process:
    running the handler again would only wait once more on the same slow provider, holding back
    the rest of the queue. The broker's delay queues retry it.
    """

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


def is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, PermanentError | ValidationError)


def is_transient(exc: BaseException) -> bool:
    """Worth retrying at once in process: the database or a provider had a hiccup."""
    if is_permanent(exc):
        return False
    if isinstance(exc, TransientError | OperationalError | ConnectionError | TimeoutError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


MESSAGE_LEVEL_SQLSTATES = ("40",)  # serialization failure, deadlock: retry this message


def is_outage(exc: BaseException) -> bool:
    """The service's own database cannot be reached: every message would fail the same way.

    Such failures are not the message's fault, so they must not use up its retries: the
    consumer holds the message (unacked) and waits for the database to return.
    """
    if not isinstance(exc, OperationalError | InterfaceError):
        return False
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return sqlstate is None or not sqlstate.startswith(MESSAGE_LEVEL_SQLSTATES)


def attempts_so_far(headers: object) -> int:
    """Our own attempt count; whatever type a client put there, a number in [0, MAX_ATTEMPTS]."""
    if not isinstance(headers, Mapping):
        return 0
    try:
        value = headers.get(ATTEMPTS_HEADER, 0)
    except Exception:
        return 0
    return header_int(value, 0, low=0, high=MAX_ATTEMPTS)


def decide(exc: BaseException, previous_attempts: int, retry_slots: int) -> Decision:
    """Retry through the broker while delay slots remain; then, or if permanent, dead-letter."""
    attempt = max(0, min(previous_attempts, MAX_ATTEMPTS)) + 1
    if is_permanent(exc):
        return Decision(Action.DEAD_LETTER, attempt, "permanent", exc)
    if attempt <= retry_slots:
        return Decision(Action.RETRY, attempt, "transient", exc)
    return Decision(Action.DEAD_LETTER, attempt, "exhausted", exc)


def unprocessable(exc: BaseException, previous_attempts: int = 0) -> Decision:
    """The runtime itself failed on this message: dead-letter it, whatever the error was."""
    attempt = max(0, min(previous_attempts, MAX_ATTEMPTS)) + 1
    return Decision(Action.DEAD_LETTER, attempt, UNPROCESSABLE, exc)


def error_text(exc: BaseException | None) -> str:
    """The error's message, personal data scrubbed, cut to ``MAX_ERROR_MESSAGE``; never raises."""
    if exc is None:
        return ""
    try:
        # A database error's text carries the statement, its parameters and PostgreSQL's
        # DETAIL/CONTEXT lines (row values): keep only the server's primary message.
        cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else None
        text = str(cause).split("\n", 1)[0] if cause is not None else str(exc)
    except Exception:
        text = f"<unprintable {type(exc).__name__}>"
    return redact(text[: MAX_ERROR_MESSAGE * 4])[:MAX_ERROR_MESSAGE]


def error_type(exc: BaseException | None) -> str:
    return type(exc).__name__ if exc is not None else ""


def log_failure(
    log: Callable[..., Any], event: str, exc: BaseException | None, **fields: Any
) -> None:
    """One log line about a failure: ``log`` (a bound logger's level method), the event name,
    the error's type and its scrubbed text, and any other fields."""
    log(event, error_type=error_type(exc), error=error_text(exc), **fields)


def failure_headers(
    headers: Mapping[str, Any] | None,
    decision: Decision,
    *,
    service: str,
    queue: str,
    exchange: str,
    routing_key: str,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The incoming headers (made publishable) plus what an operator needs about this failure.

    Values a client could have put in our own headers are replaced by text we wrote; the error
    message is scrubbed of personal data and its type kept.
    """
    stamp = (now or datetime.now(UTC)).isoformat()
    previous = sanitize_headers(headers)
    error = decision.error
    return {
        **previous,
        ATTEMPTS_HEADER: decision.attempt,
        FAILURE_KIND_HEADER: decision.kind,
        ERROR_TYPE_HEADER: error_type(error),
        ERROR_MESSAGE_HEADER: error_text(error),
        SERVICE_HEADER: service,
        FIRST_FAILURE_AT_HEADER: short_text(previous.get(FIRST_FAILURE_AT_HEADER, stamp)),
        LAST_FAILURE_AT_HEADER: stamp,
        ORIGINAL_EXCHANGE_HEADER: short_text(previous.get(ORIGINAL_EXCHANGE_HEADER, exchange)),
        ORIGINAL_ROUTING_KEY_HEADER: short_text(
            previous.get(ORIGINAL_ROUTING_KEY_HEADER, routing_key)
        ),
        ORIGINAL_QUEUE_HEADER: queue,
    }
