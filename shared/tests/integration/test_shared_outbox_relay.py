import threading
import time
from collections.abc import Iterator

import pytest
from kombu import Queue
from prometheus_client import REGISTRY
from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.orm import DeclarativeBase, Session

from signup_contracts.amqp import TRACEPARENT_HEADER
from signup_shared import tracing
from signup_shared.messaging.publisher import ConfirmingPublisher, PublishError
from signup_shared.outbox import OutboxMixin
from signup_shared.outbox.listener import NotificationListener
from signup_shared.outbox.relay import OutboxRelay
from signup_shared.testing import FakePublisher, amqp_url, outbox_database, user_signed_up

pytestmark = pytest.mark.integration


class Base(DeclarativeBase):
    pass


class Outbox(OutboxMixin, Base):
    pass


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with outbox_database("shared", Base.metadata) as engine:
        yield engine


@pytest.fixture
def outbox(engine: Engine) -> Iterator[Engine]:
    yield engine
    with engine.begin() as connection:
        connection.execute(delete(Outbox))


def write_events(engine: Engine, producer: str, count: int) -> list[str]:
    events = [user_signed_up(producer) for _ in range(count)]
    with Session(engine) as session, session.begin():
        session.add_all([Outbox.from_envelope(event) for event in events])
    return [str(event.id) for event in events]


def drain(queue: Queue) -> list[str]:
    ids = []
    while (message := queue.get(no_ack=True)) is not None:
        ids.append(message.properties["message_id"])
    return ids


def pending(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.scalar(
                select(func.count()).select_from(Outbox).where(Outbox.sent_at.is_(None))
            )
            or 0
        )


def relay(engine: Engine, batch_size: int = 100) -> OutboxRelay:
    return OutboxRelay(engine, Outbox, ConfirmingPublisher(amqp_url()), batch_size=batch_size)


def test_relay_publishes_pending_rows_in_order_and_marks_them_sent(
    outbox: Engine, queue: Queue, producer: str
) -> None:
    ids = write_events(outbox, producer, 250)
    assert relay(outbox).publish_pending() == 250
    assert drain(queue) == ids
    assert pending(outbox) == 0


def test_published_message_mirrors_the_envelope_in_amqp_properties(
    outbox: Engine, queue: Queue, producer: str
) -> None:
    [event_id] = write_events(outbox, producer, 1)
    relay(outbox).publish_pending()
    message = queue.get(no_ack=True)
    assert message is not None
    assert message.properties["message_id"] == event_id
    assert message.properties["type"] == "UserSignedUp"
    assert message.properties["delivery_mode"] == 2
    assert message.content_type == "application/json"
    assert message.delivery_info["routing_key"] == f"{producer}.user_signed_up"


def test_a_failed_batch_stays_pending_and_a_new_relay_resumes_it(
    outbox: Engine, queue: Queue, producer: str
) -> None:
    ids = write_events(outbox, producer, 10)
    crashing = FakePublisher()
    crashing.fail_next = PublishError("broker went away", confirmed=frozenset(ids[:3]))
    with pytest.raises(PublishError):
        OutboxRelay(outbox, Outbox, crashing).publish_batch()
    assert pending(outbox) == 7
    assert relay(outbox).publish_pending() == 7
    assert drain(queue) == ids[3:]


