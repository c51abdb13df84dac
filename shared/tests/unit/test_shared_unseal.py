"""The runtime opens sealed signups (UserSignedUp v3) before the handler: unsealed with the
user's key, redacted when the key is gone; a keys outage holds them (never a dead letter)."""

import threading
import uuid
from collections.abc import Iterable
from typing import Any

import pytest

from signup_contracts import (
    UserSignedUp,
    UserSignedUpV2,
    UserSignedUpV3,
    is_redacted,
    seal_envelope,
)
from signup_contracts.sealed import new_key
from signup_contracts.testing import user_signed_up_v2
from signup_shared.events import Envelope
from signup_shared.keys import KeyLookupError, UnconfiguredKeyResolver
from signup_shared.messaging.delivery import Delivery
from signup_shared.messaging.failures import Action
from signup_shared.messaging.processing import MessageProcessor
from signup_shared.messaging.subscription import Subscription
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.messaging.unseal import Unsealer

QUEUE = ConsumerQueue("notifications", "accounts.user_signed_up.v2")


class FakeKeys:
    """Answers from a dictionary; ``down`` lookups fail first (an outage)."""

    def __init__(self, keys: dict[uuid.UUID, bytes], down: int = 0) -> None:
        self.keys, self.down, self.calls = keys, down, 0

    def lookup(self, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, bytes | None]:
        self.calls += 1
        if self.down:
            self.down -= 1
            raise KeyLookupError("keys service unreachable: ConnectError")
        return {user: self.keys.get(user) for user in user_ids}

    def close(self) -> None:
        pass


class Recorder:
    def __init__(self) -> None:
        self.calls: list[Envelope[Any]] = []

    def __call__(self, event: Envelope[Any]) -> None:
        self.calls.append(event)

    def batch(self, events: Any) -> dict[uuid.UUID, BaseException]:
        self.calls.extend(events)
        return {}


def sealed(email: str = "ada@example.com") -> tuple[Envelope[Any], Envelope[Any], bytes]:
    clear = user_signed_up_v2(email=email, full_name="Ada Lovelace", phone="+14155550123")
    key = new_key()
    return clear, seal_envelope(clear, key), key


def delivery(event: Envelope[Any]) -> Delivery:
    return Delivery(event.to_json(), {}, {"message_id": str(event.id)}, "events.retry", QUEUE.name)


def processor(keys: Any, **options: Any) -> MessageProcessor:
    return MessageProcessor(in_process_attempts=1, max_wait=0.0, unsealer=Unsealer(keys), **options)


def test_a_sealed_signup_reaches_a_v2_handler_unsealed() -> None:
    clear, v3, key = sealed()
    handler = Recorder()
    subscription = Subscription(QUEUE, (UserSignedUp, UserSignedUpV2), handler)
    decision = processor(FakeKeys({clear.data.user_id: key})).process(subscription, delivery(v3))
    assert decision is not None and decision.action is Action.ACK
    assert handler.calls == [clear]


def test_an_erased_users_sealed_signup_reaches_the_handler_redacted() -> None:
    clear, v3, _ = sealed()
    handler = Recorder()
    subscription = Subscription(QUEUE, (UserSignedUpV2,), handler)
    decision = processor(FakeKeys({})).process(subscription, delivery(v3))
    assert decision is not None and decision.action is Action.ACK
    [seen] = handler.calls
    assert isinstance(seen.data, UserSignedUpV2) and is_redacted(seen.data)
    assert (seen.id, seen.data.user_id) == (clear.id, clear.data.user_id)


def test_a_v1_reader_gets_the_v1_form() -> None:
    clear, v3, key = sealed()
    handler = Recorder()
    subscription = Subscription(QUEUE, (UserSignedUp,), handler)
    processor(FakeKeys({clear.data.user_id: key})).process(subscription, delivery(v3))
    [seen] = handler.calls
    assert type(seen.data) is UserSignedUp and str(seen.data.email) == "ada@example.com"


def test_a_batch_is_opened_with_one_lookup() -> None:
    events = [sealed(f"user{i}@example.com") for i in range(5)]
    keys = FakeKeys({clear.data.user_id: key for clear, _, key in events[:3]})
    handler = Recorder()
    subscription = Subscription(QUEUE, (UserSignedUpV2,), handler, handler.batch)
    decisions = processor(keys).process_batch(subscription, [delivery(v3) for _, v3, _ in events])
    assert all(d is not None and d.action is Action.ACK for d in decisions)
    assert keys.calls == 1
    assert [is_redacted(e.data) for e in handler.calls] == [False, False, False, True, True]
    assert [str(e.data.email) for e in handler.calls[:3]] == [
        f"user{i}@example.com" for i in range(3)
    ]


def test_a_keys_outage_holds_the_event_until_the_service_answers() -> None:
    clear, v3, key = sealed()
    keys = FakeKeys({clear.data.user_id: key}, down=3)
    handler = Recorder()
    subscription = Subscription(QUEUE, (UserSignedUpV2,), handler)
    decision = processor(keys, outage_backoff_cap=0.001).process(subscription, delivery(v3))
    assert decision is not None and decision.action is Action.ACK
    assert keys.calls == 4 and handler.calls == [clear]


def test_stopping_during_a_keys_outage_leaves_the_event_unacked() -> None:
    _, v3, _ = sealed()
    stop = threading.Event()
    stop.set()
    handler = Recorder()
    subscription = Subscription(QUEUE, (UserSignedUpV2,), handler)
    decision = processor(FakeKeys({}, down=1)).process(subscription, delivery(v3), stop)
    assert decision is None and handler.calls == []


def test_without_a_keys_service_a_sealed_event_takes_the_retry_path_naming_the_setting() -> None:
    _, v3, _ = sealed()
    handler = Recorder()
    subscription = Subscription(QUEUE, (UserSignedUpV2,), handler)
    keys = UnconfiguredKeyResolver("NOTIFICATIONS_KEYS")
    decision = processor(keys).process(subscription, delivery(v3))
    assert decision is not None and decision.action is Action.RETRY
    assert "NOTIFICATIONS_KEYS_URL" in str(decision.error) and handler.calls == []


def test_a_block_the_key_does_not_open_is_dead_lettered_as_poison() -> None:
    clear, v3, _ = sealed()
    handler = Recorder()
    subscription = Subscription(QUEUE, (UserSignedUpV2,), handler)
    wrong = FakeKeys({clear.data.user_id: new_key()})
    decision = processor(wrong).process(subscription, delivery(v3))
    assert decision is not None and decision.action is Action.DEAD_LETTER
    assert decision.kind == "permanent" and "do not open" in str(decision.error)


def test_a_clear_event_needs_no_lookup() -> None:
    clear, _, _ = sealed()
    keys = FakeKeys({}, down=99)
    handler = Recorder()
    subscription = Subscription(QUEUE, (UserSignedUpV2,), handler)
    decision = processor(keys).process(subscription, delivery(clear))
    assert decision is not None and decision.action is Action.ACK and keys.calls == 0
    from_space = Subscription(ConsumerQueue("stats", "x.y"), (UserSignedUpV3,), handler)
    assert Unsealer(keys).open(from_space.events, [clear]) == [clear]


@pytest.mark.parametrize("events", [(UserSignedUpV2,), (UserSignedUp, UserSignedUpV2)])
def test_unsealer_open_leaves_clear_events_alone(events: tuple[type, ...]) -> None:
    clear, v3, key = sealed()
    opened = Unsealer(FakeKeys({clear.data.user_id: key})).open(events, [clear, v3])
    assert opened == [clear, clear]
