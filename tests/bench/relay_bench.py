"""Part 1: outbox relay throughput against a hand-written pika publisher, same run, same broker.

The relay publishes N committed ``UserSignedUp`` outbox rows (``OutboxRelay.publish_pending`` with
a ``ConfirmingPublisher``, batches of 500): select with ``FOR UPDATE SKIP LOCKED``, publish the
batch pipelined, wait for every confirm, mark the rows sent, commit. Timed: that call only, with
the rows already in the table and the broker connection already open. The baseline is
``baselines.raw_pika_publish_rate``: the same N persistent messages with confirms, up to 1,000
unconfirmed, no database at all. Both land in a durable classic queue; runs alternate, best of 3.
Beside the rates, the relay's CPU per row (this process's user + system time during that call,
every thread: the only work the process does meanwhile), steadier on a shared machine.

Alone (e.g. interleaved with another checkout's sources through ``PYTHONPATH``)::

    .venv/bin/python tests/bench/relay_bench.py [count] [runs]
"""

# ruff: noqa: E402  (alone, the harness in tests/ must be on sys.path first)
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import json
import os
import time
from dataclasses import asdict, dataclass
from typing import Any

from baselines import raw_pika_publish_rate
from kombu.connection import Connection
from kombu.entity import Queue
from resources import create_schema, private_vhost, purge, ready_messages, truncate, unique, vacuum
from sqlalchemy import Engine, insert
from sqlalchemy.orm import DeclarativeBase

from signup_shared.messaging.publisher import ConfirmingPublisher
from signup_shared.messaging.topology import declare, events_exchange
from signup_shared.messaging.wire import OutgoingMessage
from signup_shared.outbox import OutboxMixin, outbox_ddl, outbox_values
from signup_shared.outbox.relay import OutboxRelay
from signup_shared.testing import scratch_database, user_signed_up


class Base(DeclarativeBase):
    pass


class BenchOutbox(OutboxMixin, Base):
    pass


@dataclass(frozen=True)
class RelayFigures:
    count: int
    relay_runs: tuple[float, ...]
    raw_runs: tuple[float, ...]
    relay_cpu_us_per_row: tuple[float, ...] = ()

    @property
    def relay(self) -> float:
        return max(self.relay_runs)

    @property
    def raw(self) -> float:
        return max(self.raw_runs)

    @property
    def ratio(self) -> float:
        return self.relay / self.raw


def refill(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Exactly ``rows`` pending in a freshly vacuumed outbox."""
    truncate(engine, "outbox")
    with engine.begin() as connection:
        connection.execute(insert(BenchOutbox), rows)
    vacuum(engine, "outbox")


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def time_relay(
    relay: OutboxRelay, engine: Engine, rows: list[dict[str, Any]]
) -> tuple[float, float]:
    """Rows per second, and CPU microseconds per row."""
    refill(engine, rows)
    started, started_cpu = time.perf_counter(), cpu_seconds()
    published = relay.publish_pending()
    elapsed, cpu = time.perf_counter() - started, cpu_seconds() - started_cpu
    if published != len(rows):
        raise RuntimeError(f"relay published {published} of {len(rows)}")
    return len(rows) / elapsed, round(cpu / len(rows) * 1e6, 1)


def checked(url: str, queue: str, count: int, rate: float) -> float:
    """The rate, once the queue holds exactly ``count`` messages (then emptied for the next)."""
    held = ready_messages(url, queue)
    if held != count:
        raise RuntimeError(f"{queue} holds {held} messages, expected {count}")
    purge(url, queue)
    return round(rate, 1)


def bind_queue(url: str, name: str, routing_key: str) -> None:
    with Connection(url) as connection:
        declare(connection)
        Queue(name, events_exchange, routing_key=routing_key, durable=True)(
            connection.default_channel
        ).declare()


def warm_up(publisher: ConfirmingPublisher, url: str, queue: str, producer: str) -> None:
    """Open the relay's broker connection before timing (the baseline opens its own untimed)."""
    publisher.publish_batch([OutgoingMessage.from_envelope(user_signed_up(producer))])
    purge(url, queue)


def run(count: int = 20_000, runs: int = 3) -> RelayFigures:
    producer = unique("benchrelay")
    rows = [outbox_values(user_signed_up(producer)) for _ in range(count)]
    relay_queue, raw_queue = f"{producer}.relay", f"{producer}.raw"
    relay_runs: list[float] = []
    raw_runs: list[float] = []
    cpu_runs: list[float] = []
    with private_vhost() as url, scratch_database("bench") as engine:
        create_schema(engine, Base, *outbox_ddl())
        bind_queue(url, relay_queue, f"{producer}.user_signed_up")
        publisher = ConfirmingPublisher(url)
        relay = OutboxRelay(engine, BenchOutbox, publisher)
        try:
            warm_up(publisher, url, relay_queue, producer)
            for _ in range(runs):
                rate, cpu = time_relay(relay, engine, rows)
                relay_runs.append(checked(url, relay_queue, count, rate))
                cpu_runs.append(cpu)
                raw = raw_pika_publish_rate(url, raw_queue, count)
                raw_runs.append(checked(url, raw_queue, count, raw))
        finally:
            relay.close()
            publisher.close()
    return RelayFigures(count, tuple(relay_runs), tuple(raw_runs), tuple(cpu_runs))


if __name__ == "__main__":
    figures = run(*(int(arg) for arg in sys.argv[1:3]))
    print(json.dumps({**asdict(figures), "ratio": round(figures.ratio, 3)}))
