"""The AMQP frames of one ``basic.publish`` of an ``OutgoingMessage``, built directly.

py-amqp frames a publish generically: ``dumps`` walks a format string, ``Message`` collects
the properties in a dict that ``_serialize_properties`` walks again, and each step goes through
a ``BytesIO`` (about 60 % of a relay's CPU). Our messages always carry the same eight properties
and a small header table of text and whole numbers, so ``PublishFramer`` writes those bytes
itself: the same bytes py-amqp writes (a property test holds it to that), in a fraction of the
time. Anything else (a header value of another type, a number beyond 32 bits, a short string
over 255 bytes) is declined (``None``) and framed by py-amqp, which also refuses what it cannot
encode, with its own reason.
"""

from functools import lru_cache
from struct import Struct
from typing import Any

from amqp import spec
from amqp.method_framing import frame_writer

from signup_contracts.amqp import CONTENT_TYPE, PERSISTENT
from signup_shared.messaging.confirms import FrameBuffer
from signup_shared.messaging.wire import OutgoingMessage

FRAME_END = b"\xce"
FRAME_HEAD = Struct(">BHI")  # type, channel, size
METHOD, HEADER, BODY = 1, 2, 3
PUBLISH_ARGS = "Bssbb"  # ticket, exchange, routing key, mandatory, immediate
PUBLISH = Struct(">HHH").pack(*spec.Basic.Publish, 0)  # class, method, ticket 0
MANDATORY = b"\x01"  # the bits: mandatory set, immediate clear
CONTENT_HEAD = Struct(">HHQ")  # class, weight 0, body size
# Property flags (py-amqp's ``Message.PROPERTIES`` order, first flag the high bit): content
# type, headers, delivery mode, correlation id, message id, timestamp, type, app id.
PROPERTY_FLAGS = Struct(">H").pack(
    0x8000 | 0x2000 | 0x1000 | 0x0400 | 0x0080 | 0x0040 | 0x0020 | 0x8
)
TABLE_SIZE = Struct(">I")
TEXT_VALUE = Struct(">cI")
INT_VALUE = Struct(">ci")
INT32_LIMIT = 2147483647  # py-amqp writes a 64-bit 'L' beyond +-(2**31 - 1)
TIMESTAMP = Struct(">Q")


class Declined(Exception):
    """The message is outside what ``PublishFramer`` writes; py-amqp frames it instead."""


def short_string(text: object) -> bytes:
    """An AMQP short string (length octet, UTF-8) of a value that recurs (names, keys)."""
    if type(text) is not str:
        raise Declined
    return _cached_short_string(text)


@lru_cache(maxsize=1024)
def _cached_short_string(text: str) -> bytes:
    return fresh_short_string(text)


def fresh_short_string(text: object) -> bytes:
    if not isinstance(text, str):
        raise Declined
    data = text.encode("utf-8", "surrogatepass")
    if len(data) > 255:
        raise Declined
    return bytes((len(data),)) + data


CONTENT_TYPE_PROPERTY = fresh_short_string(CONTENT_TYPE)
DELIVERY_MODE_PROPERTY = bytes((PERSISTENT,))


def table(headers: dict[str, Any]) -> bytes:
    """An AMQP field table of text and 32-bit whole numbers, in py-amqp's encoding."""
    items: list[bytes] = []
    for key, value in headers.items():
        items.append(short_string(key))
        if isinstance(value, str):
            data = value.encode("utf-8", "surrogatepass")
            items += (TEXT_VALUE.pack(b"S", len(data)), data)
        elif type(value) is int and -INT32_LIMIT <= value <= INT32_LIMIT:
            items.append(INT_VALUE.pack(b"I", value))
        else:
            raise Declined
    data = b"".join(items)
    return TABLE_SIZE.pack(len(data)) + data


class PublishFramer:
    """Frames publishes on one channel, for one batch (its ``timestamp``, in seconds)."""

    def __init__(self, channel_id: int, frame_max: int, timestamp: int) -> None:
        self.channel_id = channel_id
        self.chunk = frame_max - 8
        self.timestamp = timestamp
        self._timestamp = TIMESTAMP.pack(timestamp)

    def frame(self, message: OutgoingMessage) -> bytes | None:
        """The method, header and body frames of the publish, or ``None`` if declined."""
        try:
            return self._frame(message)
        except Declined:
            return None

    def _frame(self, message: OutgoingMessage) -> bytes:
        channel, body = self.channel_id, message.body
        if not isinstance(body, bytes):
            raise Declined
        method = b"".join(
            (PUBLISH, short_string(message.exchange), short_string(message.routing_key), MANDATORY)
        )
        properties = b"".join(
            (
                PROPERTY_FLAGS,
                CONTENT_TYPE_PROPERTY,
                table(message.amqp_headers()),
                DELIVERY_MODE_PROPERTY,
                fresh_short_string(message.correlation_id),
                fresh_short_string(message.message_id),
                self._timestamp,
                short_string(message.type),
                short_string(message.producer),
            )
        )
        size = len(body)
        header = CONTENT_HEAD.pack(spec.Basic.CLASS_ID, 0, size) + properties
        parts = [
            FRAME_HEAD.pack(METHOD, channel, len(method)),
            method,
            FRAME_END,
            FRAME_HEAD.pack(HEADER, channel, len(header)),
            header,
            FRAME_END,
        ]
        for start in range(0, size, self.chunk):
            piece = body[start : start + self.chunk]
            parts += (FRAME_HEAD.pack(BODY, channel, len(piece)), piece, FRAME_END)
        return b"".join(parts)


def frame_with_amqp(channel: Any, message: OutgoingMessage, timestamp: int) -> bytes:
    """The publish as py-amqp frames it on ``channel`` (its connection's writer pointed at
    memory for the call); raises what py-amqp raises for a message it cannot encode."""
    connection = channel.connection
    buffer = FrameBuffer()
    socket_writer = connection.frame_writer
    connection.frame_writer = frame_writer(connection, buffer)
    try:
        channel.send_method(
            spec.Basic.Publish,
            PUBLISH_ARGS,
            (0, message.exchange, message.routing_key, True, False),
            message.to_amqp(timestamp),
        )
    finally:
        connection.frame_writer = socket_writer
    return b"".join(buffer.chunks)
