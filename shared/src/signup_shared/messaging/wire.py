"""Events on the wire: JSON bodies whose AMQP properties mirror the envelope."""

import time
from dataclasses import dataclass, field
from typing import Any

from amqp import Message
from pydantic import ValidationError

from signup_shared.errors import PoisonMessageError
from signup_shared.events import Envelope, UnknownEventError, parse_envelope

CONTENT_TYPE = "application/json"
PERSISTENT = 2


@dataclass(frozen=True)
class OutgoingMessage:
    """One event ready to publish: the envelope's JSON and the properties mirrored from it."""

    body: bytes
    routing_key: str
    message_id: str
    type: str
    version: int
    correlation_id: str
    producer: str
    exchange: str = "events"
    headers: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_envelope(cls, envelope: Envelope[Any], exchange: str = "events") -> "OutgoingMessage":
        return cls(
            body=envelope.to_json(),
            routing_key=envelope.routing_key,
            message_id=str(envelope.id),
            type=envelope.type,
            version=envelope.version,
            correlation_id=envelope.correlation_id,
            producer=envelope.producer,
            exchange=exchange,
        )

    def to_amqp(self) -> Message:
        return Message(
            self.body,
            content_type=CONTENT_TYPE,
            delivery_mode=PERSISTENT,
            message_id=self.message_id,
            type=self.type,
            correlation_id=self.correlation_id,
            app_id=self.producer,
            timestamp=int(time.time()),
            application_headers={"x-event-version": self.version, **self.headers},
        )


def decode(body: bytes) -> Envelope[Any]:
    """Body -> validated envelope, or ``PoisonMessageError`` saying what is wrong with it."""
    try:
        return parse_envelope(body)
    except ValidationError as exc:
        details = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        raise PoisonMessageError(f"invalid event: {details}") from exc
    except UnknownEventError as exc:
        raise PoisonMessageError(str(exc)) from exc
    except UnicodeDecodeError as exc:
        raise PoisonMessageError(f"body is not UTF-8: {exc}") from exc
