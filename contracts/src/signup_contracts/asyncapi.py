"""The AsyncAPI 3.0 document of the event catalog, from the contracts and the broker topology.

The contracts give the messages (one per (type, version): JSON Schema, ``x-event-version``
header, AMQP properties) and who publishes each on which routing key; the RabbitMQ definitions
(``deploy/rabbitmq/definitions.json``, generated from the services' topology) give who consumes
what. One channel per routing key on the ``events`` topic exchange, one ``send`` operation per
routing key and one ``receive`` operation per consumer queue (with its retry and dead letters).

Shipped in the package (``signup_contracts.catalog``; ``docs/asyncapi/asyncapi.json`` links to
it). Regenerate from the repository root with ``python -m signup_contracts.asyncapi`` (``--check``
exits 1 when it is out of date); ``--show`` prints the shipped one anywhere.
"""

import argparse
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from signup_contracts import catalog
from signup_contracts.amqp import (
    AMQP_PROPERTIES,
    CONTENT_TYPE,
    EVENT_VERSION_HEADER,
    EVENTS_EXCHANGE,
    EVENTS_EXCHANGE_TYPE,
    PERSISTENT,
    TRACEPARENT_HEADER,
    TRACEPARENT_PATTERN,
    routing_key,
    topic_matches,
)
from signup_contracts.envelope import EventData, publishers, registered_events
from signup_contracts.schemas import message_schema

DEFINITIONS = Path("deploy/rabbitmq/definitions.json")
OUTPUT = Path("contracts/src/signup_contracts/data/asyncapi.json")
COMMAND = "python -m signup_contracts.asyncapi"
BINDING_VERSION = "0.3.0"
VHOST = "/"


@dataclass(frozen=True)
class ConsumerQueue:
    """A queue bound to the events exchange, and the queues that serve it."""

    name: str
    routing_key: str
    dead_letter_queue: str | None = None
    retry_queues: tuple[str, ...] = ()

    @property
    def service(self) -> str:
        return self.name.split(".", 1)[0]


def consumer_queues(definitions: Mapping[str, Any]) -> list[ConsumerQueue]:
    """The consumer queues in a RabbitMQ definitions document (``export_definitions``)."""
    names = [queue["name"] for queue in definitions.get("queues", [])]
    streams = {  # the event history keeps every event: not a consumer
        queue["name"]
        for queue in definitions.get("queues", [])
        if (queue.get("arguments") or {}).get("x-queue-type") == "stream"
    }
    found = []
    for binding in definitions.get("bindings", []):
        if binding.get("source") != EVENTS_EXCHANGE or binding.get("destination_type") != "queue":
            continue
        if binding["destination"] in streams:
            continue
        queue = binding["destination"]
        dlq = f"{queue}.dlq"
        retries = tuple(name for name in names if name.startswith(f"{queue}.retry."))
        found.append(
            ConsumerQueue(queue, binding["routing_key"], dlq if dlq in names else None, retries)
        )
    return sorted(found, key=lambda queue: (queue.routing_key, queue.name))


def message_key(event: type[EventData]) -> str:
    """``UserSignedUp.v1``: the message's name in the document."""
    return f"{event.event_type}.v{event.version}"


