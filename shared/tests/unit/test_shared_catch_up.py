"""Catch-up, one function at a time: where it starts, where it stops, what it hands to which
handler, and what it does with the rest (no broker: fake messages, fake publisher)."""

import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from signup_contracts.testing import space_provisioned
from signup_shared.events import Envelope, SpaceProvisioned, UserSignedUp, UserSignedUpV2
from signup_shared.messaging import history
from signup_shared.messaging.catch_up import CatchUp, CatchUpReport
from signup_shared.messaging.processing import MessageProcessor
from signup_shared.messaging.subscription import Subscription
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.messaging.wire import OutgoingMessage
from signup_shared.settings import ServiceSettings
from signup_shared.testing import FakeMessage, FakePublisher, user_signed_up


# parse_position ----------------------------------------------------------------------------
def test_a_start_is_first_an_offset_or_a_time() -> None:
    assert history.parse_position("first") == "first"
    assert history.parse_position(" FIRST ") == "first"
    assert history.parse_position("1500") == 1500
    assert history.parse_position("2026-01-31T10:00:00+01:00") == datetime(
        2026, 1, 31, 10, tzinfo=timezone(timedelta(hours=1))
    )


def test_a_time_without_an_offset_is_utc() -> None:
    assert history.parse_position("2026-01-31T00:00:00") == datetime(2026, 1, 31, tzinfo=UTC)


@pytest.mark.parametrize("text", ["last", "next", "-3", "yesterday", ""])
def test_anything_else_is_refused_naming_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="expected 'first', a stream offset"):
        history.parse_position(text)


def test_the_setting_is_checked_when_the_settings_are_read() -> None:
    assert ServiceSettings(catch_up_from=" first ").catch_up_from == "first"
    assert ServiceSettings(catch_up_from="").catch_up_from is None
    with pytest.raises(ValueError, match="catch_up_from"):
        ServiceSettings(catch_up_from="soon")


# offsets -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "offset"),
    [({"x-stream-offset": 7}, 7), ({}, None), ({"x-stream-offset": "x"}, None), (None, None)],
)
def test_the_offset_is_read_from_its_header_defensively(headers: Any, offset: int | None) -> None:
    assert history.offset_of(FakeMessage(headers=headers)) == offset


@pytest.mark.parametrize(
    ("start", "after"),
    [
        (5, False),
        (10, False),
        (11, True),
        ("first", False),
        (datetime.fromtimestamp(1_000, UTC), False),
        (datetime.fromtimestamp(1_001, UTC), False),  # a second's resolution: still read
        (datetime.fromtimestamp(1_002, UTC), True),
    ],
)
def test_a_start_after_the_tail_reads_nothing(start: history.Position, after: bool) -> None:
    assert history.after_tail(start, history.Tail(offset=10, timestamp=1_000)) is after


# handling ----------------------------------------------------------------------------------
def stream_message(offset: int, envelope: Envelope[Any] | None, kind: str = "") -> FakeMessage:
    body = OutgoingMessage.from_envelope(envelope).body if envelope else b"{}"
    return FakeMessage(
        body,
        {"x-stream-offset": offset},
        {
            "type": kind or (envelope.type if envelope else "Other"),
            "message_id": str(envelope.id) if envelope else "",
        },
        {"exchange": "", "routing_key": "events.history"},
        offset + 1,
    )


class Recorder:
    def __init__(self, fail: set[uuid.UUID] | None = None) -> None:
        self.handled: list[uuid.UUID] = []
        self.fail = fail or set()

    def __call__(self, envelope: Envelope[Any]) -> None:
        if envelope.id in self.fail:
            raise ValueError("refused by the step")  # an unknown error: retried
        self.handled.append(envelope.id)


def catch_up(signups: Recorder, spaces: Recorder | None = None) -> tuple[CatchUp, FakePublisher]:
    subscriptions = [
        Subscription(
            ConsumerQueue("audit", "accounts.user_signed_up"),
            (UserSignedUp, UserSignedUpV2),
            signups,
        )
    ]
    if spaces is not None:
        subscriptions.append(
            Subscription(
                ConsumerQueue("audit", "provisioning.space_provisioned"),
                (SpaceProvisioned,),
                spaces,
            )
        )
    publisher = FakePublisher()
    job = CatchUp(
        "audit",
        "amqp://unused//",
        subscriptions,
        "first",
        publisher,
        processor=MessageProcessor(in_process_attempts=1),
    )
    return job, publisher


def test_events_up_to_the_tail_go_to_their_handlers_and_the_first_after_it_stops() -> None:
    signups, spaces = Recorder(), Recorder()
    job, _ = catch_up(signups, spaces)
    events = [user_signed_up(), space_provisioned(), user_signed_up(), user_signed_up()]
    messages = [stream_message(offset, event) for offset, event in enumerate(events, start=40)]
    report = CatchUpReport(start="first")

    job._handle(messages, 42, report, threading.Event())

    assert signups.handled == [events[0].id, events[2].id]
    assert spaces.handled == [events[1].id]
    assert report.complete and report.last_offset == 42 and report.handled == 3
    assert [m.acks for m in messages] == [[False], [False], [False], []]  # the 4th is not read


def test_the_tail_itself_is_handled_and_ends_the_catch_up() -> None:
    signups = Recorder()
    job, _ = catch_up(signups)
    event = user_signed_up()
    report = CatchUpReport(start="first")

    job._handle([stream_message(9, event)], 9, report, threading.Event())

    assert signups.handled == [event.id] and report.complete


def test_before_the_tail_the_catch_up_goes_on() -> None:
    job, _ = catch_up(Recorder())
    report = CatchUpReport(start="first")

    job._handle([stream_message(3, user_signed_up())], 9, report, threading.Event())

    assert not report.complete and report.last_offset == 3


def test_types_the_service_does_not_subscribe_to_are_acked_and_skipped() -> None:
    signups = Recorder()
    job, publisher = catch_up(signups)
    other = stream_message(1, space_provisioned())
    report = CatchUpReport(start="first")

    job._handle([other], 5, report, threading.Event())

    assert signups.handled == [] and other.acks == [False] and publisher.published == []
    assert report.skipped == 1 and report.handled == 0


def test_a_failing_event_goes_to_the_live_queues_retry_path_not_lost() -> None:
    bad, good = user_signed_up(), user_signed_up()
    signups = Recorder(fail={bad.id})
    job, publisher = catch_up(signups)
    messages = [stream_message(0, bad), stream_message(1, good)]
    report = CatchUpReport(start="first")

    job._handle(messages, 1, report, threading.Event())

    assert signups.handled == [good.id]
    [copy] = publisher.published
    # its first retry queue dead-letters it back into the live queue audit.user_signed_up
    assert copy.routing_key == "audit.user_signed_up.retry.1s"
    assert copy.message_id == str(bad.id)
    assert [m.acks for m in messages] == [[False], [False]]


def test_poison_in_the_history_is_dead_lettered_by_its_type_subscription() -> None:
    job, publisher = catch_up(Recorder())
    poison = stream_message(0, None, kind="UserSignedUp")  # a body that is no event

    job._handle([poison], 0, CatchUpReport(start="first"), threading.Event())

    assert [m.routing_key for m in publisher.published] == ["audit.user_signed_up.dlq"]
    assert poison.acks == [False]
