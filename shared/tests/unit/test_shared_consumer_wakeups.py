"""The consumer's main loop sleeps in select(), woken by frames (or the stop); the handler
thread settles what it decided itself, so a delivery crosses one thread boundary."""

import select
import socket
import time
from collections.abc import Sequence
from typing import Any

from signup_shared.events import UserSignedUp
from signup_shared.messaging.consumer import ConsumerRuntime
from signup_shared.messaging.subscription import Subscription
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.testing import FakeMessage, FakePublisher, user_signed_up

QUEUE = ConsumerQueue("svc", "accounts.user_signed_up")


class FakeBroker:
    """Stands for kombu's connection: ``connection.sock``, ``drain_events``, heartbeats."""

    def __init__(self) -> None:
        self.sock, self.peer = socket.socketpair()
        self.sock.setblocking(False)
        self.connection = self
        self.frames: list[bytes] = []
        self.heartbeat_checks = 0

    def drain_events(self, timeout: float | None = None) -> None:
        assert timeout == 0  # never blocks: select() did the waiting
        try:
            frame = self.sock.recv(1)
        except BlockingIOError:
            raise TimeoutError from None
        self.frames.append(frame)

    def heartbeat_check(self) -> None:
        self.heartbeat_checks += 1

    def close(self) -> None:
        self.sock.close()
        self.peer.close()


def runtime(heartbeat: int = 20, subscriptions: Sequence[Subscription] = ()) -> ConsumerRuntime:
    publisher: Any = FakePublisher()
    return ConsumerRuntime(
        "svc", "amqp://nowhere", subscriptions, heartbeat=heartbeat, publisher=publisher
    )


def test_the_idle_wait_is_a_quarter_of_the_heartbeat() -> None:
    assert runtime(heartbeat=20).idle_wait == 5.0
    assert runtime(heartbeat=0).idle_wait == 5.0
    assert runtime(heartbeat=1).idle_wait == 0.5


def test_every_frame_already_there_is_read_in_one_wake_up() -> None:
    consumer, broker = runtime(), FakeBroker()
    try:
        broker.peer.sendall(b"abc")
        consumer._pump(broker, 30.0)  # type: ignore[arg-type]
        assert broker.frames == [b"a", b"b", b"c"]
        assert broker.heartbeat_checks == 1
    finally:
        broker.close()


def settled_by_the_handler_thread(consumer: ConsumerRuntime, messages: list[FakeMessage]) -> None:
    [subscription] = consumer.subscriptions
    consumer.handling.thread.start()
    try:
        for message in messages:
            consumer._received += 1  # as ``dispatch`` counts it
            consumer.handling.submit(subscription, message)
        deadline = time.monotonic() + 5.0
        while consumer.in_flight and time.monotonic() < deadline:
            time.sleep(0.005)
    finally:
        consumer.handling.finish(timeout=5.0)


def test_the_handler_thread_settles_its_batch_without_waking_the_loop() -> None:
    """One hand-off per delivery: to the handler thread, which acks after the handler ran."""
    handled: list[Any] = []
    subscription = Subscription(QUEUE, (UserSignedUp,), handled.append)
    consumer = runtime(subscriptions=[subscription])
    messages = [FakeMessage.tagged(tag, user_signed_up().to_json()) for tag in (1, 2)]
    try:
        settled_by_the_handler_thread(consumer, messages)
        assert consumer.in_flight == 0
        assert len(handled) == 2
        assert sum(len(m.acks) for m in messages) >= 1  # one multiple ack, or one each
        assert messages[1].acks  # the highest tag is acked in any case
        ready, _, _ = select.select([consumer.handling.wakeup.fileno()], [], [], 0)
        assert not ready  # the connection thread was not woken for it
    finally:
        consumer.handling.wakeup.close()


def test_a_batch_of_a_connection_that_died_is_left_unacked() -> None:
    subscription = Subscription(QUEUE, (UserSignedUp,), lambda _event: None)
    consumer = runtime(subscriptions=[subscription])
    message = FakeMessage.tagged(1, user_signed_up().to_json())
    [work] = [(0, subscription, message)]
    generation, results = consumer.handling.decide_batch([work])
    consumer._lost_connection()  # meanwhile: the broker redelivers it on the new connection
    consumer._settle_decided(generation, results)
    assert message.acks == []


def test_a_failing_ack_does_not_end_the_handler_thread() -> None:
    subscription = Subscription(QUEUE, (UserSignedUp,), lambda _event: None)
    consumer = runtime(subscriptions=[subscription])
    message = FakeMessage.tagged(1, user_signed_up().to_json())

    def lost(multiple: bool = False) -> None:
        raise ConnectionResetError("the broker went away")

    message.ack = lost  # type: ignore[method-assign]
    consumer._settle_decided(*consumer.handling.decide_batch([(0, subscription, message)]))
    assert consumer.handling.alive


def test_with_nothing_to_do_the_loop_sleeps_out_its_timeout() -> None:
    consumer, broker = runtime(), FakeBroker()
    try:
        started = time.monotonic()
        consumer._pump(broker, 0.01)  # type: ignore[arg-type]
        assert time.monotonic() - started >= 0.009
        assert broker.heartbeat_checks == 1
    finally:
        broker.close()
