"""Benchmark of the event history, run by hand (not a timed test, not part of ``make bench``):

    .venv/bin/python tests/bench/history_bench.py [--events N] [--cpu-seconds S] [--rate R]

(``make bench-history`` runs it with ``--events 100000 --cpu-seconds 15``, about 2 minutes.)

The history keeps signups sealed (``UserSignedUp`` v3; docs/erasure.md), so both parts use v3:

1. Replay speed: N users get a data key in a scratch accounts database, served by a real
   ``accounts-web`` (``history_keys``: ``POST /keys/lookup``, scope keys:read); N ``UserSignedUp``
   v3 events, each sealed with its user's key, are published to a vhost of this script (topology
   and ``events.history`` declared as the definitions do, one replica). Then audit's real
   subscription (inbox claim and ``audit_users`` insert in one transaction per batch, on a
   scratch database migrated like audit's) catches up from ``first`` through the shared runtime's
   ``CatchUp``, unsealing each batch as a service does (``Unsealer`` over ``HttpKeyResolver``: one
   lookup per batch, cold cache). Prints events/s, the CPU per event of the catch-up and of
   accounts-web (the key lookups), and checks that N users were recorded, each unsealed.
2. With ``--cpu-seconds S`` (> 0): R signups/s (default 100) for S seconds as accounts and
   provisioning publish them without the history (``UserSignedUp`` v2 and ``SpaceProvisioned``,
   the stream unbound) and then S seconds with it (the sealed v3 copy too, the stream bound to
   the keys without personal data in clear: v3 and ``SpaceProvisioned``), each version into a
   quorum queue that a consumer drains (audit's for v2, accounts' for ``SpaceProvisioned``). The
   difference of the broker's CPU (the system node's Erlang VM, utime+stime from /proc) and of
   this process's (the publisher: the relay's share), per signup, plus sealing one signup
   (``seal_envelope``, timed apart), is what the history adds. The broker is shared with
   whatever else runs on the machine: run it on a quiet machine and repeat.

Logs (JSON, INFO, as in production) go to /dev/null; results to stdout.
"""

import argparse
import os
import sys
import threading
import time
import timeit
import urllib.parse
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from history_keys import keys_service
from kombu import Connection, Consumer

import audit
from audit import consumers
from audit.models import AuditUser, InboxMessage
from signup_contracts import seal_envelope
from signup_contracts.amqp import EVENTS_EXCHANGE, HISTORY_STREAM
from signup_contracts.sealed import new_key
from signup_contracts.testing import space_provisioned, user_signed_up_v2
from signup_shared.db import make_session_factory
from signup_shared.keys import HttpKeyResolver
from signup_shared.logging import configure_logging
from signup_shared.messaging import history_stream, topology
from signup_shared.messaging.catch_up import CatchUp
from signup_shared.messaging.processing import MessageProcessor
from signup_shared.messaging.publisher import ConfirmingPublisher
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.messaging.unseal import Unsealer
from signup_shared.messaging.wire import OutgoingMessage
from signup_shared.settings import HistorySettings
from signup_shared.testing import amqp_url, migrated_database

MIGRATIONS = Path(audit.__file__).parent / "migrations"
MANAGEMENT = os.environ.get("RABBITMQ_MANAGEMENT_URL", "http://guest:guest@127.0.0.1:15672")
QUEUE = ConsumerQueue("audit", "accounts.user_signed_up.v2")
SPACES = ConsumerQueue("accounts", "provisioning.space_provisioned")


def management(method: str, path: str) -> None:
    url = urllib.parse.urlsplit(MANAGEMENT)
    base = f"{url.scheme}://{url.hostname}:{url.port}"
    auth = (url.username or "guest", url.password or "guest")
    response = httpx.request(method, base + path, auth=auth, timeout=60)
    if response.status_code not in (200, 201, 204, 404):
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")


def vhost_url(vhost: str) -> str:
    parts = urllib.parse.urlsplit(amqp_url())
    return urllib.parse.urlunsplit(parts._replace(path=f"/{vhost}"))


def cpu_seconds(pid: int | None = None) -> float:
    """utime + stime of ``pid`` (this process by default), in seconds."""
    stat = Path(f"/proc/{pid or os.getpid()}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")