def document(queues: Iterable[ConsumerQueue], version: str) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document, as plain JSON data."""
    events = list(registered_events().values())
    by_key: dict[str, list[type[EventData]]] = {}
    for event in events:
        for producer in publishers(event):
            by_key.setdefault(routing_key(producer, event.event_type, event.version), []).append(
                event
            )
    channels = {key: _channel(key, members) for key, members in sorted(by_key.items())}
    operations: dict[str, Any] = {}
    for key, members in sorted(by_key.items()):
        operations[f"publish.{key}"] = _send(key, members)
    for queue in queues:
        for key in sorted(k for k in by_key if topic_matches(queue.routing_key, k)):
            name = queue.name if queue.routing_key == key else f"{queue.name}.from.{key}"
            operations[name] = _receive(queue, key, by_key[key])
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Signup Platform events",
            "version": version,
            "description": (
                "Events the Signup Platform publishes on RabbitMQ. Every event is a JSON "
                f"envelope published to the durable `{EVENTS_EXCHANGE}` {EVENTS_EXCHANGE_TYPE} "
                "exchange with the routing key `<producer>.<event_name>` (version 1) or "
                "`<producer>.<event_name>.v<n>` (version n >= 2). A contract changes only "
                "compatibly within a version; anything else is a new version, published on its "
                "own routing key with its own `version` and `x-event-version`: bind the key of "
                "the version you read, and you never receive one you cannot parse. Delivery "
                "is at least once: deduplicate on the envelope's `id` (AMQP `message_id`). "
                "Models and a pytest test kit: the `signup-contracts` package."
            ),
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "local": {
                "host": "localhost:5672",
                "pathname": VHOST,
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "The development broker that `make run` uses (RabbitMQ).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": {message_key(e): _message(e) for e in events}},
    }


def _channel(key: str, events: list[type[EventData]]) -> dict[str, Any]:
    return {
        "address": key,
        "title": key,
        "summary": f"{events[0].event_type} events published by {_producer(key)}.",
        "messages": {
            message_key(e): {"$ref": f"#/components/messages/{message_key(e)}"} for e in events
        },
        "bindings": {
            "amqp": {
                "is": "routingKey",
                "exchange": {
                    "name": EVENTS_EXCHANGE,
                    "type": EVENTS_EXCHANGE_TYPE,
                    "durable": True,
                    "autoDelete": False,
                    "vhost": VHOST,
                },
                "bindingVersion": BINDING_VERSION,
            }
        },
    }


def _channel_messages(key: str, events: list[type[EventData]]) -> list[dict[str, str]]:
    return [{"$ref": f"#/channels/{key}/messages/{message_key(e)}"} for e in events]


def _producer(key: str) -> str:
    """The service that publishes on routing key ``key`` (``<producer>.<event_name>``)."""
    return key.split(".", 1)[0]


def _send(key: str, events: list[type[EventData]]) -> dict[str, Any]:
    producer = _producer(key)
    return {
        "action": "send",
        "channel": {"$ref": f"#/channels/{key}"},
        "title": f"{producer} publishes {events[0].event_type}",
        "summary": (
            f"{producer} writes the event to its outbox in the business transaction; its relay "
            "publishes it with publisher confirms (mandatory, persistent)."
        ),
        "messages": _channel_messages(key, events),
        "bindings": {
            "amqp": {
                "deliveryMode": PERSISTENT,
                "mandatory": True,
                "timestamp": True,
                "bindingVersion": BINDING_VERSION,
            }
        },
    }


def _receive(queue: ConsumerQueue, key: str, events: list[type[EventData]]) -> dict[str, Any]:
    return {
        "action": "receive",
        "channel": {"$ref": f"#/channels/{key}"},
        "title": f"{queue.service} consumes {events[0].event_type}",
        "summary": f"Queue `{queue.name}` bound with `{queue.routing_key}`.",
        "messages": _channel_messages(key, events),
        "bindings": {"amqp": {"ack": True, "bindingVersion": BINDING_VERSION}},
        "x-queue": {
            "name": queue.name,
            "service": queue.service,
            "bindingKey": queue.routing_key,
            "deadLetterQueue": queue.dead_letter_queue,
            "retryQueues": list(queue.retry_queues),
        },
    }


def _message(event: type[EventData]) -> dict[str, Any]:
    return {
        "name": event.event_type,
        "title": f"{event.event_type} v{event.version}",
        "summary": (event.__doc__ or event.event_type).strip().splitlines()[0],
        "contentType": CONTENT_TYPE,
        "headers": {
            "type": "object",
            "properties": {
                EVENT_VERSION_HEADER: {
                    "type": "integer",
                    "const": event.version,
                    "description": "The contract version, the same as the envelope's `version`.",
                },
                TRACEPARENT_HEADER: {
                    "type": "string",
                    "pattern": TRACEPARENT_PATTERN,
                    "description": (
                        "W3C trace context: the trace of the HTTP request the event comes from, "
                        "continued by every consumer and every event it causes. Optional."
                    ),
                },
            },
            "required": [EVENT_VERSION_HEADER],
        },
        "payload": message_schema(event),
        "correlationId": {
            "description": "Travels unchanged from the HTTP request through every event it causes.",
            "location": "$message.payload#/correlation_id",
        },
        "bindings": {"amqp": {"messageType": event.event_type, "bindingVersion": BINDING_VERSION}},
        "x-amqp-properties": dict(AMQP_PROPERTIES),
    }


def render(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2) + "\n"


def generate(definitions: Path) -> str:
    """The document's text for the topology in ``definitions``."""
    queues = consumer_queues(json.loads(definitions.read_text()))
    return render(document(queues, metadata.version("signup-contracts")))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description="Write the AsyncAPI document.")
    parser.add_argument(
        "--definitions",
        type=Path,
        default=DEFINITIONS,
        help=f"RabbitMQ definitions file (default {DEFINITIONS})",
    )
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"default {OUTPUT}")
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if the output file differs from what would be written",
    )
    parser.add_argument(
        "--show",
        action="store_true",
        help="print the document shipped with this package (needs no repository)",
    )
    args = parser.parse_args(argv)
    if args.show:
        sys.stdout.write(catalog.asyncapi_text())
        return 0
    if not args.definitions.is_file():
        sys.stderr.write(
            f"{COMMAND}: {args.definitions} not found: regenerating needs the repository root "
            f"(or --definitions FILE); {COMMAND} --show prints the document this package ships\n"
        )
        return 2
    text = generate(args.definitions)
    if args.check:
        current = args.output.read_text() if args.output.exists() else ""
        if current != text:
            sys.stdout.write(f"{args.output} is out of date: run {COMMAND}\n")
            return 1
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    sys.stdout.write(f"wrote {args.output}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
