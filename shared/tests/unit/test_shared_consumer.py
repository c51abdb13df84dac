import threading
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from signup_contracts import amqp
from signup_shared.errors import PermanentError, TransientError
from signup_shared.events import Envelope, SpaceProvisioned, UserSignedUp
from signup_shared.messaging import failures
from signup_shared.messaging.copies import rerouted
from signup_shared.messaging.delivery import MAX_BODY_BYTES, Delivery
from signup_shared.messaging.failures import Action
from signup_shared.messaging.processing import MessageProcessor
from signup_shared.messaging.subscription import Subscription
from signup_shared.messaging.topology import ConsumerQueue

QUEUE = ConsumerQueue("stats", "accounts.user_signed_up")


def envelope() -> Envelope[UserSignedUp]:
    data = UserSignedUp(
        user_id=uuid.uuid4(),
        subscription_id=uuid.uuid4(),
        email="ada@example.com",
        full_name="Ada",
        phone=None,
        plan="free",
        signed_up_at=datetime.now(UTC),
    )
    return Envelope.wrap(data, producer="accounts", correlation_id="corr")


def delivery(body: bytes, headers: dict[str, Any] | None = None) -> Delivery:
    return Delivery(
        body=body,
        headers=headers or {},
        properties={"message_id": "m1"},
        exchange="events",
        routing_key="accounts.user_signed_up",
    )


class Recorder:
    def __init__(self, *failures_to_raise: BaseException) -> None:
        self.calls: list[Envelope[Any]] = []
        self.failures = list(failures_to_raise)

    def __call__(self, event: Envelope[Any]) -> None:
        self.calls.append(event)
        if self.failures:
            raise self.failures.pop(0)


def process(
    handler: Recorder, body: bytes, headers: dict[str, Any] | None = None, attempts: int = 3
) -> failures.Decision:
    subscription = Subscription(QUEUE, (UserSignedUp,), handler)
    decision = MessageProcessor(in_process_attempts=attempts, max_wait=0.0).process(
        subscription, delivery(body, headers)
    )
    assert decision is not None
    return decision


def test_a_valid_event_reaches_the_handler_and_is_acked() -> None:
    handler = Recorder()
    event = envelope()
    assert process(handler, event.to_json()).action is Action.ACK
    assert handler.calls == [event]


@pytest.mark.parametrize("body", [b"not json", b'{"id": 1}', b"\xff\xfe", b"[]"])
def test_poison_is_dead_lettered_without_calling_the_handler(body: bytes) -> None:
    handler = Recorder()
    decision = process(handler, body)
    assert (decision.action, decision.kind) == (Action.DEAD_LETTER, "permanent")
    assert handler.calls == []


def test_oversized_body_is_poison() -> None:
    decision = process(Recorder(), b" " * (MAX_BODY_BYTES + 1))
    assert decision.action is Action.DEAD_LETTER
    assert "exceeds" in str(decision.error)


def test_an_event_type_the_queue_does_not_handle_is_poison() -> None:
    other = envelope().caused(
        SpaceProvisioned(user_id=uuid.uuid4(), space_id=uuid.uuid4(), quota_bytes=1),
        producer="provisioning",
    )
    decision = process(Recorder(), other.to_json())
    assert decision.action is Action.DEAD_LETTER
    assert "does not handle SpaceProvisioned" in str(decision.error)


def test_transient_failure_is_retried_in_process_first() -> None:
    handler = Recorder(TransientError("blip"), ConnectionError("blip"))
    assert process(handler, envelope().to_json()).action is Action.ACK
    assert len(handler.calls) == 3


def test_transient_failure_goes_to_the_broker_retry_after_in_process_attempts() -> None:
    handler = Recorder(*[TransientError("down")] * 3)
    decision = process(handler, envelope().to_json(), {"x-signup-attempts": 1})
    assert (decision.action, decision.attempt) == (Action.RETRY, 2)
    assert len(handler.calls) == 3


def test_a_failure_after_the_commit_goes_to_the_broker_retry_without_running_again() -> None:
    """The handler committed; only the work after it (an email still sending) failed: running
    the handler again in process would wait once more on the same provider."""
    handler = Recorder(failures.AfterCommitError(TransientError("email still sending")))
    decision = process(handler, envelope().to_json())
    assert (decision.action, decision.attempt) == (Action.RETRY, 1)
    assert str(decision.error) == "email still sending"
    assert isinstance(decision.error, TransientError)
    assert len(handler.calls) == 1


def test_a_permanent_failure_after_the_commit_is_dead_lettered_with_its_reason() -> None:
    handler = Recorder(failures.AfterCommitError(PermanentError("no such recipient")))
    decision = process(handler, envelope().to_json())
    assert (decision.action, decision.kind) == (Action.DEAD_LETTER, "permanent")
    assert isinstance(decision.error, PermanentError) and len(handler.calls) == 1


def test_permanent_failure_is_not_retried() -> None:
    handler = Recorder(PermanentError("no such recipient"))
    decision = process(handler, envelope().to_json())
    assert decision.action is Action.DEAD_LETTER
    assert len(handler.calls) == 1


def test_rerouted_copy_goes_to_the_delay_queue_of_its_attempt() -> None:
    subscription = Subscription(QUEUE, (UserSignedUp,), Recorder())
    decision = failures.decide(TransientError("x"), 1, 3)
    copy = rerouted(subscription, delivery(b"{}"), decision, "stats")
    assert (copy.exchange, copy.routing_key) == ("events.retry", "stats.user_signed_up.retry.10s")
    assert copy.headers[amqp.ATTEMPTS_HEADER] == 2
    assert copy.headers[amqp.ORIGINAL_QUEUE_HEADER] == "stats.user_signed_up"


def test_rerouted_copy_goes_to_the_dead_letter_queue_with_the_reason() -> None:
    subscription = Subscription(QUEUE, (UserSignedUp,), Recorder())
    decision = failures.decide(PermanentError("bad phone"), 0, 3)
    copy = rerouted(subscription, delivery(b"junk"), decision, "stats")
    assert (copy.exchange, copy.routing_key) == ("events.dlx", "stats.user_signed_up.dlq")
    assert copy.body == b"junk"
    assert copy.headers[amqp.ERROR_MESSAGE_HEADER] == "bad phone"
    assert copy.headers[amqp.SERVICE_HEADER] == "stats"


class DatabaseDown(Exception):
    sqlstate = None


def outage() -> OperationalError:
    return OperationalError("select 1", {}, DatabaseDown())


def test_a_database_outage_holds_the_message_until_the_database_returns() -> None:
    handler = Recorder(*[outage()] * 4)
    subscription = Subscription(QUEUE, (UserSignedUp,), handler)
    processor = MessageProcessor(in_process_attempts=1, max_wait=0.0, outage_backoff_cap=0.001)
    decision = processor.process(subscription, delivery(envelope().to_json()))
    assert decision is not None and decision.action is Action.ACK
    assert len(handler.calls) == 5


def test_stopping_during_an_outage_leaves_the_message_unacked() -> None:
    stopping = threading.Event()
    stopping.set()
    handler = Recorder(outage())
    subscription = Subscription(QUEUE, (UserSignedUp,), handler)
    processor = MessageProcessor(in_process_attempts=1, max_wait=0.0)
    assert processor.process(subscription, delivery(envelope().to_json()), stopping) is None
