"""Frame-level containment: a delivery the AMQP client cannot decode is still delivered.

py-amqp decodes a delivery's properties (its content-header frame) while it reads frames, inside
``drain_events``, before any consumer callback runs. RabbitMQ forwards values py-amqp cannot
decode: a short string that is not UTF-8 (``message_id``), a timestamp-typed header beyond what
``datetime`` holds (2^62, 2^64-1), a header table nested 2,000 deep. The exception then escaped
``drain_events`` and ended the consumer; every delivery it held was redelivered and counted
towards the quorum queue's delivery limit, so innocent neighbours were dead-lettered with the
culprit.

``contained_frame_handler`` is py-amqp's own frame reader (``amqp.method_framing.
frame_handler``) with one change: when the content header cannot be decoded, the delivery keeps
its method frame (so its delivery tag) and body, and its properties become
``{UNDECODABLE: "<property> could not be decoded: <error>"}``. The runtime then dead-letters
that one delivery as poison with the reason in its headers, like any other poison, and goes on.
``UNDECODABLE`` is no AMQP property name, so no sender can set it. The happy path does the same
work as py-amqp's reader (the difference costs one ``try``).
"""

from collections import defaultdict
from collections.abc import Callable
from struct import unpack_from
from typing import Any

from amqp import spec
from amqp.basic_message import Message
from amqp.exceptions import UnexpectedFrame
from amqp.serialization import loads

UNDECODABLE = "undecodable"
CONTENT_METHODS = frozenset({spec.Basic.Return, spec.Basic.Deliver, spec.Basic.GetOk})
PROPERTIES_OFFSET = 12  # class id, weight, body size
MAX_REASON = 500

FrameCallback = Callable[[int, tuple[int, int], Any, Message | None], Any]


def contained_frame_handler(
    connection: Any,
    callback: FrameCallback,
    unpack_from: Callable[..., tuple[Any, ...]] = unpack_from,
    content_methods: frozenset[tuple[int, int]] = CONTENT_METHODS,
) -> Callable[[Any], bool]:
    """A frame reader for ``amqp.Connection(frame_handler=...)``; see the module's docstring.

    Kept line for line with py-amqp's (names bound as defaults, as there, for speed).
    """
    expected_types: defaultdict[int, int] = defaultdict(lambda: 1)
    partial_messages: dict[int, Message] = {}

    def on_frame(frame: tuple[int, int, Any]) -> bool:
        frame_type, channel, buf = frame
        connection.bytes_recv += 1
        if frame_type not in (expected_types[channel], 8):
            raise UnexpectedFrame(
                f"Received frame {frame_type} while expecting type: {expected_types[channel]}"
            )
        if frame_type == 1:  # method
            method_sig = unpack_from(">HH", buf, 0)
            if method_sig in content_methods:
                partial_messages[channel] = Message(frame_method=method_sig, frame_args=buf)
                expected_types[channel] = 2
                return False
            callback(channel, method_sig, buf, None)
            return True
        if frame_type == 2:  # content header: the properties
            message = partial_messages[channel]
            try:
                message.inbound_header(buf)
            except Exception as exc:  # RecursionError, UnicodeDecodeError, OverflowError ...
                message.properties = {UNDECODABLE: undecodable_reason(buf, exc)}
                message.ready = not message.body_size
            if not message.ready:
                expected_types[channel] = 3
                return False
        elif frame_type == 3:  # content body
            message = partial_messages[channel]
            message.inbound_body(buf)
            if not message.ready:
                return False
        else:
            return False  # a heartbeat (bytes_recv counted it)
        expected_types[channel] = 1
        partial_messages.pop(channel, None)
        callback(channel, message.frame_method, message.frame_args, message)
        return True

    return on_frame


def undecodable_reason(buf: Any, error: BaseException) -> str:
    """Which property could not be decoded, and why (walks the properties one by one)."""
    name, cause = "properties", error
    try:
        (flags,) = unpack_from(">H", buf, PROPERTIES_OFFSET)
        offset = PROPERTIES_OFFSET + 2
        for bit, (property_name, property_type) in zip(
            range(15, 0, -1), Message.PROPERTIES, strict=False
        ):
            if flags & (1 << bit):
                try:
                    _, offset = loads(property_type, buf, offset)
                except Exception as exc:
                    name, cause = property_name, exc
                    break
    except Exception:  # noqa: S110 - the frame is too short to walk: name the first error
        pass
    detail = _text(cause)
    return f"{name} could not be decoded: {type(cause).__name__}: {detail}"[:MAX_REASON]


def _text(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:
        return "<unprintable>"
