"""``PublishFramer`` writes exactly py-amqp's bytes for a publish, or declines it."""

import dataclasses
import struct
from typing import Any

from amqp.abstract_channel import AbstractChannel
from hypothesis import given, settings
from hypothesis import strategies as st

from signup_contracts.amqp import EVENT_VERSION_HEADER
from signup_shared.messaging.framing import PublishFramer, frame_with_amqp
from signup_shared.messaging.wire import OutgoingMessage

FRAME_MAX = 4096  # the smallest AMQP allows, so that bodies span several frames
NOW = 1_765_000_000


class MemoryConnection:
    """What py-amqp's channel and frame writer read of a connection."""

    def __init__(self, frame_max: int) -> None:
        self.frame_max = frame_max
        self.bytes_sent = 0
        self.channels: dict[int, Any] = {}
        self.frame_writer: Any = None


class MemoryChannel(AbstractChannel):
    """py-amqp's channel base: its ``send_method``, with no method listeners."""

    def _setup_listeners(self) -> None:
        pass


def amqp_frames(message: OutgoingMessage, channel_id: int = 1, frame_max: int = FRAME_MAX) -> bytes:
    """The publish as py-amqp's own channel frames it."""
    channel = MemoryChannel(MemoryConnection(frame_max), channel_id)
    return frame_with_amqp(channel, message, NOW)


def outgoing(**changes: Any) -> OutgoingMessage:
    message = OutgoingMessage(
        body=b'{"id": 1}',
        routing_key="accounts.user_signed_up",
        message_id="6f1c2d3e-0000-4000-8000-000000000001",
        type="UserSignedUp",
        version=2,
        correlation_id="corr-1",
        producer="accounts",
        headers={"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"},
    )
    return dataclasses.replace(message, **changes)


def test_an_event_is_framed_as_py_amqp_frames_it() -> None:
    message = outgoing()
    assert PublishFramer(1, FRAME_MAX, NOW).frame(message) == amqp_frames(message)


def test_a_body_longer_than_a_frame_is_split_as_py_amqp_splits_it() -> None:
    message = outgoing(body=bytes(range(256)) * 40)  # 10,240 bytes: three body frames
    framed = PublishFramer(7, FRAME_MAX, NOW).frame(message)
    assert framed == amqp_frames(message, channel_id=7)
    assert framed is not None and framed.count(struct.pack(">BH", 3, 7)) >= 3


def test_an_empty_body_has_no_body_frame() -> None:
    message = outgoing(body=b"")
    assert PublishFramer(1, FRAME_MAX, NOW).frame(message) == amqp_frames(message)


def test_what_py_amqp_cannot_encode_is_declined() -> None:
    framer = PublishFramer(1, FRAME_MAX, NOW)
    assert framer.frame(outgoing(correlation_id="€" * 100)) is None  # 300 bytes: over 255
    assert framer.frame(outgoing(routing_key="k" * 256)) is None
    assert framer.frame(outgoing(headers={"big": 2**70})) is None


def test_header_values_beyond_text_and_32_bit_numbers_are_left_to_py_amqp() -> None:
    framer = PublishFramer(1, FRAME_MAX, NOW)
    for value in (True, 2**40, 1.5, None, {"nested": 1}, [1, "a"], b"raw"):
        message = outgoing(headers={"x-odd": value})
        assert framer.frame(message) is None
        assert amqp_frames(message)  # py-amqp frames it


def test_a_header_named_like_the_version_keeps_its_place_and_takes_the_value() -> None:
    message = outgoing(headers={"a": "1", EVENT_VERSION_HEADER: 9})
    assert PublishFramer(1, FRAME_MAX, NOW).frame(message) == amqp_frames(message)


texts = st.text(max_size=90)  # up to 360 UTF-8 bytes: both sides of the 255-byte limit
header_values = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(2**33), max_value=2**33),
    st.booleans(),
    st.none(),
    st.floats(allow_nan=False),
    st.binary(max_size=8),
)
messages = st.builds(
    OutgoingMessage,
    body=st.binary(max_size=3 * FRAME_MAX),
    routing_key=texts,
    message_id=texts,
    type=texts,
    version=st.integers(min_value=-(2**31), max_value=2**31),
    correlation_id=texts,
    producer=texts,
    exchange=texts,
    headers=st.dictionaries(st.text(max_size=20), header_values, max_size=4),
)


@settings(deadline=None)
@given(message=messages, channel_id=st.integers(min_value=1, max_value=65535))
def test_whatever_the_framer_frames_is_byte_for_byte_what_py_amqp_frames(
    message: OutgoingMessage, channel_id: int
) -> None:
    framed = PublishFramer(channel_id, FRAME_MAX, NOW).frame(message)
    try:
        expected: bytes | None = amqp_frames(message, channel_id)
    except Exception:
        expected = None  # py-amqp cannot encode it: the framer must have declined it
    if framed is not None:
        assert framed == expected


names = st.text(max_size=63)  # at most 252 UTF-8 bytes: always a short string
plain_messages = st.builds(
    OutgoingMessage,
    body=st.binary(max_size=3 * FRAME_MAX),
    routing_key=names,
    message_id=names,
    type=names,
    version=st.integers(min_value=-(2**31) + 1, max_value=2**31 - 1),
    correlation_id=names,
    producer=names,
    exchange=names,
    headers=st.dictionaries(
        names,
        st.text(max_size=40) | st.integers(min_value=-(2**31) + 1, max_value=2**31 - 1),
        max_size=4,
    ),
)


@settings(deadline=None)
@given(message=plain_messages)
def test_text_and_32_bit_numbers_are_always_framed_and_as_py_amqp_frames_them(
    message: OutgoingMessage,
) -> None:
    assert PublishFramer(3, FRAME_MAX, NOW).frame(message) == amqp_frames(message, channel_id=3)
