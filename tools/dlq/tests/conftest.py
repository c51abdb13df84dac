"""Fixtures for the signup-dlq tests.

Integration tests talk to the local RabbitMQ (``$AMQP_URL``, default guest@127.0.0.1:5672) and
declare their own uniquely named queues, which are deleted afterwards even when a test fails.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pika
import pika.exceptions
import pytest

from signup_dlq.config import (
    resolve_amqp_url,
    resolve_management_url,
    vhost_from_amqp_url,
)
from signup_dlq.errors import ManagementApiError
from signup_dlq.management import ManagementClient

# The fixtures declare and delete their own test queues, which the operator user may not do:
# they (and the CLI under test) run as the broker's administrator unless the environment says
# otherwise. The operator's own permissions are proven in tests/security.
ADMIN_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
ADMIN_MANAGEMENT_URL = "http://guest:guest@127.0.0.1:15672"
AMQP_URL = resolve_amqp_url(None, {"AMQP_URL": ADMIN_AMQP_URL, **os.environ})
MANAGEMENT_URL = resolve_management_url(
    None, {"RABBITMQ_MANAGEMENT_URL": ADMIN_MANAGEMENT_URL, **os.environ}
)


@pytest.fixture(autouse=True)
def _broker_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIGNUP_DLQ_AMQP_URL", raising=False)
    monkeypatch.delenv("SIGNUP_DLQ_MANAGEMENT_URL", raising=False)
    monkeypatch.setenv("AMQP_URL", AMQP_URL)
    monkeypatch.setenv("RABBITMQ_MANAGEMENT_URL", MANAGEMENT_URL)


def make_envelope(event_id: str, **data: Any) -> bytes:
    """A JSON event envelope as the platform's producers publish it."""
    return json.dumps(
        {
            "id": event_id,
            "type": "user_signed_up",
            "version": 1,
            "occurred_at": "2024-05-01T12:00:00Z",
            "producer": "accounts",
            "correlation_id": f"corr-{event_id}",
            "causation_id": None,
            "data": data or {"user_id": event_id, "email": f"{event_id}@example.test"},
        }
    ).encode()


def failure_headers(original_queue: str, **overrides: Any) -> dict[str, Any]:
    """The headers our consumers put on a message they dead-letter."""
    headers: dict[str, Any] = {
        "x-signup-failure-kind": "exhausted",
        "x-signup-error-type": "SmtpTimeout",
        "x-signup-error-message": "SMTP server did not answer in 10s",
        "x-signup-service": "notifications",
        "x-signup-attempts": 5,
        "x-signup-first-failure-at": "2024-05-01T12:00:01Z",
        "x-signup-last-failure-at": "2024-05-01T12:05:00Z",
        "x-signup-original-exchange": "events",
        "x-signup-original-routing-key": "accounts.user_signed_up",
        "x-signup-original-queue": original_queue,
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    }
    headers.update(overrides)
    return headers


@dataclass
class Message:
    properties: Any
    body: bytes

    @property
    def headers(self) -> dict[str, Any]:
        return dict(self.properties.headers or {})


