"""Reading a delivery defensively: whatever a broker message holds, ``Delivery.of`` never raises
and ``decode`` either returns the event or raises ``PoisonMessageError`` saying what is wrong."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import kombu.compression

from signup_contracts.amqp import TRACEPARENT_HEADER
from signup_shared import tracing
from signup_shared.errors import PoisonMessageError, UndecodableDeliveryError
from signup_shared.events import Envelope
from signup_shared.messaging.frames import UNDECODABLE
from signup_shared.messaging.subscription import Subscription
from signup_shared.messaging.unseal import is_sealed, reads_sealed
from signup_shared.messaging.wire import parse_event, short_text

MAX_BODY_BYTES = 256 * 1024


@dataclass(frozen=True)
class Delivery:
    """What the worker needs of an incoming message (no broker objects)."""

    body: bytes
    headers: dict[str, Any]
    properties: dict[str, Any]
    exchange: str
    routing_key: str

    @classmethod
    def of(cls, message: Any) -> "Delivery":
        """Read a broker message defensively: whatever it holds, this never raises."""
        delivery_info = _mapping(_attribute(message, "delivery_info"))
        return cls(
            body=_body(_attribute(message, "body")),
            headers=_mapping(_attribute(message, "headers")),
            properties=_mapping(_attribute(message, "properties")),
            exchange=short_text(delivery_info.get("exchange", "")),
            routing_key=short_text(delivery_info.get("routing_key", "")),
        )

    @property
    def traceparent(self) -> str | None:
        """The W3C trace context the sender attached, if it is a valid one."""
        return tracing.parse_traceparent(self.headers.get(TRACEPARENT_HEADER))


def decode(subscription: Subscription, delivery: Delivery) -> Envelope[Any]:
    """The validated event of ``delivery``, or ``PoisonMessageError`` saying why not. A sealed
    ``UserSignedUp`` (v3) is accepted by a subscription that reads a clear one: still sealed."""
    undecodable = delivery.properties.get(UNDECODABLE)
    if undecodable is not None:
        raise UndecodableDeliveryError(short_text(undecodable, 1_000))
    if len(delivery.body) > MAX_BODY_BYTES:
        raise PoisonMessageError(f"body of {len(delivery.body)} bytes exceeds {MAX_BODY_BYTES}")
    envelope = parse_event(delivery.body)
    if is_sealed(envelope) and reads_sealed(subscription.events):
        return envelope  # opened before the handler runs (``messaging.unseal``)
    if not isinstance(envelope.data, subscription.events):
        raise PoisonMessageError(
            f"{subscription.queue.name} does not handle {envelope.type} v{envelope.version}"
        )
    return envelope


def _attribute(message: Any, name: str) -> Any:
    try:
        return getattr(message, name, None)
    except Exception:
        return None


def _mapping(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        return {}
    try:
        return {str(key): item for key, item in value.items()}
    except Exception:
        return {}


def _body(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        if isinstance(value, str):
            return value.encode("utf-8", "surrogatepass")
        return bytes(value) if isinstance(value, bytearray | memoryview) else b""
    except Exception:
        return b""


class CompressedBodyError(PoisonMessageError):
    """Our events are never compressed; a body claiming to be is not inflated (zip bombs)."""


def _refuse_decompression(_body: bytes) -> bytes:
    raise CompressedBodyError("compressed bodies are not accepted")


def refuse_compressed_bodies() -> None:
    """kombu inflates any body whose ``compression`` header names a codec it knows, before our
    size limit can look at it. No service compresses its events, so every codec refuses."""
    for content_type in kombu.compression.encoders():
        encoder, _ = kombu.compression.get_encoder(content_type)
        kombu.compression.register(encoder, _refuse_decompression, content_type)
