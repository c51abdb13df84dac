"""The consumer's frame reader: an undecodable content header becomes a reason, not a crash."""

import struct
from typing import Any

import pytest
from amqp import spec
from amqp.exceptions import UnexpectedFrame

from signup_shared.errors import UndecodableDeliveryError
from signup_shared.events import UserSignedUp
from signup_shared.messaging.delivery import Delivery, decode
from signup_shared.messaging.failures import Action
from signup_shared.messaging.frames import UNDECODABLE, contained_frame_handler
from signup_shared.messaging.processing import MessageProcessor
from signup_shared.messaging.subscription import Subscription
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.testing import user_signed_up

QUEUE = ConsumerQueue("svc", "accounts.user_signed_up")


class Connection:
    bytes_recv = 0


def deliver(tag: int) -> bytes:
    args = struct.pack(">B", 3) + b"tag" + struct.pack(">QB", tag, 0) + b"\x00" + b"\x00"
    return struct.pack(">HH", *spec.Basic.Deliver) + args


def header(body_size: int, properties: bytes) -> bytes:
    return struct.pack(">HHQ", spec.Basic.Deliver[0], 0, body_size) + properties


def message_id(value: bytes) -> bytes:
    return struct.pack(">HB", 0x0080, len(value)) + value


def reader() -> tuple[Any, list[tuple[Any, ...]]]:
    received: list[tuple[Any, ...]] = []
    on_frame = contained_frame_handler(Connection(), lambda *args: received.append(args))
    return on_frame, received


def test_an_undecodable_header_still_delivers_the_body_with_the_reason() -> None:
    on_frame, received = reader()
    assert on_frame((1, 1, deliver(7))) is False
    assert on_frame((2, 1, header(4, message_id(b"\xff\xfe")))) is False
    assert on_frame((3, 1, b"body")) is True
    [(channel, method, _args, message)] = received
    assert (channel, method, message.body) == (1, spec.Basic.Deliver, b"body")
    assert message.properties[UNDECODABLE].startswith("message_id could not be decoded: Unicode")


def test_the_next_delivery_on_the_channel_is_decoded_as_usual() -> None:
    on_frame, received = reader()
    for frame in [(1, 1, deliver(1)), (2, 1, header(0, message_id(b"\xff")))]:
        on_frame(frame)
    on_frame((8, 0, b""))  # a heartbeat in between
    for frame in [(1, 1, deliver(2)), (2, 1, header(2, message_id(b"m2"))), (3, 1, b"ok")]:
        on_frame(frame)
    first, second = (args[3] for args in received)
    assert UNDECODABLE in first.properties and first.body_size == 0
    assert second.properties == {"message_id": "m2"} and second.body == b"ok"


def test_a_frame_out_of_order_is_still_a_protocol_error() -> None:
    on_frame, _ = reader()
    with pytest.raises(UnexpectedFrame):
        on_frame((3, 1, b"body without a method"))


def test_a_delivery_the_client_could_not_read_is_poison_with_its_reason() -> None:
    subscription = Subscription(QUEUE, (UserSignedUp,), lambda _e: None)
    reason = "application_headers could not be decoded: RecursionError: too deep"
    delivery = Delivery(user_signed_up().to_json(), {}, {UNDECODABLE: reason}, "", QUEUE.name)
    with pytest.raises(UndecodableDeliveryError, match="application_headers"):
        decode(subscription, delivery)
    decision = MessageProcessor(in_process_attempts=1).process(subscription, delivery)
    assert decision is not None
    assert (decision.action, decision.kind) == (Action.DEAD_LETTER, "permanent")


def test_a_header_of_that_name_is_only_a_header() -> None:
    subscription = Subscription(QUEUE, (UserSignedUp,), lambda _e: None)
    event = user_signed_up()
    delivery = Delivery(event.to_json(), {UNDECODABLE: "x"}, {}, "", QUEUE.name)
    assert decode(subscription, delivery).id == event.id
