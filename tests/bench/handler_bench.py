"""Part 2: the consumer runtime against a bare pika loop doing the same transaction per message.

Both drain M pre-loaded ``UserSignedUp`` messages from a quorum queue declared by
``ConsumerQueue`` (prefetch 50, manual acks) and, per message, parse the envelope, insert an
inbox row (``INSERT ... ON CONFLICT DO NOTHING RETURNING``), upsert a counter
(``INSERT ... ON CONFLICT DO UPDATE SET value = value + 1``), commit, then ack.

- bare: ``pika.BlockingConnection`` + ``basic_consume`` on one thread, nothing else.
- platform: ``ConsumerRuntime`` with one ``Subscription`` whose handler is
  ``session_handler(sessions, exactly_once(name, Inbox, step))``: broker thread + handler thread,
  tenacity retry wrapper, correlation-id log context, ack handed back to the broker thread.
- batched (shown beside, no target): the same runtime given a batch handler as well
  (``session_batch_handler(sessions, batch_exactly_once(name, Inbox, step))``): what is already
  delivered is claimed in one statement and committed in one transaction, acked with one
  ``multiple`` ack; the counter is still upserted once per event.

Timed from the moment the consumer is started (connection included) until all M transactions are
committed: the bare loop knows when its M-th commit returned; for the runtime the benchmark polls
the committed counter every 20 ms. Afterwards the queue must be empty (all acked). Runs alternate,
each on freshly truncated tables with fresh events; best of 3 each.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pika
from kombu.connection import Connection
from pika.adapters.blocking_connection import BlockingChannel
from resources import (
    create_schema,
    private_vhost,
    publish_all,
    ready_messages,
    truncate,
    unique,
    wait_for,
)
from sqlalchemy import BigInteger, Engine, Insert, Text, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from signup_shared.events import Envelope, UserSignedUp, parse_envelope
from signup_shared.inbox import InboxMixin
from signup_shared.messaging.consumer import ConsumerRuntime, Subscription
from signup_shared.messaging.handlers import (
    batch_exactly_once,
    exactly_once,
    session_batch_handler,
    session_handler,
)
from signup_shared.messaging.topology import ConsumerQueue, declare
from signup_shared.messaging.wire import OutgoingMessage
from signup_shared.testing import scratch_database, user_signed_up

PREFETCH = 50
POLL_INTERVAL = 0.02


class Base(DeclarativeBase):
    pass


class Inbox(InboxMixin, Base):
    pass


class Counter(Base):
    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True)
class HandlerFigures:
    count: int
    bare_runs: tuple[float, ...]
    platform_runs: tuple[float, ...]
    batched_runs: tuple[float, ...] = ()

    @property
    def batched(self) -> float | None:
        return max(self.batched_runs) if self.batched_runs else None

    @property
    def bare(self) -> float:
        return max(self.bare_runs)

    @property
    def platform(self) -> float:
        return max(self.platform_runs)

    @property
    def ratio(self) -> float:
        return self.platform / self.bare


def increment(name: str) -> Insert:
    return (
        insert(Counter)
        .values(name=name, value=1)
        .on_conflict_do_update(index_elements=["name"], set_={"value": Counter.value + 1})
    )


def claim(consumer: str, event_id: Any) -> Insert:
    return (
        insert(Inbox)
        .values(consumer=consumer, event_id=event_id)
        .on_conflict_do_nothing()
        .returning(Inbox.event_id)
    )


def counted(engine: Engine, name: str) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(Counter.value).where(Counter.name == name)) or 0)


def inbox_rows(engine: Engine, consumer: str) -> int:
    statement = select(func.count()).select_from(Inbox).where(Inbox.consumer == consumer)
    with engine.connect() as connection:
        return int(connection.scalar(statement) or 0)


# the bare loop -----------------------------------------------------------------------------
def bare_loop(url: str, queue: str, sessions: sessionmaker[Session], count: int) -> float:
    handled = 0

    def on_message(channel: BlockingChannel, method: Any, _props: Any, body: bytes) -> None:
        nonlocal handled
        envelope = parse_envelope(body)
        with sessions() as session:
            if session.execute(claim(queue, envelope.id)).first() is not None:
                session.execute(increment(queue))
            session.commit()
        channel.basic_ack(method.delivery_tag)
        handled += 1
        if handled == count:
            channel.stop_consuming()

    started = time.perf_counter()
    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        channel = connection.channel()
        channel.basic_qos(prefetch_count=PREFETCH)
        channel.basic_consume(queue, on_message, auto_ack=False)
        channel.start_consuming()
        elapsed = time.perf_counter() - started
    return count / elapsed


# the platform ------------------------------------------------------------------------------
def platform_runtime(
    url: str, consumer_queue: ConsumerQueue, sessions: sessionmaker[Session], batched: bool = False
) -> ConsumerRuntime:
    def step(session: Session, _envelope: Envelope[Any]) -> None:
        session.execute(increment(consumer_queue.name))

    handler = session_handler(sessions, exactly_once(consumer_queue.name, Inbox, step))
    batch_handler = (
        session_batch_handler(sessions, batch_exactly_once(consumer_queue.name, Inbox, step))
        if batched
        else None
    )
    subscription = Subscription(consumer_queue, (UserSignedUp,), handler, batch_handler)
    return ConsumerRuntime(consumer_queue.service, url, [subscription], prefetch=PREFETCH)


def platform(
    url: str, consumer_queue: ConsumerQueue, engine: Engine, count: int, batched: bool = False
) -> float:
    sessions = sessionmaker(engine, expire_on_commit=False)
    runtime = platform_runtime(url, consumer_queue, sessions, batched)
    stop = threading.Event()
    thread = threading.Thread(target=runtime.run, args=(stop,), name="runtime")
    started = time.perf_counter()
    thread.start()
    try:
        wait_for(
            lambda: counted(engine, consumer_queue.name) >= count,
            timeout=120,
            interval=POLL_INTERVAL,
            what=f"{count} messages handled by the runtime",
        )
        elapsed = time.perf_counter() - started
    finally:
        stop.set()
        thread.join(timeout=30)
    return count / elapsed


# one run -----------------------------------------------------------------------------------
Runner = Callable[[str, ConsumerQueue, Engine, int], float]


def batched(url: str, consumer_queue: ConsumerQueue, engine: Engine, count: int) -> float:
    return platform(url, consumer_queue, engine, count, batched=True)


def bare(url: str, consumer_queue: ConsumerQueue, engine: Engine, count: int) -> float:
    return bare_loop(url, consumer_queue.name, sessionmaker(engine, expire_on_commit=False), count)


def preload(url: str, consumer_queue: ConsumerQueue, count: int) -> None:
    producer = consumer_queue.routing_key.split(".", 1)[0]
    events = [user_signed_up(producer) for _ in range(count)]
    publish_all(url, [OutgoingMessage.from_envelope(event) for event in events])
    wait_for(
        lambda: ready_messages(url, consumer_queue.name) == count,
        timeout=30,
        interval=0.1,
        what=f"{count} messages in {consumer_queue.name}",
    )


def measure(
    runner: Runner, url: str, consumer_queue: ConsumerQueue, engine: Engine, count: int
) -> float:
    truncate(engine, "inbox", "counters")
    preload(url, consumer_queue, count)
    rate = runner(url, consumer_queue, engine, count)
    rows, left = inbox_rows(engine, consumer_queue.name), ready_messages(url, consumer_queue.name)
    if rows != count or left != 0:
        raise RuntimeError(f"{consumer_queue.name}: {rows} inbox rows, {left} messages left")
    return round(rate, 1)


def run(count: int = 5_000, runs: int = 3) -> HandlerFigures:
    run_id = unique("bench")
    queues = {
        kind: ConsumerQueue(f"{run_id}{kind}", f"{run_id}{kind}.user_signed_up")
        for kind in ("bare", "platform", "batched")
    }
    results: dict[str, list[float]] = {"bare": [], "platform": [], "batched": []}
    runners: dict[str, Runner] = {"bare": bare, "platform": platform, "batched": batched}
    with private_vhost() as url, scratch_database("bench") as engine:
        create_schema(engine, Base)
        with Connection(url) as connection:
            declare(connection, queues.values())
        for _ in range(runs):
            for kind, consumer_queue in queues.items():
                results[kind].append(measure(runners[kind], url, consumer_queue, engine, count))
    return HandlerFigures(
        count, tuple(results["bare"]), tuple(results["platform"]), tuple(results["batched"])
    )
