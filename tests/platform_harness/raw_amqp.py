"""Deliveries that RabbitMQ forwards but an AMQP client may fail to decode, published as is.

Client libraries refuse to encode these values (a short string that is not UTF-8, a timestamp
far beyond what ``datetime`` holds, a table nested thousands deep), so the content-header frame's
property list is written here by hand, following AMQP 0-9-1 (section 4.2.6 and the basic class's
property table): a 16-bit flag word, one bit per property present from bit 15 down, then each
present property's value in table order. py-amqp frames the rest (method, header, body frames).
"""

import struct
import urllib.parse
from dataclasses import dataclass

import amqp

# Property flag bits of the basic class (AMQP 0-9-1), in the order the values follow.
HEADERS = 0x2000
DELIVERY_MODE = 0x1000
MESSAGE_ID = 0x0080
TIMESTAMP = 0x0040
PERSISTENT = 2


def shortstr(value: bytes) -> bytes:
    if len(value) > 255:
        raise ValueError("a short string holds at most 255 bytes")
    return struct.pack(">B", len(value)) + value


def table(entries: bytes) -> bytes:
    return struct.pack(">I", len(entries)) + entries


def nested_table(depth: int) -> bytes:
    """A header table ``{"a": {"a": ... {}}}`` nested ``depth`` deep."""
    inner = table(b"")
    for _ in range(depth):
        inner = table(shortstr(b"a") + b"F" + inner)
    return inner


def timestamp_header(seconds: int) -> bytes:
    """A header table with one timestamp-typed (``T``) value."""
    return table(shortstr(b"sent-at") + b"T" + struct.pack(">Q", seconds))


def properties(flags: int, *values: bytes) -> bytes:
    """A property list: ``flags`` (persistent delivery is added) and the values in table order.

    ``values`` must follow the order of the flag bits, highest first, leaving out delivery mode
    (inserted here after the headers).
    """
    flags |= DELIVERY_MODE
    ordered = list(values)
    position = 1 if flags & HEADERS else 0
    ordered.insert(position, struct.pack(">B", PERSISTENT))
    return struct.pack(">H", flags) + b"".join(ordered)


@dataclass(frozen=True)
class Culprit:
    name: str
    properties: bytes
    property: str  # the property a decoder fails on

    def body(self, queue: str) -> bytes:
        return f'{{"culprit": "{self.name}", "queue": "{queue}"}}'.encode()


CULPRITS: tuple[Culprit, ...] = (
    Culprit(
        "message_id not UTF-8", properties(MESSAGE_ID, shortstr(b"\xff\xfe\xc3")), "message_id"
    ),
    Culprit("timestamp 2^62", properties(TIMESTAMP, struct.pack(">Q", 2**62)), "timestamp"),
    Culprit("timestamp 2^64-1", properties(TIMESTAMP, struct.pack(">Q", 2**64 - 1)), "timestamp"),
    Culprit(
        "timestamp header 2^62", properties(HEADERS, timestamp_header(2**62)), "application_headers"
    ),
    Culprit(
        "timestamp header 2^64-1",
        properties(HEADERS, timestamp_header(2**64 - 1)),
        "application_headers",
    ),
    Culprit(
        "headers nested 2000 deep", properties(HEADERS, nested_table(2_000)), "application_headers"
    ),
)


class RawMessage(amqp.Message):  # type: ignore[misc]
    """A message whose property bytes go on the wire exactly as given."""

    def __init__(self, body: bytes, raw_properties: bytes) -> None:
        super().__init__(body)
        self.raw_properties = raw_properties

    def _serialize_properties(self) -> bytes:
        return self.raw_properties


def publish_raw(amqp_url: str, messages: list[tuple[str, bytes, bytes]]) -> None:
    """Publish (queue, body, raw properties) through the default exchange, each confirmed."""
    url = urllib.parse.urlsplit(amqp_url)
    connection = amqp.Connection(
        host=f"{url.hostname}:{url.port or 5672}",
        userid=urllib.parse.unquote(url.username or "guest"),
        password=urllib.parse.unquote(url.password or "guest"),
        virtual_host=urllib.parse.unquote(url.path[1:]) or "/",
        confirm_publish=True,
    )
    connection.connect()
    try:
        channel = connection.channel()
        for queue, body, raw in messages:
            channel.basic_publish(RawMessage(body, raw), exchange="", routing_key=queue)
    finally:
        connection.close()
