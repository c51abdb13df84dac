"""The consumer runtime: one connection on the main thread, handlers on a worker thread.

Shaped like a view: read the delivery, decide (``processing``: the handler opens the
transaction, calls one action and commits), settle (``settling``: ack, or re-publish a copy and
ack, or reject). The main thread owns the connection: it sleeps in one ``select()`` on the
broker socket and the handler thread's wake-up socket, reads whatever frames arrived, settles
what the handler thread finished, and keeps heartbeats flowing (it wakes at least every quarter
of the heartbeat interval, idle or not). It does every ack; handlers run on the worker thread,
so a slow handler never starves the heartbeat. Acks are sent only after the handler returned,
i.e. after its commit. Nothing polls: an idle consumer wakes a few times a minute.

Batches: the handler thread (``handler_thread``) decides what is already delivered, each
queue's share together, and hands the decisions back; the main thread settles them with one
``multiple`` ack of the batch's highest delivery tag, after every message of it that needed
more was settled alone.

Containment: a delivery whose properties the client cannot decode is read anyway (``frames``)
and dead-lettered as poison; the handler thread's ``decide`` is the one boundary where nothing
escapes; the main loop reconnects on any error (deliveries it held are redelivered).
"""

import queue
import select
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from kombu.connection import Connection
from kombu.messaging import Consumer

from signup_shared.backoff import Backoff
from signup_shared.messaging import failures, topology
from signup_shared.messaging.connection import CONNECTION_ERRORS, addresses, connect
from signup_shared.messaging.delivery import refuse_compressed_bodies
from signup_shared.messaging.frames import contained_frame_handler
from signup_shared.messaging.handler_thread import HandlerThread
from signup_shared.messaging.processing import MessageProcessor
from signup_shared.messaging.publisher import ConfirmingPublisher, Publisher
from signup_shared.messaging.queue_metrics import for_queue
from signup_shared.messaging.settling import Result, settle_batch
from signup_shared.messaging.subscription import Subscription
from signup_shared.wakeup import wake_when_set

__all__ = ["ConsumerRuntime", "MessageProcessor", "Subscription"]

log = structlog.get_logger(__name__)


