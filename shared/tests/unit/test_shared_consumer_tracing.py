"""The consumer continues the sender's trace: a consume span per delivery, a handle span per
event, and what a handler writes (outbox rows) carries the handling span's traceparent."""

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from signup_shared import tracing
from signup_shared.events import Envelope, UserSignedUp
from signup_shared.inbox import InboxMixin
from signup_shared.messaging.delivery import Delivery
from signup_shared.messaging.failures import Action
from signup_shared.messaging.inbox_handler import InboxHandler
from signup_shared.messaging.processing import MessageProcessor
from signup_shared.messaging.subscription import Subscription
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.testing import user_signed_up

QUEUE = ConsumerQueue("svc", "accounts.user_signed_up", retry_delays_ms=(1_000,))
TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT = f"00-{TRACE}-b7ad6b7169203331-01"


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.configure_tracing("test", exporter=exporter)
    yield exporter
    tracing.shutdown()


def delivery(event: Envelope[Any], headers: dict[str, Any]) -> Delivery:
    return Delivery(event.to_json(), headers, {}, "events", "accounts.user_signed_up")


def trace_of(traceparent: str | None) -> str | None:
    return traceparent.split("-")[1] if traceparent else None


def test_a_handled_message_continues_the_senders_trace(spans: InMemorySpanExporter) -> None:
    seen: list[str | None] = []
    subscription = Subscription(
        QUEUE, (UserSignedUp,), lambda _e: seen.append(tracing.current_traceparent())
    )
    event = user_signed_up()
    decision = MessageProcessor(in_process_attempts=1).process(
        subscription, delivery(event, {"traceparent": PARENT})
    )
    assert decision is not None and decision.action is Action.ACK
    assert trace_of(seen[0]) == TRACE
    consume, handle = spans.get_finished_spans()
    assert (consume.name, handle.name) == ("consume svc.user_signed_up", "handle UserSignedUp")
    assert handle.parent is not None and handle.parent.span_id == consume.context.span_id
    assert consume.parent is not None and format(consume.parent.span_id, "016x") == PARENT[36:52]


@pytest.mark.parametrize("header", [None, "abc", b"\xff", 12, {"a": 1}, PARENT.upper()])
def test_a_missing_or_malformed_traceparent_starts_a_new_trace(
    spans: InMemorySpanExporter, header: object
) -> None:
    subscription = Subscription(QUEUE, (UserSignedUp,), lambda _e: None)
    headers = {} if header is None else {"traceparent": header}
    decision = MessageProcessor(in_process_attempts=1).process(
        subscription, delivery(user_signed_up(), headers)
    )
    assert decision is not None and decision.action is Action.ACK
    consume, handle = spans.get_finished_spans()
    assert consume.name.startswith("consume") and consume.parent is None
    assert handle.context.trace_id == consume.context.trace_id


class Inbox(InboxMixin):
    pass


class Session:
    """Enough of a session for the handler; the inbox is replaced below."""

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def commit(self) -> None:
        return None


def test_each_event_of_a_batch_is_handled_in_its_own_trace(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = [user_signed_up(), user_signed_up()]
    parents = [PARENT, f"00-{'1' * 32}-{'2' * 16}-01"]
    seen: dict[uuid.UUID, str | None] = {}
    monkeypatch.setattr("signup_shared.inbox.claim_many", lambda _s, _m, _c, ids: set(ids))
    handler = InboxHandler(
        "svc",
        Session,  # type: ignore[arg-type]
        Inbox,
        lambda _s, e: seen.__setitem__(e.id, tracing.current_traceparent()),
    )
    subscription = Subscription(QUEUE, (UserSignedUp,), handler.handle, handler.handle_batch)
    decisions = MessageProcessor(in_process_attempts=1).process_batch(
        subscription,
        [delivery(e, {"traceparent": p}) for e, p in zip(events, parents, strict=True)],
    )
    assert [d.action for d in decisions if d is not None] == [Action.ACK, Action.ACK]
    assert [trace_of(seen[e.id]) for e in events] == [trace_of(p) for p in parents]
