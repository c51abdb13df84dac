"""Private, throw-away resources for the component benchmarks (parts 1 and 2).

Each benchmark gets a RabbitMQ vhost of its own (created through the management API, deleted
afterwards with everything in it) and a scratch PostgreSQL database, so nothing it does can
reach a running ``make run`` or another test, and nothing is left behind.
"""

import contextlib
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pika
from sqlalchemy import Engine, text
from sqlalchemy.orm import DeclarativeBase

from platform_harness.stack import AMQP_HOST, MANAGEMENT
from signup_shared.messaging.publisher import ConfirmingPublisher
from signup_shared.messaging.wire import OutgoingMessage


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def _management(method: str, path: str, body: Any = None) -> None:
    url = urllib.parse.urlsplit(MANAGEMENT)
    response = httpx.request(
        method,
        f"{url.scheme}://{url.hostname}:{url.port}{path}",
        json=body,
        auth=(url.username or "guest", url.password or "guest"),
        timeout=30,
    )
    if response.status_code not in (200, 201, 204, 404):
        raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")


@contextlib.contextmanager
def private_vhost(prefix: str = "bench") -> Iterator[str]:
    """An AMQP URL to a vhost of its own; the vhost (queues included) is deleted afterwards."""
    name = unique(prefix)
    _management("PUT", f"/api/vhosts/{name}")
    _management(
        "PUT", f"/api/permissions/{name}/guest", {"configure": ".*", "write": ".*", "read": ".*"}
    )
    try:
        yield f"amqp://guest:guest@{AMQP_HOST}/{urllib.parse.quote(name, safe='')}"
    finally:
        _management("DELETE", f"/api/vhosts/{name}")


def ready_messages(url: str, queue: str) -> int:
    """Messages ready in ``queue`` (not counting delivered, unacknowledged ones)."""
    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        method = connection.channel().queue_declare(queue, passive=True).method
        return int(method.message_count)


def purge(url: str, queue: str) -> None:
    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        connection.channel().queue_purge(queue)


def publish_all(url: str, messages: Sequence[OutgoingMessage], batch: int = 500) -> None:
    """Publish with confirms, ``batch`` messages per round trip."""
    publisher = ConfirmingPublisher(url)
    try:
        for start in range(0, len(messages), batch):
            publisher.publish_batch(messages[start : start + batch])
    finally:
        publisher.close()


def create_schema(engine: Engine, base: type[DeclarativeBase], *ddl: str) -> None:
    base.metadata.create_all(engine)
    with engine.begin() as connection:
        for statement in ddl:
            connection.execute(text(statement))


def vacuum(engine: Engine, *tables: str) -> None:
    """Leave every run the same table state: no dead rows, fresh planner statistics."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in tables:
            connection.execute(text(f"VACUUM ANALYZE {table}"))


def truncate(engine: Engine, *tables: str) -> None:
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))


def wait_for(condition: Callable[[], bool], timeout: float, interval: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout}s")
        time.sleep(interval)
