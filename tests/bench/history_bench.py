"""Benchmark of the event history, run by hand (not a timed test):

    .venv/bin/python tests/bench/history_bench.py [--events N] [--cpu-seconds S] [--rate R]

1. Replay speed: N ``UserSignedUp`` events (default 20,000) are published to a vhost of this
   script (topology and ``events.history`` declared as the definitions do, one replica), then
   audit's real subscription (inbox claim and ``audit_users`` insert in one transaction per batch,
   on a scratch PostgreSQL database migrated like audit's) catches up from ``first`` through the
   shared runtime's ``CatchUp``. Prints events/s, the catch-up's own CPU per event, and checks
   that N users were recorded.
2. With ``--cpu-seconds S`` (> 0): the broker's CPU (the system node's Erlang VM, utime+stime
   from /proc) while R signups/s (default 100; each signup is three events as published today:
   ``UserSignedUp`` v1 and v2 and ``SpaceProvisioned``) go to a bound quorum queue that a consumer
   drains, for S seconds without the history's binding and S seconds with it. The difference,
   per signup, is what the history costs the broker. The broker is shared with whatever else runs
   on the machine: run it on a quiet machine and repeat.

Logs (JSON, INFO, as in production) go to /dev/null; results to stdout.
"""

import argparse
import os
import sys
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import httpx
from kombu import Connection, Consumer

import audit
from audit import consumers
from audit.models import AuditUser, InboxMessage
from signup_contracts.amqp import EVENTS_EXCHANGE, HISTORY_STREAM
from signup_contracts.testing import space_provisioned, user_signed_up, user_signed_up_v2
from signup_shared.db import make_session_factory
from signup_shared.logging import configure_logging
from signup_shared.messaging import history_stream, topology
from signup_shared.messaging.catch_up import CatchUp
from signup_shared.messaging.processing import MessageProcessor
from signup_shared.messaging.publisher import ConfirmingPublisher
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.messaging.wire import OutgoingMessage
from signup_shared.settings import HistorySettings
from signup_shared.testing import amqp_url, migrated_database

MIGRATIONS = Path(audit.__file__).parent / "migrations"
MANAGEMENT = os.environ.get("RABBITMQ_MANAGEMENT_URL", "http://guest:guest@127.0.0.1:15672")
QUEUE = ConsumerQueue("audit", "accounts.user_signed_up")


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


def replay(url: str, count: int) -> dict[str, Any]:
    events = [user_signed_up() for _ in range(count)]
    began = time.monotonic()
    publish(url, [OutgoingMessage.from_envelope(event) for event in events])
    published = time.monotonic() - began
    with migrated_database("histbench", MIGRATIONS) as engine:
        sessions = make_session_factory(engine)
        subscription = consumers.on_user_signed_up.subscription(QUEUE, sessions, InboxMessage)
        job = CatchUp(
            "audit",
            url,
            [subscription],
            "first",
            ConfirmingPublisher(url),
            processor=MessageProcessor(),
            prefetch=500,
            batch_size=100,
            margin=0,
        )
        cpu_before = cpu_seconds()
        report = job.run(threading.Event())
        cpu = cpu_seconds() - cpu_before
        with sessions() as session:
            recorded = session.query(AuditUser).count()
    return {
        "events": count,
        "publish_seconds": round(published, 1),
        "catch_up_seconds": report.seconds,
        "events_per_second": round(report.handled / report.seconds) if report.seconds else None,
        "catch_up_cpu_ms_per_event": round(1000 * cpu / max(report.handled, 1), 3),
        "recorded_users": recorded,
        "complete": report.complete and recorded == count,
    }


def signups_for(seconds: float, rate: int) -> list[list[OutgoingMessage]]:
    per_signup = []
    for _ in range(int(seconds * rate)):
        v1 = user_signed_up()
        v2 = user_signed_up_v2(user_id=v1.data.user_id).model_copy(update={"id": v1.id})
        space = space_provisioned(user_id=v1.data.user_id)
        per_signup.append([OutgoingMessage.from_envelope(e) for e in (v1, v2, space)])
    return per_signup


def broker_cpu(url: str, seconds: float, rate: int, pid: int) -> float:
    """Broker CPU seconds while ``rate`` signups/s are published and consumed for ``seconds``."""
    signups = signups_for(seconds, rate)
    publisher = ConfirmingPublisher(url)
    taken = [0]
    stop = threading.Event()

    def drain() -> None:
        with Connection(url) as connection:
            channel = connection.channel()
            channel.basic_qos(0, 200, False)

            def take(message: Any) -> None:
                taken[0] += 1
                message.ack()

            with Consumer(channel, [QUEUE.main_queue()], on_message=take, no_ack=False):
                while not stop.is_set():
                    try:
                        connection.drain_events(timeout=0.2)
                    except TimeoutError:
                        continue

    consumer = threading.Thread(target=drain)
    consumer.start()
    time.sleep(1)
    before = cpu_seconds(pid)
    began = time.monotonic()
    for index, messages in enumerate(signups):
        publisher.publish_batch(messages)
        delay = began + (index + 1) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    used = cpu_seconds(pid) - before
    stop.set()
    consumer.join()
    publisher.close()
    return used


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
            topology.declare(connection, [QUEUE])
            history_stream.declare_history(connection, HistorySettings(replicas=1))
        result = replay(url, args.events)
        print("replay:", result)
        if args.cpu_seconds > 0:
            pid = broker_pid()
            with Connection(url) as connection:
                channel = connection.channel()
                for key in history_stream.history_routing_keys():
                    channel.queue_unbind(HISTORY_STREAM, EVENTS_EXCHANGE, key)
                without = broker_cpu(url, args.cpu_seconds, args.rate, pid)
                for key in history_stream.history_routing_keys():
                    channel.queue_bind(HISTORY_STREAM, EVENTS_EXCHANGE, key)
                with_history = broker_cpu(url, args.cpu_seconds, args.rate, pid)
            signups = args.cpu_seconds * args.rate
            print(
                "broker cpu:",
                {
                    "signups": int(signups),
                    "rate_per_second": args.rate,
                    "without_history_ms_per_signup": round(1000 * without / signups, 3),
                    "with_history_ms_per_signup": round(1000 * with_history / signups, 3),
                    "history_adds_ms_per_signup": round(
                        1000 * (with_history - without) / signups, 3
                    ),
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
