"""The consumer's main loop sleeps in select(): woken by frames or by the handler thread."""

import socket
import threading
import time
from typing import Any

from signup_shared.messaging.consumer import ConsumerRuntime
from signup_shared.testing import FakePublisher


class FakeBroker:
    """Stands for kombu's connection: ``connection.sock``, ``drain_events``, heartbeats."""

    def __init__(self) -> None:
        self.sock, self.peer = socket.socketpair()
        self.sock.setblocking(False)
        self.connection = self
        self.frames: list[bytes] = []
        self.heartbeat_checks = 0
        self.drains = 0  # drain_events calls, those that found nothing included

    def drain_events(self, timeout: float | None = None) -> None:
        assert timeout == 0  # never blocks: select() did the waiting
        self.drains += 1
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


def runtime(heartbeat: int = 20) -> ConsumerRuntime:
    publisher: Any = FakePublisher()
    return ConsumerRuntime("svc", "amqp://nowhere", [], heartbeat=heartbeat, publisher=publisher)


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
        assert broker.drains == 3  # no last call to find that nothing is left
    finally:
        broker.close()


class TlsSocket:
    """A TLS socket whose decrypted buffer holds ``held`` frames the OS socket does not show."""

    def __init__(self, sock: socket.socket, held: int) -> None:
        self.sock, self.held = sock, held

    def fileno(self) -> int:
        return self.sock.fileno()

    def pending(self) -> int:
        return self.held


class TlsBroker(FakeBroker):
    def __init__(self, held: int) -> None:
        super().__init__()
        self.plain = self.sock
        self.sock = TlsSocket(self.plain, held)  # type: ignore[assignment]

    def drain_events(self, timeout: float | None = None) -> None:
        self.drains += 1
        if self.sock.held:  # type: ignore[attr-defined]
            self.sock.held -= 1  # type: ignore[attr-defined]
            self.frames.append(b"tls")
            return
        raise TimeoutError

    def close(self) -> None:
        self.plain.close()
        self.peer.close()


def test_frames_a_tls_socket_decrypted_already_are_read_though_the_socket_shows_none() -> None:
    consumer, broker = runtime(), TlsBroker(held=2)
    try:
        consumer._pump(broker, 0.01)  # type: ignore[arg-type]
        assert broker.frames == [b"tls", b"tls"]
    finally:
        broker.close()


def test_the_handler_thread_wakes_the_loop_to_settle_its_batch() -> None:
    consumer, broker = runtime(), FakeBroker()
    consumer._in_flight = 1
    try:
        threading.Timer(
            0.01, lambda: (consumer.handling.done.put((0, [])), consumer.handling.wakeup.wake())
        ).start()
        started = time.monotonic()
        consumer._pump(broker, 30.0)  # type: ignore[arg-type]
        assert time.monotonic() - started < 5.0
        assert consumer.handling.done.empty()  # settled on this wake-up
        assert broker.frames == []
        assert broker.drains == 0  # the broker socket had nothing: not read
    finally:
        broker.close()


def test_with_nothing_to_do_the_loop_sleeps_out_its_timeout() -> None:
    consumer, broker = runtime(), FakeBroker()
    try:
        started = time.monotonic()
        consumer._pump(broker, 0.01)  # type: ignore[arg-type]
        assert time.monotonic() - started >= 0.009
        assert broker.heartbeat_checks == 1
    finally:
        broker.close()
