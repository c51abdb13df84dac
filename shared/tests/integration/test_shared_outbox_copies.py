"""The relay with copies of one event sharing its id (UserSignedUp v1, v2 and the sealed v3 in a
rollout): each copy is published, confirmed and marked sent, also when a batch boundary falls
between them, and the broker receives each once."""

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Queue
from sqlalchemy import Engine, UniqueConstraint, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, declared_attr, mapped_column

from signup_contracts import seal_envelope
from signup_contracts.sealed import new_key
from signup_contracts.testing import user_signed_up_v2
from signup_shared.events import Envelope, UserSignedUp
from signup_shared.messaging.publisher import ConfirmingPublisher
from signup_shared.outbox import OutboxMixin, outbox_values
from signup_shared.outbox.relay import OutboxRelay
from signup_shared.testing import amqp_url, outbox_database

pytestmark = pytest.mark.integration


class Base(DeclarativeBase):
    pass


class Outbox(OutboxMixin, Base):
    """As accounts' outbox: unique by (event id, version), not by id."""

    event_id: Mapped[uuid.UUID] = mapped_column()

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        indexes: tuple[Any, ...] = OutboxMixin.__dict__["__table_args__"].fget(cls)
        return (*indexes, UniqueConstraint("event_id", "version", name="uq_copy"))


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with outbox_database("copies", Base.metadata) as engine:
        yield engine


def copies(producer: str) -> list[Envelope[Any]]:
    v2 = user_signed_up_v2(producer=producer)
    v1 = Envelope.wrap(
        UserSignedUp.model_validate(v2.data.model_dump()),
        producer=producer,
        correlation_id=v2.correlation_id,
        event_id=v2.id,
    )
    return [v2, v1, seal_envelope(v2, new_key())]


@pytest.mark.parametrize("batch_size", [100, 2], ids=["one-batch", "split-between-copies"])
def test_every_copy_is_confirmed_marked_sent_and_received_once(
    engine: Engine, queue: Queue, producer: str, batch_size: int
) -> None:
    events = [copy for _ in range(3) for copy in copies(producer)]
    with Session(engine) as session, session.begin():
        session.add_all(Outbox(**outbox_values(event)) for event in events)
    relay = OutboxRelay(engine, Outbox, ConfirmingPublisher(amqp_url()), batch_size=batch_size)
    assert relay.publish_pending() == 9
    with Session(engine) as session:
        rows = session.scalars(select(Outbox).where(Outbox.producer == producer)).all()
        assert len(rows) == 9 and all(row.sent_at is not None for row in rows)
    received = []
    while (message := queue.get(no_ack=True)) is not None:
        received.append((message.properties["message_id"], message.delivery_info["routing_key"]))
    expected = [(str(e.id), e.routing_key) for e in events]
    assert sorted(received) == sorted(expected)
    assert len({key for _, key in received}) == 3  # v1, v2 and v3 keys
