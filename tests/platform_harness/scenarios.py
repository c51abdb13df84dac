"""Small pieces the fault scenarios share: queues, consumer processes, logs, dead letters."""

import dataclasses
import json
from typing import Any

from platform_harness.stack import Stack
from signup_contracts.amqp import (
    DEAD_LETTER_SUFFIX,
    FAILURE_KIND_HEADER,
    HISTORY_STREAM,
    UNROUTED_EXCHANGE,
    routing_key,
)
from signup_shared.messaging.publisher import ConfirmingPublisher
from signup_shared.messaging.wire import OutgoingMessage

CONSUMER_PROGRAMS = ("notifications", "provisioning", "stats", "accounts-consumer")
RELAY_PROGRAMS = ("accounts-relay", "provisioning-relay")
# quiet_then_retry: heartbeats of 3 s (RabbitMQ closes a connection silent for two intervals)
# and short retry delays, so that the scenario stays fast.
QUIET_HEARTBEAT_SECONDS = 3
QUIET_RETRY_DELAYS_MS = (1_000, 2_000, 4_000)


LIVE_SIGNED_UP_KEY = routing_key("accounts", "UserSignedUp", 2)
"""The key the consumers' queues are bound to by default (``<SERVICE>_USER_SIGNED_UP_VERSION=2``);
their handlers take v1 and v2 bodies alike."""


def live(message: OutgoingMessage) -> OutgoingMessage:
    """A forged ``UserSignedUp`` on the key the consumers read (a v1 envelope's own is v1's)."""
    return dataclasses.replace(message, routing_key=LIVE_SIGNED_UP_KEY)


def service_queues(stack: Stack) -> list[str]:
    """The queues the consumers read (no retry or dead-letter queue, no unrouted sink, not the
    history stream, which keeps every event and takes no publish but through ``events``)."""
    return sorted(
        q
        for q in stack.queues()
        if not q.endswith(DEAD_LETTER_SUFFIX)
        and ".retry." not in q
        and q not in (UNROUTED_EXCHANGE, HISTORY_STREAM)
    )


def publish(stack: Stack, messages: list[OutgoingMessage]) -> None:
    """Publish as the administrator (a forged or replayed event), every message confirmed."""
    publisher = ConfirmingPublisher(stack.amqp_url)
    try:
        publisher.publish_batch(messages)
    finally:
        publisher.close()


class LogMark:
    """Where each program's log ends now; ``since(name)`` is what it wrote after that."""

    def __init__(self, stack: Stack, programs: tuple[str, ...]) -> None:
        self.stack = stack
        self.offsets = {name: len(stack.log(name)) for name in programs}

    def since(self, name: str) -> str:
        return self.stack.log(name)[self.offsets[name] :]

    def records(self, name: str, event: str) -> list[dict[str, Any]]:
        """The JSON log records named ``event`` written since the mark."""
        found = []
        for line in self.since(name).splitlines():
            if f'"{event}"' not in line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("event") == event:
                found.append(record)
        return found


def dead_letter_reason(message: dict[str, Any]) -> str:
    """Why a dead letter (as the management API shows it) is there: our failure kind, or the
    broker's dead-letter reason (``rejected`` by the consumer, ``delivery_limit`` ...)."""
    headers = (message.get("properties") or {}).get("headers") or {}
    kind = headers.get(FAILURE_KIND_HEADER)
    if kind:
        return str(kind)
    reason = headers.get("x-first-death-reason")
    if reason:
        return f"broker:{reason}"
    deaths = headers.get("x-death") or []
    return f"broker:{deaths[0].get('reason')}" if deaths else "none"