def test_two_relays_never_publish_the_same_row(outbox: Engine, queue: Queue, producer: str) -> None:
    ids = write_events(outbox, producer, 2000)
    relays = [relay(outbox, batch_size=50) for _ in range(2)]
    counts: list[int] = []
    threads = [
        threading.Thread(target=lambda r=r: counts.append(r.publish_pending())) for r in relays
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    published = drain(queue)
    assert sorted(published) == sorted(ids)
    assert sum(counts) == 2000
    assert all(count > 0 for count in counts)


def test_commit_wakes_the_listener(outbox: Engine, producer: str) -> None:
    listener = NotificationListener(outbox)
    try:
        listener.wait(0.01)
        woke = threading.Event()

        def wait() -> None:
            listener.wait(5.0)
            woke.set()

        thread = threading.Thread(target=wait)
        thread.start()
        write_events(outbox, producer, 1)
        assert woke.wait(2.0)
        thread.join()
    finally:
        listener.close()


def test_prune_removes_only_old_sent_rows(outbox: Engine, queue: Queue, producer: str) -> None:
    write_events(outbox, producer, 3)
    r = relay(outbox)
    r.publish_pending()
    write_events(outbox, producer, 2)
    with outbox.begin() as connection:
        connection.execute(
            Outbox.__table__.update()
            .where(Outbox.sent_at.is_not(None))
            .values(sent_at=func.now() - r.retention * 2)
        )
    assert r.prune() == 3
    assert pending(outbox) == 2


def test_backlog_and_relay_metrics_follow_the_outbox(
    outbox: Engine, queue: Queue, producer: str
) -> None:
    relay_under_test = relay(outbox)
    assert relay_under_test.backlog() == (0, 0.0)
    write_events(outbox, producer, 3)
    with outbox.begin() as connection:
        connection.execute(text("UPDATE outbox SET created_at = now() - interval '42 seconds'"))
    count, age = relay_under_test.backlog()
    assert count == 3 and 42 <= age < 60
    before = (
        REGISTRY.get_sample_value(
            "signup_relay_published_total", {"service": relay_under_test.service}
        )
        or 0
    )
    assert relay_under_test.publish_pending() == 3
    after = REGISTRY.get_sample_value(
        "signup_relay_published_total", {"service": relay_under_test.service}
    )
    assert after == before + 3
    assert relay_under_test.backlog() == (0, 0.0)
    drain(queue)


def test_the_trace_of_the_writing_transaction_travels_with_the_event(
    outbox: Engine, queue: Queue, producer: str
) -> None:
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with tracing.span("request", parent):
        write_events(outbox, producer, 1)
    write_events(outbox, producer, 1)
    relay(outbox).publish_pending()
    traced, untraced = queue.get(no_ack=True), queue.get(no_ack=True)
    assert traced is not None and untraced is not None
    header = traced.headers[TRACEPARENT_HEADER]
    assert header.split("-")[1] == parent.split("-")[1] and header != parent
    assert TRACEPARENT_HEADER not in untraced.headers


def test_the_listener_sleeps_out_its_timeout_when_nothing_happens(outbox: Engine) -> None:
    listener = NotificationListener(outbox)
    try:
        assert listener.wait(5.0) is True  # connecting counts as a wake-up
        started = time.monotonic()
        assert listener.wait(0.2) is False
        assert time.monotonic() - started >= 0.19
    finally:
        listener.close()


def test_a_wakeup_ends_the_listeners_wait_at_once(outbox: Engine) -> None:
    listener = NotificationListener(outbox)
    try:
        listener.wait(5.0)
        threading.Timer(0.05, listener.wakeup.wake).start()
        started = time.monotonic()
        assert listener.wait(30.0) is True
        assert time.monotonic() - started < 5.0
        assert listener.wait(0.01) is False  # the wake-up was consumed
    finally:
        listener.close()


def test_a_killed_listen_connection_wakes_the_listener_and_is_replaced(
    outbox: Engine, producer: str
) -> None:
    listener = NotificationListener(outbox)
    try:
        listener.wait(5.0)
        assert listener._connection is not None
        backend = listener._connection.info.backend_pid
        with outbox.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        assert listener.wait(30.0) is True  # the closed socket is readable: not a 30 s sleep
        assert listener.wait(5.0) is True  # reconnected and listening again
        thread = threading.Thread(target=listener.wait, args=(10.0,))
        thread.start()
        time.sleep(0.1)
        write_events(outbox, producer, 1)
        thread.join(timeout=3.0)
        assert not thread.is_alive()
    finally:
        listener.close()


def test_a_running_relay_publishes_on_commit_and_stops_at_once_despite_a_long_poll(
    outbox: Engine, queue: Queue, producer: str
) -> None:
    running = OutboxRelay(outbox, Outbox, ConfirmingPublisher(amqp_url()), poll_interval=60.0)
    stop = threading.Event()
    thread = threading.Thread(target=running.run, args=(stop,))
    thread.start()
    try:
        time.sleep(0.3)  # listening by now
        ids = write_events(outbox, producer, 3)
        deadline = time.monotonic() + 5.0
        while pending(outbox) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pending(outbox) == 0  # woken by the commit, not by the 60 s poll
        assert drain(queue) == ids
    finally:
        stopped_at = time.monotonic()
        stop.set()
        thread.join(timeout=10.0)
    assert not thread.is_alive()
    assert time.monotonic() - stopped_at < 3.0
