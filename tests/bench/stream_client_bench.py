"""Reading the history stream: AMQP 0-9-1 (what the platform uses) against the stream protocol
(rstream), run by hand (not a timed test):

    rabbitmq-plugins enable rabbitmq_stream     # once: the stream protocol listens on 5552
    .venv/bin/python tests/bench/stream_client_bench.py [--events N] [--runs R]

N events (default 100,000; ``UserSignedUp`` v2 envelopes as accounts publishes them, about 600
bytes each) are published with confirms to a stream in a vhost of this script, then read from
``first`` to the last one by each client in turn, ``runs`` times (default 3), each reader
decoding every body as JSON (what a consumer must do at least):

- **kombu (AMQP 0-9-1)**: as ``signup_shared.messaging.history`` reads it: ``basic.qos``
  prefetch 500, ``x-stream-offset=first``, a manual ack per message (the broker requires acks
  to grant more credit), the offset from each delivery's header;
- **rstream (stream protocol)**: ``Consumer.subscribe`` from ``OffsetType.FIRST`` with the AMQP
  1.0 decoder (messages published over AMQP 0-9-1 are stored as AMQP 1.0 and decoded so).

Prints events/s (wall) and the reader's own CPU per event (``time.process_time``); the
broker's CPU is not separated (it is shared). The vhost is deleted at the end.
"""

import argparse
import asyncio
import dataclasses
import json
import sys
import time
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
from kombu import Connection, Consumer, Queue
from rstream import (
    AMQPMessage,
    ConsumerOffsetSpecification,
    MessageContext,
    OffsetType,
    amqp_decoder,
)
from rstream import Consumer as StreamConsumer

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from signup_contracts.testing import user_signed_up_v2  # noqa: E402
from signup_shared.messaging.publisher import ConfirmingPublisher  # noqa: E402
from signup_shared.messaging.wire import OutgoingMessage  # noqa: E402

MANAGEMENT = "http://127.0.0.1:15672"
AUTH = ("guest", "guest")
STREAM = "bench.history"


def management(method: str, path: str, body: object = None) -> None:
    response = httpx.request(method, MANAGEMENT + path, auth=AUTH, json=body, timeout=60)
    if response.status_code not in (200, 201, 204, 404):
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")


def publish(url: str, count: int) -> None:
    with Connection(url) as connection:
        channel = connection.channel()
        channel.queue_declare(
            STREAM, durable=True, auto_delete=False, arguments={"x-queue-type": "stream"}
        )
        channel.close()
    publisher = ConfirmingPublisher(url)
    try:
        batch: list[OutgoingMessage] = []
        for _ in range(count):
            message = OutgoingMessage.from_envelope(user_signed_up_v2(producer="accounts"))
            # through the default exchange straight to the stream
            batch.append(dataclasses.replace(message, exchange="", routing_key=STREAM))
            if len(batch) == 1_000:
                publisher.publish_batch(batch)
                batch = []
        if batch:
            publisher.publish_batch(batch)
    finally:
        publisher.close()


def read_kombu(url: str, count: int) -> None:
    seen = 0
    with Connection(url) as connection:
        channel = connection.channel()
        channel.basic_qos(0, 500, False)

        def on_message(message: object) -> None:
            nonlocal seen
            json.loads(message.body)  # type: ignore[attr-defined]
            message.headers.get("x-stream-offset")  # type: ignore[attr-defined]
            message.ack()  # type: ignore[attr-defined]
            seen += 1

        queue = Queue(STREAM, no_declare=True, consumer_arguments={"x-stream-offset": "first"})
        consumer = Consumer(channel, queues=[queue], on_message=on_message, no_ack=False)
        consumer.consume()
        while seen < count:
            connection.drain_events(timeout=10)
        consumer.cancel()


def read_rstream(vhost: str, count: int) -> None:
    async def main() -> None:
        done = asyncio.Event()
        seen = 0

        async def on_message(message: AMQPMessage, context: MessageContext) -> None:
            nonlocal seen
            json.loads(bytes(message.body))  # type: ignore[arg-type]
            _ = context.offset
            seen += 1
            if seen >= count:
                done.set()

        async with StreamConsumer(
            "127.0.0.1", 5552, username="guest", password="guest", vhost=vhost
        ) as consumer:
            await consumer.subscribe(
                STREAM,
                on_message,
                decoder=amqp_decoder,
                offset_specification=ConsumerOffsetSpecification(OffsetType.FIRST, None),
            )
            await asyncio.wait_for(done.wait(), timeout=300)

    asyncio.run(main())


def measure(name: str, count: int, read: Callable[[], None]) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    read()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"  {name:28} {count / wall:>10,.0f} events/s   {cpu * 1e6 / count:>6.1f} µs CPU per event"
    )
    return count / wall, cpu * 1e6 / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    vhost = f"bench-stream-{uuid.uuid4().hex[:8]}"
    management("PUT", f"/api/vhosts/{vhost}")
    management(
        "PUT",
        f"/api/permissions/{vhost}/guest",
        {"configure": ".*", "write": ".*", "read": ".*"},
    )
    url = f"amqp://guest:guest@127.0.0.1:5672/{urllib.parse.quote(vhost, safe='')}"
    try:
        started = time.perf_counter()
        publish(url, args.events)
        print(f"published {args.events:,} events in {time.perf_counter() - started:.1f} s")
        results: dict[str, list[tuple[float, float]]] = {"kombu": [], "rstream": []}
        for run in range(args.runs):
            print(f"run {run + 1}:")
            results["kombu"].append(
                measure("kombu (AMQP 0-9-1)", args.events, lambda: read_kombu(url, args.events))
            )
            results["rstream"].append(
                measure(
                    "rstream (stream protocol)",
                    args.events,
                    lambda: read_rstream(vhost, args.events),
                )
            )
        print("best of each:")
        for name, runs in results.items():
            rate = max(r for r, _ in runs)
            cpu = min(c for _, c in runs)
            print(f"  {name:10} {rate:>10,.0f} events/s   {cpu:>6.1f} µs CPU per event")
    finally:
        management("DELETE", f"/api/vhosts/{vhost}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