class Amqp:
    """A helper connection for setting up and inspecting test queues."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connection = pika.BlockingConnection(pika.URLParameters(url))
        self.channel = self.connection.channel()

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()

    def publish(
        self,
        queue: str,
        body: bytes,
        *,
        headers: dict[str, Any] | None = None,
        message_id: str | None = None,
        **properties: Any,
    ) -> None:
        properties.setdefault("content_type", "application/json")
        properties.setdefault("delivery_mode", 2)
        self.channel.basic_publish(
            exchange="",
            routing_key=queue,
            body=body,
            properties=pika.BasicProperties(headers=headers, message_id=message_id, **properties),
        )

    def depth(self, queue: str) -> int:
        return int(self.channel.queue_declare(queue=queue, passive=True).method.message_count)

    def wait_depth(self, queue: str, expected: int, timeout: float = 10.0) -> int:
        """Poll until ``queue`` holds ``expected`` messages (requeues are asynchronous)."""
        deadline = time.monotonic() + timeout
        depth = self.depth(queue)
        while depth != expected and time.monotonic() < deadline:
            time.sleep(0.05)
            depth = self.depth(queue)
        return depth

    def drain(self, queue: str) -> list[Message]:
        """Take every message of ``queue`` (auto-ack), in order."""
        messages: list[Message] = []
        while True:
            method, properties, body = self.channel.basic_get(queue=queue, auto_ack=True)
            if method is None:
                return messages
            messages.append(Message(properties, body))


@dataclass
class QueuePair:
    """A service queue and its DLQ, uniquely named for one test."""

    queue: str
    dlq: str


def _broker_or_fail(url: str) -> Amqp:
    try:
        return Amqp(url)
    except (pika.exceptions.AMQPError, OSError) as exc:
        pytest.fail(
            f"RabbitMQ is not reachable at {url!r} ({exc!r}); start it or deselect "
            f"the integration tests with -m 'not integration'"
        )


@pytest.fixture
def amqp() -> Iterator[Amqp]:
    helper = _broker_or_fail(AMQP_URL)
    try:
        yield helper
    finally:
        helper.close()


def _declare_pair(queue_type: str) -> QueuePair:
    base = f"dlqtest-{uuid.uuid4().hex[:12]}.user_signed_up"
    pair = QueuePair(queue=base, dlq=f"{base}.dlq")
    arguments: dict[str, Any] = {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": pair.dlq,
    }
    dlq_arguments: dict[str, Any] = {}
    if queue_type == "quorum":
        arguments.update({"x-queue-type": "quorum", "x-delivery-limit": 1})
        dlq_arguments["x-queue-type"] = "quorum"
    setup = _broker_or_fail(AMQP_URL)
    try:
        setup.channel.queue_declare(queue=pair.dlq, durable=True, arguments=dlq_arguments)
        setup.channel.queue_declare(queue=pair.queue, durable=True, arguments=arguments)
    finally:
        setup.close()
    return pair


def _delete_pair(pair: QueuePair) -> None:
    # A fresh connection: the test's own may be closed or broken by now.
    cleanup = Amqp(AMQP_URL)
    try:
        for name in (pair.queue, pair.dlq):
            cleanup.channel.queue_delete(queue=name)
    finally:
        cleanup.close()


@pytest.fixture
def queues() -> Iterator[QueuePair]:
    """``dlqtest-<uuid>.user_signed_up`` (classic, durable, dead-lettering into its DLQ) and
    ``dlqtest-<uuid>.user_signed_up.dlq``; both deleted at teardown, whatever happened."""
    pair = _declare_pair("classic")
    try:
        yield pair
    finally:
        _delete_pair(pair)


@pytest.fixture
def quorum_queues() -> Iterator[QueuePair]:
    """Like ``queues``, but both quorum queues, the service queue with ``x-delivery-limit: 1``
    (as the platform declares them), so the broker itself dead-letters redelivered messages."""
    pair = _declare_pair("quorum")
    try:
        yield pair
    finally:
        _delete_pair(pair)


@pytest.fixture
def management() -> ManagementClient:
    client = ManagementClient(MANAGEMENT_URL)
    try:
        client.get_json("/api/overview")
    except ManagementApiError as exc:
        pytest.skip(f"RabbitMQ management API not available: {exc}")
    return client


@pytest.fixture
def vhost() -> str:
    return vhost_from_amqp_url(AMQP_URL)


@pytest.fixture
def envelope() -> Any:
    """``envelope(event_id, **data) -> bytes``: a JSON event envelope."""
    return make_envelope


@pytest.fixture
def dead_letter_headers() -> Any:
    """``dead_letter_headers(original_queue, **overrides) -> dict``: consumer failure headers."""
    return failure_headers