class ConsumerRuntime:
    """Consumes the subscriptions' queues on one connection; handles batches on a worker thread."""

    def __init__(
        self,
        service: str,
        amqp_url: str,
        subscriptions: Sequence[Subscription],
        *,
        prefetch: int = 50,
        heartbeat: int = 20,
        confirm_timeout: float = 10.0,
        batch_size: int = 100,
        processor: MessageProcessor | None = None,
        publisher: Publisher | None = None,
    ) -> None:
        refuse_compressed_bodies()
        self.service = service
        self.amqp_url = amqp_url
        self.broker = addresses(amqp_url)  # host:port of the node in use (all, when none is)
        self.subscriptions = list(subscriptions)
        self.prefetch = prefetch
        self.dead_letter_report_interval = 60.0
        self.heartbeat = heartbeat
        self.processor = processor or MessageProcessor()
        self.publisher = publisher or ConfirmingPublisher(amqp_url, confirm_timeout, heartbeat)
        self.connected = False
        self.handling = HandlerThread(self.processor, batch_size)
        self._in_flight = 0
        self._ack_multiple = True

    @property
    def batch_size(self) -> int:
        return self.handling.batch_size

    @property
    def worker_alive(self) -> bool:
        """False once the handler thread died (the process is then on its way out)."""
        return self.handling.alive

    # main thread -------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; reconnect with backoff whenever anything goes wrong
        (a lost broker, or a fault of the runtime: unacked deliveries are then redelivered)."""
        self.handling.stopping = stop
        self.handling.thread.start()
        wake_when_set(stop, self.handling.wakeup)
        backoff = Backoff()
        try:
            while not stop.is_set():
                try:
                    self._consume(stop, backoff)
                except Exception as exc:
                    self._lost_connection()
                    delay = backoff.next()
                    event = (
                        "consumer.disconnected"
                        if isinstance(exc, CONNECTION_ERRORS)
                        else "consumer.failed"
                    )
                    failures.log_failure(
                        log.warning, event, exc, broker=self.broker, retry_in=round(delay, 2)
                    )
                    self.broker = addresses(self.amqp_url)  # the next round tries them all
                    stop.wait(delay)
        finally:
            self.handling.finish(timeout=60)
            if isinstance(self.publisher, ConfirmingPublisher):
                self.publisher.close()
            log.info("consumer.stopped")

    def _consume(self, stop: threading.Event, backoff: Backoff) -> None:
        with connect(
            self.amqp_url, self.heartbeat, frame_handler=contained_frame_handler
        ) as connection:
            self.broker = str(connection.host)
            topology.declare(connection, [s.queue for s in self.subscriptions])
            channel = connection.channel()
            channel.basic_qos(0, self.prefetch, False)
            consumers = [
                Consumer(
                    channel,
                    queues=[subscription.queue.main_queue()],
                    on_message=self._dispatcher(subscription),
                    on_decode_error=self._undecodable(subscription),
                    no_ack=False,
                    tag_prefix=f"{self.service}.",
                )
                for subscription in self.subscriptions
            ]
            for consumer in consumers:
                consumer.consume()
            self.connected = True
            backoff.reset()
            log.info(
                "consumer.started",
                broker=self.broker,
                queues=[s.queue.name for s in self.subscriptions],
            )
            next_report = time.monotonic()
            while not stop.is_set():
                self._pump(connection, self.idle_wait)
                if time.monotonic() >= next_report:
                    self._report_dead_letters(connection)
                    _drain(connection)  # deliveries read while waiting for the replies
                    next_report = time.monotonic() + self.dead_letter_report_interval
            for consumer in consumers:
                consumer.cancel()
            self._finish_in_flight(connection)
            self.connected = False

    def _report_dead_letters(self, connection: Connection) -> None:
        """Say in the logs when dead letters wait for an operator (also on the dashboard)."""
        channel = connection.channel()
        try:
            for subscription in self.subscriptions:
                name = subscription.queue.dlq_name
                depth = channel.queue_declare(name, passive=True).message_count
                if depth:
                    log.warning("dead_letters.waiting", queue=name, count=depth)
        finally:
            channel.close()

    def _dispatcher(self, subscription: Subscription) -> Callable[[Any], None]:
        received = for_queue(subscription.queue.name).received

        def dispatch(message: Any) -> None:
            received.inc()
            self._in_flight += 1
            self.handling.submit(subscription, message)

        return dispatch

    def _undecodable(self, subscription: Subscription) -> Callable[[Any, Exception], None]:
        """kombu could not prepare the message (e.g. a ``compression`` header it cannot undo):
        it goes down the same path as any other, where it is dead-lettered as poison."""
        dispatch = self._dispatcher(subscription)

        def undecodable(message: Any, exc: Exception) -> None:
            failures.log_failure(
                log.warning, "message.client_decode_failed", exc, queue=subscription.queue.name
            )
            dispatch(message)

        return undecodable

    @property
    def idle_wait(self) -> float:
        """The longest sleep: a quarter of the heartbeat interval (heartbeats go out at half)."""
        return max(0.5, self.heartbeat / 4) if self.heartbeat else 5.0

    def _pump(self, connection: Connection, timeout: float) -> None:
        """Sleep until frames arrive, the handler thread finished a batch, or ``timeout``;
        then read every frame there is, check heartbeats and settle what is done. The broker
        socket is read only when it has bytes (a wake-up by the handler thread alone reads
        nothing: a ``drain_events`` that finds nothing costs two ``ioctl``, a failed ``recv``
        and an exception through py-amqp and kombu)."""
        wakeup = self.handling.wakeup
        sock = connection.connection.sock
        readable, _, _ = select.select([sock, wakeup.fileno()], [], [], timeout)
        if wakeup.fileno() in readable:
            wakeup.clear()  # before taking from ``done``: a later batch wakes us again
        if sock in readable or _buffered(sock):
            _drain(connection)
        connection.heartbeat_check()
        self._apply_done()

    def _apply_done(self, block_for: float | None = None) -> None:
        while True:
            if not block_for and self.handling.done.empty():  # this thread alone takes
                return
            try:
                generation, results = (
                    self.handling.done.get(timeout=block_for)
                    if block_for
                    else self.handling.done.get_nowait()
                )
            except queue.Empty:
                return
            block_for = None
            if generation != self.handling.generation:
                continue
            self._in_flight -= len(results)
            self._settle_batch(results)

    def _settle_batch(self, results: list[Result]) -> None:
        self._ack_multiple = settle_batch(results, self.publisher, self.service, self._ack_multiple)

    def _finish_in_flight(self, connection: Connection) -> None:
        """On shutdown: skip queued work (the broker requeues it), finish and ack the current."""
        self._skip_queued()
        while self._in_flight > 0 and self.worker_alive:
            self._apply_done(block_for=0.1)
            connection.heartbeat_check()

    def _skip_queued(self) -> None:
        skipped = self.handling.skip_queued()
        if skipped:
            self._in_flight -= skipped
            self._ack_multiple = False  # the skipped stay unacked: acknowledge one by one now
            log.info("consumer.requeued_unstarted", count=skipped)

    def _lost_connection(self) -> None:
        """Deliveries of a dead channel cannot be acked: forget them, the broker redelivers."""
        self.connected = False
        self.handling.generation += 1
        self._in_flight = 0
        self._ack_multiple = True


def _drain(connection: Connection) -> None:
    """Dispatch every frame already received, without blocking: one frame after another while
    the socket (or, with TLS, the decrypted buffer) holds more. py-amqp reads exactly the bytes
    of a frame, so nothing it has not dispatched waits in its own buffer; a frame read in part
    waits for the rest, which makes the socket readable again."""
    sock = connection.connection.sock
    while True:
        try:
            connection.drain_events(timeout=0)
        except TimeoutError:
            return
        if not (_buffered(sock) or select.select([sock], [], [], 0)[0]):
            return


def _buffered(sock: Any) -> bool:
    """Bytes a TLS socket decrypted and holds, which ``select()`` on the socket cannot see."""
    pending = getattr(sock, "pending", None)
    return bool(pending()) if pending is not None else False
