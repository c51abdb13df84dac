"""A row the relay cannot publish is parked, never holds back the rows behind it, shows in the
metrics and in the operator command, and goes back in line when the operator retries it."""

import argparse
import io
import uuid
from collections.abc import Iterator

import pytest
from kombu import Connection, Queue
from prometheus_client import REGISTRY
from sqlalchemy import Engine, delete, insert, select, update
from sqlalchemy.orm import DeclarativeBase, Session

from signup_shared.messaging.publisher import ConfirmingPublisher, PublishError
from signup_shared.messaging.topology import declare, events_exchange
from signup_shared.outbox import OutboxMixin, outbox_values
from signup_shared.outbox.operator import parser, run
from signup_shared.outbox.parking import ParkedCollector
from signup_shared.outbox.relay import OutboxRelay
from signup_shared.testing import FakePublisher, amqp_url, outbox_database, user_signed_up

pytestmark = pytest.mark.integration


class Base(DeclarativeBase):
    pass


class Outbox(OutboxMixin, Base):
    pass


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with outbox_database("parking", Base.metadata) as engine:
        yield engine


@pytest.fixture
def outbox(engine: Engine) -> Iterator[Engine]:
    yield engine
    with engine.begin() as connection:
        connection.execute(delete(Outbox))


@pytest.fixture
def queue(broker: Connection, producer: str) -> Iterator[Queue]:
    declare(broker)
    bound = Queue(
        f"{producer}.events", events_exchange, routing_key=f"{producer}.#", durable=False
    )(broker.default_channel)
    bound.declare()
    yield bound
    bound.delete()


def write_unpublishable(engine: Engine, producer: str) -> str:
    """A row as a producer without the envelope's id rule could write it: its correlation id
    fits the column (100 characters) but not an AMQP short string (300 bytes)."""
    event = user_signed_up(producer)
    with engine.begin() as connection:
        connection.execute(insert(Outbox), {**outbox_values(event), "correlation_id": "€" * 100})
    return str(event.id)


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


def command(engine: Engine, relay: OutboxRelay, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    status = run(engine, relay.queries, parser("accounts").parse_args(args), out)
    return status, out.getvalue()


def test_an_unpublishable_row_at_the_head_is_parked_and_the_50_behind_it_are_published(
    outbox: Engine, queue: Queue, producer: str
) -> None:
    bad = write_unpublishable(outbox, producer)
    good = write_events(outbox, producer, 50)
    relay = OutboxRelay(outbox, Outbox, ConfirmingPublisher(amqp_url()), service=producer)
    try:
        assert relay.publish_pending() == 50
        assert drain(queue) == good
        assert relay.backlog()[0] == 0  # a parked row is not pending: the age alert stays calm
        assert relay.parked() == 1
        assert REGISTRY.get_sample_value("signup_relay_parked_total", {"service": producer}) == 1
        status, listing = command(outbox, relay, "parked")
        assert status == 0
        assert bad in listing and "cannot be encoded" in listing and "1 parked row" in listing
        assert relay.publish_pending() == 0  # skipped from now on, not retried in a loop
    finally:
        relay.close()


def test_the_operator_puts_a_parked_row_back_in_line(
    outbox: Engine, queue: Queue, producer: str
) -> None:  # the queue: the event it publishes is routed, not left in events.unrouted
    bad = write_unpublishable(outbox, producer)
    relay = OutboxRelay(outbox, Outbox, ConfirmingPublisher(amqp_url()))
    try:
        relay.publish_pending()
        with outbox.begin() as connection:  # the operator fixed the cause
            connection.execute(update(Outbox).values(correlation_id="fixed"))
        status, said = command(outbox, relay, "retry", "--id", bad)
        assert (status, said) == (0, "1 parked row(s) put back in line for the relay\n")
        assert relay.parked() == 0
        with outbox.connect() as connection:
            assert connection.scalar(select(Outbox.refusals)) == 0
        assert relay.publish_pending() == 1
        assert command(outbox, relay, "parked") == (0, "no parked rows\n")
    finally:
        relay.close()


def test_retrying_an_id_that_is_not_parked_says_so_and_fails(outbox: Engine) -> None:
    relay = OutboxRelay(outbox, Outbox, FakePublisher())
    unknown = str(uuid.uuid4())
    status, said = command(outbox, relay, "retry", "--id", unknown)
    assert status == 1
    assert f"not parked (unknown or already published): {unknown}" in said


def test_retry_needs_ids_or_all() -> None:
    with pytest.raises(SystemExit):
        parser("accounts").parse_args(["retry"])
    with pytest.raises(SystemExit):
        parser("accounts").parse_args(["retry", "--id", "not-a-uuid"])
    assert parser("accounts").parse_args(["retry", "--all"]) == argparse.Namespace(
        action="retry", ids=None, all=True
    )


class RefusingBroker(FakePublisher):
    """Nacks one message every time (a refusal the broker may stop making, e.g. a full queue)."""

    def __init__(self, refused: str) -> None:
        super().__init__()
        self.refused = refused

    def wait(self, ticket: object) -> None:
        super().wait(ticket)  # type: ignore[arg-type]
        ids = {m.message_id for m in self.batches[-1]}
        self.batches[-1] = [m for m in self.batches[-1] if m.message_id != self.refused]
        if self.refused in ids:
            raise PublishError(
                "1 of 2 messages refused: nacked by the broker",
                frozenset(ids - {self.refused}),
                {self.refused: "nacked by the broker"},
            )


def test_a_row_the_broker_refuses_is_retried_then_parked_after_park_after_refusals(
    outbox: Engine, producer: str
) -> None:
    [refused] = write_events(outbox, producer, 1)
    broker = RefusingBroker(refused)
    relay = OutboxRelay(outbox, Outbox, broker, park_after=3, refusal_hold_seconds=0.0)
    for round_number in (1, 2):
        write_events(outbox, producer, 1)
        assert relay.publish_pending() == 1  # the new row passes; the refused one is counted
        assert relay.parked() == 0 and relay.backlog()[0] == 1, round_number
    assert relay.publish_pending() == 0
    assert relay.parked() == 1 and relay.backlog()[0] == 0
    with outbox.connect() as connection:
        assert connection.scalar(select(Outbox.refusals).where(Outbox.parked_at.is_not(None))) == 3
    assert len(broker.published) == 2


def test_the_parked_gauge_reads_the_database_at_scrape_time() -> None:
    counts = iter([2])
    [family] = ParkedCollector("svc", lambda: next(counts)).collect()
    assert [(s.name, s.labels, s.value) for s in family.samples] == [
        ("signup_outbox_parked_rows", {"service": "svc"}, 2)
    ]

    def away() -> int:
        raise OSError("database away")

    assert list(ParkedCollector("svc", away).collect()) == []


def test_a_refused_row_is_held_back_while_the_rows_behind_it_are_published(
    outbox: Engine, producer: str
) -> None:
    [refused] = write_events(outbox, producer, 1)
    broker = RefusingBroker(refused)
    relay = OutboxRelay(outbox, Outbox, broker, park_after=3, refusal_hold_seconds=60.0)
    assert relay.publish_pending() == 0  # refused once: held for a minute
    write_events(outbox, producer, 2)
    assert relay.publish_pending() == 2  # the rows behind it go; it is not tried again yet
    assert [len(batch) for batch in broker.batches] == [0, 2]
    assert relay.parked() == 0 and relay.backlog()[0] == 1
    assert 59.0 < (relay.holds.next_due() or 0.0) <= 60.0