def broker_pid() -> int:
    """The system node's Erlang VM (not a node of deploy/cluster)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        cluster_node = any(b"rabbit-" in part for part in command)  # deploy/cluster's nodes
        if command and command[0].endswith(b"beam.smp") and not cluster_node:
            return int(entry.name)
    raise RuntimeError("no RabbitMQ node (beam.smp) found")


def publish(url: str, messages: list[OutgoingMessage], batch: int = 500) -> None:
    publisher = ConfirmingPublisher(url)
    try:
        for start in range(0, len(messages), batch):
            publisher.publish_batch(messages[start : start + batch])
    finally:
        publisher.close()


def sealed_signup(user_id: uuid.UUID, key: bytes) -> OutgoingMessage:
    clear = user_signed_up_v2(user_id=user_id, email=f"{user_id.hex}@bench.example")
    return OutgoingMessage.from_envelope(seal_envelope(clear, key))


class CountingResolver:
    """The real resolver, counting the keys it found (unsealed) and missed (read as redacted)."""

    def __init__(self, inner: HttpKeyResolver) -> None:
        self.inner = inner
        self.found = self.missing = 0

    def lookup(self, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, bytes | None]:
        answer = self.inner.lookup(user_ids)
        found = sum(key is not None for key in answer.values())
        self.found += found
        self.missing += len(answer) - found
        return answer

    def close(self) -> None:
        self.inner.close()


def replay(url: str, count: int) -> dict[str, Any]:
    began = time.monotonic()
    with keys_service(count) as service:
        prepared = time.monotonic()
        publish(url, [sealed_signup(user, key) for user, key in service.keys.items()])
        published = time.monotonic()
        with migrated_database("histbench", MIGRATIONS) as engine:
            sessions = make_session_factory(engine)
            subscription = consumers.on_user_signed_up.subscription(QUEUE, sessions, InboxMessage)
            resolver = CountingResolver(HttpKeyResolver(service.url, service.api_key))
            job = CatchUp(
                "audit",
                url,
                [subscription],
                "first",
                ConfirmingPublisher(url),
                processor=MessageProcessor(unsealer=Unsealer(resolver)),
                prefetch=500,
                batch_size=100,
                margin=0,
            )
            cpu_before, web_before = cpu_seconds(), cpu_seconds(service.pid)
            report = job.run(threading.Event())
            cpu, web = cpu_seconds() - cpu_before, cpu_seconds(service.pid) - web_before
            resolver.close()
            with sessions() as session:
                recorded = session.query(AuditUser).count()
    handled = max(report.handled, 1)
    return {
        "events": count,
        "setup_seconds": round(prepared - began, 1),
        "seal_and_publish_seconds": round(published - prepared, 1),
        "catch_up_seconds": report.seconds,
        "events_per_second": round(report.handled / report.seconds) if report.seconds else None,
        "catch_up_cpu_ms_per_event": round(1000 * cpu / handled, 3),
        "accounts_web_cpu_ms_per_event": round(1000 * web / handled, 3),
        "recorded_users": recorded,
        "unsealed": resolver.found,
        "redacted": resolver.missing,
        "complete": report.complete and recorded == resolver.found == count,
    }


def signups_for(seconds: float, rate: int, with_history: bool) -> list[list[OutgoingMessage]]:
    """Per signup what accounts and provisioning publish: v2 and ``SpaceProvisioned``, and with
    the history the sealed v3 copy of the same event (last, as accounts writes it)."""
    per_signup = []
    for _ in range(int(seconds * rate)):
        v2 = user_signed_up_v2()
        copies = [v2, seal_envelope(v2, new_key())] if with_history else [v2]
        space = space_provisioned(user_id=v2.data.user_id)
        per_signup.append([OutgoingMessage.from_envelope(e) for e in (*copies, space)])
    return per_signup


def broker_cpu(
    url: str, seconds: float, rate: int, pid: int, with_history: bool
) -> tuple[float, float]:
    """Broker and own CPU seconds while ``rate`` signups/s are published and consumed (own:
    the publisher and the consumer; the consumer's share is the same in both windows)."""
    signups = signups_for(seconds, rate, with_history)
    publisher = ConfirmingPublisher(url)
    stop = threading.Event()

    def drain() -> None:
        with Connection(url) as connection:
            channel = connection.channel()
            channel.basic_qos(0, 200, False)
            queues = [QUEUE.main_queue(), SPACES.main_queue()]
            with Consumer(channel, queues, on_message=lambda m: m.ack(), no_ack=False):
                while not stop.is_set():
                    try:
                        connection.drain_events(timeout=0.2)
                    except TimeoutError:
                        continue

    consumer = threading.Thread(target=drain)
    consumer.start()
    time.sleep(1)
    before, own_before = cpu_seconds(pid), cpu_seconds()
    began = time.monotonic()
    for index, messages in enumerate(signups):
        publisher.publish_batch(messages)
        delay = began + (index + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    used, own = cpu_seconds(pid) - before, cpu_seconds() - own_before
    stop.set()
    consumer.join()
    publisher.close()
    return used, own


def seal_ms() -> float:
    """Sealing one signup (``seal_envelope``: what accounts adds to a signup), best of 3."""
    v2, key = user_signed_up_v2(), new_key()
    return 1000 * min(timeit.repeat(lambda: seal_envelope(v2, key), number=2_000, repeat=3)) / 2_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--cpu-seconds", type=float, default=0.0)
    parser.add_argument("--rate", type=int, default=100, help="signups per second")
    args = parser.parse_args()
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115  (the logs: as in production, unread)
    configure_logging("history-bench", "INFO", "json")
    vhost = f"histbench{uuid.uuid4().hex[:8]}"
    management("PUT", f"/api/vhosts/{vhost}")
    management_put_permissions(vhost)
    url = vhost_url(vhost)
    try:
        with Connection(url) as connection:
            topology.declare(connection, [QUEUE, SPACES])
            history_stream.declare_history(connection, HistorySettings(replicas=1))
        print("load average before:", os.getloadavg())
        result = replay(url, args.events)
        print("replay:", result, "load average:", os.getloadavg())
        if args.cpu_seconds > 0:
            pid = broker_pid()
            with Connection(url) as connection:
                channel = connection.channel()
                for key in history_stream.history_routing_keys():
                    channel.queue_unbind(HISTORY_STREAM, EVENTS_EXCHANGE, key)
                without = broker_cpu(url, args.cpu_seconds, args.rate, pid, with_history=False)
                for key in history_stream.history_routing_keys():
                    channel.queue_bind(HISTORY_STREAM, EVENTS_EXCHANGE, key)
                with_history = broker_cpu(url, args.cpu_seconds, args.rate, pid, with_history=True)
            signups = args.cpu_seconds * args.rate
            broker = 1000 * (with_history[0] - without[0]) / signups
            publisher = 1000 * (with_history[1] - without[1]) / signups
            sealing = seal_ms()
            print(
                "history cpu:",
                {
                    "signups": int(signups),
                    "rate_per_second": args.rate,
                    "broker_without_ms_per_signup": round(1000 * without[0] / signups, 3),
                    "broker_with_ms_per_signup": round(1000 * with_history[0] / signups, 3),
                    "broker_adds_ms": round(broker, 3),
                    "publisher_without_ms_per_signup": round(1000 * without[1] / signups, 3),
                    "publisher_with_ms_per_signup": round(1000 * with_history[1] / signups, 3),
                    "publisher_adds_ms": round(publisher, 3),
                    "seal_ms": round(sealing, 3),
                    "history_adds_ms_per_signup": round(broker + publisher + sealing, 3),
                    "load_average": os.getloadavg(),
                },
            )
    finally:
        management("DELETE", f"/api/vhosts/{vhost}")
    return 0


def management_put_permissions(vhost: str) -> None:
    url = urllib.parse.urlsplit(MANAGEMENT)
    base = f"{url.scheme}://{url.hostname}:{url.port}"
    user = url.username or "guest"
    httpx.put(
        f"{base}/api/permissions/{vhost}/{user}",
        json={"configure": ".*", "write": ".*", "read": ".*"},
        auth=(user, url.password or "guest"),
        timeout=30,
    ).raise_for_status()


if __name__ == "__main__":
    sys.exit(main())
