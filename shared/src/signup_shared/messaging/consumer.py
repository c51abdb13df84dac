"""The consumer runtime every service uses.

Shaped like a view: decode -> handler (which opens the transaction, calls one action and
commits) -> ack. The connection lives on the main thread, which keeps heartbeats flowing and
does every ack; handlers run on a worker thread, so a slow handler never starves the heartbeat.
Acks are sent only after the handler returned, i.e. after its commit.

Batches: the worker takes what is already delivered (up to ``batch_size``, never waiting for
more) and gives each queue's share to its batch handler: one transaction, then one ``multiple``
ack. A batch that fails is handled again one message at a time, so each message keeps its own
retry and dead-letter path.

Failures: poison (undecodable, invalid, unknown type/version, oversized) goes to ``<queue>.dlq``
at once with the reason in headers; transient errors are retried in process (tenacity), then
through the delay queues, then dead-lettered. Nothing is acked and dropped.

Containment: every value read from a message is read defensively; any error of the runtime
itself dead-letters that one message as ``unprocessable`` (rejected into the queue's own
dead-letter exchange if even that copy cannot be published), and the consumer carries on. If the
worker thread dies anyway, the process logs why and exits at once (readiness says 503 meanwhile).
"""

import contextlib
import enum
import os
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import kombu.compression
import structlog
from kombu.connection import Connection
from kombu.message import Message
from kombu.messaging import Consumer
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from signup_shared import tracing
from signup_shared.backoff import Backoff
from signup_shared.errors import PoisonMessageError
from signup_shared.events import Envelope, EventData
from signup_shared.logging import correlation_scope
from signup_shared.messaging import failures, topology
from signup_shared.messaging.connection import CONNECTION_ERRORS, connect
from signup_shared.messaging.publisher import ConfirmingPublisher, Publisher
from signup_shared.messaging.queue_metrics import REJECTED, for_queue
from signup_shared.messaging.topology import (
    DEAD_LETTER_EXCHANGE,
    RETRY_EXCHANGE,
    ConsumerQueue,
)
from signup_shared.messaging.wire import (
    OutgoingMessage,
    decode,
    header_int,
    short_text,
)

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 256 * 1024
WORKER_DIED_EXIT_CODE = 70
Handler = Callable[[Envelope[Any]], None]
BatchHandler = Callable[[Sequence[Envelope[Any]]], Mapping[uuid.UUID, BaseException]]
"""Handles many events in one transaction. Raises if the transaction failed (the runtime then
handles the batch one message at a time); returns, by event id, the errors of events whose
after-commit work failed (those messages alone are retried or dead-lettered)."""


@dataclass(frozen=True)
class Subscription:
    """One queue of a service, the event payloads it accepts and the handlers that take them.

    ``handler`` takes one event (and is what a failed batch falls back to); ``batch_handler``,
    if given, takes every event of a batch at once.
    """

    queue: ConsumerQueue
    events: tuple[type[EventData], ...]
    handler: Handler
    batch_handler: BatchHandler | None = None


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
        return cls(
            body=_body(_attribute(message, "body")),
            headers=_mapping(_attribute(message, "headers")),
            properties=_mapping(_attribute(message, "properties")),
            exchange=short_text(_mapping(_attribute(message, "delivery_info")).get("exchange", "")),
            routing_key=short_text(
                _mapping(_attribute(message, "delivery_info")).get("routing_key", "")
            ),
        )

    @property
    def traceparent(self) -> str | None:
        """The W3C trace context the sender attached, if it is a valid one."""
        return tracing.parse_traceparent(self.headers.get(tracing.TRACEPARENT))


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


def decode_for(subscription: Subscription, delivery: Delivery) -> Envelope[Any]:
    if len(delivery.body) > MAX_BODY_BYTES:
        raise PoisonMessageError(f"body of {len(delivery.body)} bytes exceeds {MAX_BODY_BYTES}")
    envelope = decode(delivery.body)
    if not isinstance(envelope.data, subscription.events):
        raise PoisonMessageError(
            f"{subscription.queue.name} does not handle {envelope.type} v{envelope.version}"
        )
    return envelope


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


class DatabaseOutageError(Exception):
    """Raised inside the processor when it gives up waiting for the database (shutdown)."""


def _failed(
    subscription: Subscription, error: BaseException, previous_attempts: int
) -> failures.Decision:
    """Retry or dead-letter after a handler failed, and say so in one line."""
    decision = failures.decide(error, previous_attempts, len(subscription.queue.retry_delays_ms))
    log.warning(
        "message.failed",
        queue=subscription.queue.name,
        error_type=type(error).__name__,
        error=failures.error_text(error),
        attempt=decision.attempt,
        next_step=decision.action.value,
    )
    return decision


class MessageProcessor:
    """Decides the fate of one delivery; knows nothing of connections or acks."""

    def __init__(
        self, in_process_attempts: int = 3, max_wait: float = 1.0, outage_backoff_cap: float = 5.0
    ) -> None:
        self.in_process_attempts = in_process_attempts
        self.max_wait = max_wait
        self.outage_backoff_cap = outage_backoff_cap

    def process(
        self,
        subscription: Subscription,
        delivery: Delivery,
        stopping: threading.Event | None = None,
    ) -> failures.Decision | None:
        """The decision for this delivery, or None to leave it unacked for redelivery.

        None happens only when the process stops while its database is unreachable. Never
        raises: a failure of the runtime itself dead-letters the message as unprocessable.
        """
        try:
            envelope = self.decode(subscription, delivery)
            if isinstance(envelope, failures.Decision):
                return envelope
            tracing.consumed(subscription.queue.name, envelope.id, delivery.traceparent)
            return self.handle(subscription, delivery, envelope, stopping)
        except Exception as exc:
            return self.unprocessable(subscription, delivery, exc)

    def decode(
        self, subscription: Subscription, delivery: Delivery
    ) -> Envelope[Any] | failures.Decision:
        """The validated envelope, or the dead-letter decision for poison."""
        try:
            return decode_for(subscription, delivery)
        except PoisonMessageError as exc:
            log.warning(
                "message.poison", queue=subscription.queue.name, reason=failures.error_text(exc)
            )
            return failures.decide(exc, failures.attempts_so_far(delivery.headers), 0)

    def handle(
        self,
        subscription: Subscription,
        delivery: Delivery,
        envelope: Envelope[Any],
        stopping: threading.Event | None = None,
    ) -> failures.Decision | None:
        """Run the handler for one decoded event (retries in process, waits through outages)."""
        previous = failures.attempts_so_far(delivery.headers)
        with correlation_scope(
            envelope.correlation_id, event_id=str(envelope.id), event_type=envelope.type
        ):
            try:
                with tracing.handling(envelope.id, f"handle {envelope.type}"):
                    self._handle_through_outages(
                        subscription, envelope, stopping or threading.Event()
                    )
            except DatabaseOutageError:
                return None
            except Exception as exc:
                return _failed(subscription, exc, previous)
            log.info("message.handled", queue=subscription.queue.name, attempt=previous + 1)
            return failures.ACK

    def process_batch(
        self,
        subscription: Subscription,
        deliveries: Sequence[Delivery],
        stopping: threading.Event | None = None,
    ) -> list[failures.Decision | None]:
        """Decisions for several deliveries of one queue, aligned with them; never raises.

        Poison is decided on its own; the valid events go to the batch handler in one
        transaction. If that fails, each event is handled alone as ``process`` would.
        """
        if subscription.batch_handler is None or len(deliveries) < 2:
            return [self.process(subscription, delivery, stopping) for delivery in deliveries]
        decisions: list[failures.Decision | None] = [None] * len(deliveries)
        decoded: list[tuple[int, Envelope[Any]]] = []
        for index, delivery in enumerate(deliveries):
            try:
                envelope = self.decode(subscription, delivery)
            except Exception as exc:
                envelope = self.unprocessable(subscription, delivery, exc)
            if isinstance(envelope, failures.Decision):
                decisions[index] = envelope
                continue
            try:
                tracing.consumed(subscription.queue.name, envelope.id, delivery.traceparent)
            except Exception as exc:
                decisions[index] = self.unprocessable(subscription, delivery, exc)
                continue
            decoded.append((index, envelope))
        if not decoded:
            return decisions
        try:
            errors = subscription.batch_handler([envelope for _, envelope in decoded])
        except Exception as exc:
            log.warning(
                "batch.failed",
                queue=subscription.queue.name,
                count=len(decoded),
                error_type=type(exc).__name__,
                error=failures.error_text(exc),
            )
            errors = None
        for index, envelope in decoded:
            delivery = deliveries[index]
            try:
                if errors is None:
                    decisions[index] = self.handle(subscription, delivery, envelope, stopping)
                elif envelope.id in errors:
                    decisions[index] = self._after_commit_failed(
                        subscription, delivery, envelope, errors[envelope.id], stopping
                    )
                else:
                    decisions[index] = failures.ACK
                    log.info(
                        "message.handled",
                        queue=subscription.queue.name,
                        event_id=str(envelope.id),
                        event_type=envelope.type,
                        correlation_id=envelope.correlation_id,
                        batch=len(decoded),
                    )
            except Exception as exc:
                decisions[index] = self.unprocessable(subscription, delivery, exc)
        if errors is not None:
            log.debug(
                "batch.handled",
                queue=subscription.queue.name,
                count=len(decoded),
                failed=len(errors),
            )
        return decisions

    def _after_commit_failed(
        self,
        subscription: Subscription,
        delivery: Delivery,
        envelope: Envelope[Any],
        error: BaseException,
        stopping: threading.Event | None,
    ) -> failures.Decision | None:
        """A permanent failure is decided at once; anything else gets the one-message path
        (retries in process, waiting through a database outage) as if the batch had not been."""
        if not failures.is_permanent(error):
            return self.handle(subscription, delivery, envelope, stopping)
        with correlation_scope(envelope.correlation_id, event_id=str(envelope.id)):
            return _failed(subscription, error, failures.attempts_so_far(delivery.headers))

    def unprocessable(
        self, subscription: Subscription, delivery: Delivery, exc: BaseException
    ) -> failures.Decision:
        log.error(
            "message.unprocessable",
            queue=subscription.queue.name,
            error_type=type(exc).__name__,
            error=failures.error_text(exc),
        )
        return failures.unprocessable(exc, failures.attempts_so_far(delivery.headers))

    def _handle_through_outages(
        self, subscription: Subscription, envelope: Envelope[Any], stopping: threading.Event
    ) -> None:
        backoff: Backoff | None = None  # built only when the database is away
        while True:
            try:
                self._handle(subscription.handler, envelope)
                return
            except Exception as exc:
                if not failures.is_outage(exc):
                    raise
                backoff = backoff or Backoff(base=0.5, cap=self.outage_backoff_cap)
                delay = backoff.next()
                log.warning(
                    "message.waiting_for_database",
                    queue=subscription.queue.name,
                    error_type=type(exc).__name__,
                    error=failures.error_text(exc).split("\n", 1)[0],
                    retry_in=round(delay, 2),
                )
                if stopping.wait(delay):
                    raise DatabaseOutageError from exc

    def _handle(self, handler: Handler, envelope: Envelope[Any]) -> None:
        """The handler, retried in process on transient errors (the retrier is built only then)."""
        try:
            handler(envelope)
            return
        except Exception as exc:
            if self.in_process_attempts <= 1 or not failures.is_transient(exc):
                raise
        time.sleep(random.uniform(0, min(0.05, self.max_wait)))
        for attempt in Retrying(
            retry=retry_if_exception(failures.is_transient),
            stop=stop_after_attempt(self.in_process_attempts - 1),
            wait=wait_exponential_jitter(multiplier=0.05, max=self.max_wait),
            reraise=True,
        ):
            with attempt:
                handler(envelope)


def rerouted(
    subscription: Subscription, delivery: Delivery, decision: failures.Decision, service: str
) -> OutgoingMessage:
    """The copy of a failed delivery that goes to a retry queue or the dead-letter queue.

    Every property and header is copied in a form the broker accepts again.
    """
    consumer_queue = subscription.queue
    attempt = decision.attempt
    if decision.action is failures.Action.RETRY and 1 <= attempt <= len(
        consumer_queue.retry_delays_ms
    ):
        exchange, target = RETRY_EXCHANGE, consumer_queue.retry_queue_name(attempt)
    else:
        exchange, target = DEAD_LETTER_EXCHANGE, consumer_queue.dlq_name
    props = delivery.properties
    headers = failures.failure_headers(
        delivery.headers,
        decision,
        service=service,
        queue=consumer_queue.name,
        exchange=delivery.exchange,
        routing_key=delivery.routing_key,
    )
    return OutgoingMessage(
        body=delivery.body,
        routing_key=target,
        message_id=short_text(props.get("message_id") or ""),
        type=short_text(props.get("type") or ""),
        version=header_int(headers.get("x-event-version"), 0, low=0, high=2**31 - 1),
        correlation_id=short_text(props.get("correlation_id") or ""),
        producer=short_text(props.get("app_id") or ""),
        exchange=exchange,
        headers=headers,
    )


def unprocessable_copy(
    subscription: Subscription, delivery: Delivery, exc: BaseException, service: str
) -> OutgoingMessage:
    """The plainest dead-letter copy: the body and our own headers only, every value text."""
    decision = failures.unprocessable(exc)
    consumer_queue = subscription.queue
    headers = failures.failure_headers(
        {},
        decision,
        service=service,
        queue=consumer_queue.name,
        exchange=short_text(delivery.exchange),
        routing_key=short_text(delivery.routing_key),
    )
    return OutgoingMessage(
        body=delivery.body,
        routing_key=consumer_queue.dlq_name,
        message_id=short_text(delivery.properties.get("message_id") or ""),
        type="",
        version=0,
        correlation_id="",
        producer="",
        exchange=DEAD_LETTER_EXCHANGE,
        headers=headers,
    )


class Settleable(Protocol):
    """What settling needs of a broker message (kombu's ``Message`` has it)."""

    def ack(self, multiple: bool = False) -> None: ...

    def reject(self, requeue: bool = False) -> None: ...


class Settled(enum.Enum):
    ACKED = "acked"
    RETRIED = "retried"
    DEAD_LETTERED = "dead_lettered"
    REJECTED = "rejected"  # into the queue's own dead-letter exchange


def settle(
    message: Settleable,
    delivery: Delivery,
    subscription: Subscription,
    decision: failures.Decision,
    publisher: Publisher,
    service: str,
) -> Settled:
    """Ack, or re-publish a copy (retry queue / DLQ) and ack, or reject into the queue's DLX.

    Nothing a message holds can make this raise: when the copy cannot be built or published,
    a plain ``unprocessable`` copy goes to the DLQ; when even that fails the message is rejected
    without requeue, and the quorum queue dead-letters it itself. Only a lost connection
    (the ack or reject cannot be sent) escapes, for the reconnect loop to handle.
    """
    if decision.action is failures.Action.ACK:
        _ack(message)
        return Settled.ACKED
    try:
        copy = rerouted(subscription, delivery, decision, service)
        publisher.publish_batch([copy])
    except Exception as exc:
        log.error(
            "message.reroute_failed",
            queue=subscription.queue.name,
            error_type=type(exc).__name__,
            error=failures.error_text(exc),
        )
        return _dead_letter_plainly(message, delivery, subscription, exc, publisher, service)
    log.warning(
        "message.rerouted",
        target=copy.routing_key,
        kind=decision.kind,
        attempt=decision.attempt,
        error_type=type(decision.error).__name__ if decision.error is not None else "",
    )
    _ack(message)
    if copy.exchange != DEAD_LETTER_EXCHANGE:  # a retry queue's
        delay = topology.delay_label(subscription.queue.retry_delays_ms[decision.attempt - 1])
        for_queue(subscription.queue.name).retried(delay).inc()
        return Settled.RETRIED
    for_queue(subscription.queue.name).dead_lettered(decision.kind).inc()
    return Settled.DEAD_LETTERED


def _dead_letter_plainly(
    message: Settleable,
    delivery: Delivery,
    subscription: Subscription,
    exc: BaseException,
    publisher: Publisher,
    service: str,
) -> Settled:
    try:
        publisher.publish_batch([unprocessable_copy(subscription, delivery, exc, service)])
    except Exception as again:
        log.error(
            "message.rejected_to_dead_letter_exchange",
            queue=subscription.queue.name,
            error_type=type(again).__name__,
            error=failures.error_text(again),
        )
        _reject(message)
        for_queue(subscription.queue.name).dead_lettered(REJECTED).inc()
        return Settled.REJECTED
    log.warning("message.rerouted", target=subscription.queue.dlq_name, kind="unprocessable")
    _ack(message)
    for_queue(subscription.queue.name).dead_lettered(failures.UNPROCESSABLE).inc()
    return Settled.DEAD_LETTERED


def _ack(message: Settleable, multiple: bool = False) -> None:
    try:
        message.ack(multiple=multiple)
    except CONNECTION_ERRORS:
        raise
    except Exception as exc:
        log.error(
            "message.ack_failed", error_type=type(exc).__name__, error=failures.error_text(exc)
        )


def _reject(message: Settleable) -> None:
    try:
        message.reject(requeue=False)
    except CONNECTION_ERRORS:
        raise
    except Exception as exc:
        log.error(
            "message.reject_failed", error_type=type(exc).__name__, error=failures.error_text(exc)
        )


_Work = tuple[int, Subscription, Message]
_Result = tuple[Subscription, Message, Delivery, failures.Decision | None]
_Done = tuple[int, list[_Result]]


class ConsumerRuntime:
    """Consumes the subscriptions' queues on one connection; handles batches on a worker thread.

    The worker takes what is already delivered (up to ``batch_size``, never waiting for more),
    hands each queue's share to its batch handler, and gives the decisions back to the
    connection thread, which re-publishes and acks: the batch's acks go as one ``multiple`` ack
    of its highest delivery tag, after every message of it that needed more was settled alone.
    """

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
        self.subscriptions = list(subscriptions)
        self.prefetch = prefetch
        self.batch_size = max(1, batch_size)
        self.dead_letter_report_interval = 60.0
        self.heartbeat = heartbeat
        self.processor = processor or MessageProcessor()
        self.publisher = publisher or ConfirmingPublisher(amqp_url, confirm_timeout, heartbeat)
        self.connected = False
        self._generation = 0
        self._work: queue.Queue[_Work | None] = queue.Queue()
        self._done: queue.Queue[_Done] = queue.Queue()
        self._in_flight = 0
        self._ack_multiple = True
        self._stop = threading.Event()
        self._worker_died = False
        self.on_worker_death: Callable[[int], None] = os._exit
        self._worker = threading.Thread(target=self._work_loop, name="handler", daemon=True)

    @property
    def worker_alive(self) -> bool:
        """False once the handler thread died (the process is then on its way out)."""
        return not self._worker_died and (self._worker.is_alive() or self._worker.ident is None)

    # worker thread -----------------------------------------------------------------------
    def _work_loop(self) -> None:
        try:
            while (first := self._work.get()) is not None:
                batch, last = self._take_batch(first)
                self._done.put(self._process(batch))
                if last:
                    return
        except BaseException as exc:
            self._die(exc)

    def _take_batch(self, first: _Work) -> tuple[list[_Work], bool]:
        """``first`` and whatever else is already waiting, up to ``batch_size``."""
        batch = [first]
        while len(batch) < self.batch_size:
            try:
                item = self._work.get_nowait()
            except queue.Empty:
                return batch, False
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _process(self, batch: list[_Work]) -> _Done:
        """Decisions for one batch, each queue's share handled together; never raises."""
        generation = self._generation
        tracing.forget_consumed()
        by_queue: dict[str, list[tuple[Subscription, Message, Delivery]]] = {}
        for item_generation, subscription, message in batch:
            if item_generation == generation:  # older ones died with their channel
                by_queue.setdefault(subscription.queue.name, []).append(
                    (subscription, message, Delivery.of(message))
                )
        results: list[_Result] = []
        for items in by_queue.values():
            subscription = items[0][0]
            deliveries = [delivery for _, _, delivery in items]
            counted = for_queue(subscription.queue.name)
            counted.batch_size.observe(len(deliveries))
            started = time.perf_counter()
            try:
                decisions = self.processor.process_batch(subscription, deliveries, self._stop)
                counted.duration.observe(time.perf_counter() - started)
                if len(decisions) != len(items):
                    raise RuntimeError("the processor lost track of a batch")
            except Exception as exc:
                decisions = [
                    self.processor.unprocessable(subscription, delivery, exc)
                    for delivery in deliveries
                ]
            for (_, message, delivery), decision in zip(items, decisions, strict=True):
                results.append((subscription, message, delivery, decision))
        return generation, results

    def _die(self, exc: BaseException) -> None:
        """The handler thread must never vanish silently: say why, then end the process."""
        self._worker_died = True
        try:
            log.critical(
                "consumer.worker_died",
                error_type=type(exc).__name__,
                error=failures.error_text(exc),
            )
        finally:
            self.on_worker_death(WORKER_DIED_EXIT_CODE)

    # main thread -------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Consume until ``stop`` is set; reconnect with backoff whenever the broker goes away."""
        self._stop = stop
        self._worker.start()
        backoff = Backoff()
        try:
            while not stop.is_set():
                try:
                    self._consume(stop, backoff)
                except CONNECTION_ERRORS as exc:
                    self._lost_connection()
                    delay = backoff.next()
                    log.warning("consumer.disconnected", error=repr(exc), retry_in=round(delay, 2))
                    stop.wait(delay)
        finally:
            self._work.put(None)
            self._worker.join(timeout=60)
            if isinstance(self.publisher, ConfirmingPublisher):
                self.publisher.close()
            log.info("consumer.stopped")

    def _consume(self, stop: threading.Event, backoff: Backoff) -> None:
        with connect(self.amqp_url, self.heartbeat) as connection:
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
            log.info("consumer.started", queues=[s.queue.name for s in self.subscriptions])
            next_report = time.monotonic()
            while not stop.is_set():
                self._pump(connection, 0.005 if self._in_flight else 0.25)
                if time.monotonic() >= next_report:
                    self._report_dead_letters(connection)
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

    def _dispatcher(self, subscription: Subscription) -> Callable[[Message], None]:
        received = for_queue(subscription.queue.name).received

        def dispatch(message: Message) -> None:
            received.inc()
            self._in_flight += 1
            self._work.put((self._generation, subscription, message))

        return dispatch

    def _undecodable(self, subscription: Subscription) -> Callable[[Message, Exception], None]:
        """kombu could not prepare the message (e.g. a ``compression`` header it cannot undo):
        it goes down the same path as any other, where it is dead-lettered as poison."""
        dispatch = self._dispatcher(subscription)

        def undecodable(message: Message, exc: Exception) -> None:
            log.warning(
                "message.client_decode_failed",
                queue=subscription.queue.name,
                error_type=type(exc).__name__,
                error=failures.error_text(exc),
            )
            dispatch(message)

        return undecodable

    def _pump(self, connection: Connection, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            connection.drain_events(timeout=timeout)
        connection.heartbeat_check()
        self._apply_done()

    def _apply_done(self, block_for: float | None = None) -> None:
        while True:
            try:
                generation, results = (
                    self._done.get(timeout=block_for) if block_for else self._done.get_nowait()
                )
            except queue.Empty:
                return
            block_for = None
            if generation != self._generation:
                continue
            self._in_flight -= len(results)
            self._settle_batch(results)

    def _settle_batch(self, results: list[_Result]) -> None:
        """Settle what needs a copy (or is held) one by one, then ack the rest together."""
        acks: list[Message] = []
        acked: dict[str, int] = {}
        for subscription, message, delivery, decision in results:
            if decision is None:
                self._ack_multiple = False  # left unacked: a later multiple ack must not cover it
            elif decision.action is failures.Action.ACK:
                acks.append(message)
                acked[subscription.queue.name] = acked.get(subscription.queue.name, 0) + 1
            else:
                self._settle(subscription, message, delivery, decision)
        if not acks:
            return
        if self._ack_multiple:
            _ack(max(acks, key=_delivery_tag), multiple=len(acks) > 1)
        else:
            for message in acks:
                _ack(message)
        for name, count in acked.items():
            for_queue(name).handled.inc(count)

    def _settle(
        self,
        subscription: Subscription,
        message: Message,
        delivery: Delivery,
        decision: failures.Decision,
    ) -> None:
        try:
            settle(message, delivery, subscription, decision, self.publisher, self.service)
        except CONNECTION_ERRORS:
            raise
        except Exception as exc:  # settle never raises; if it does, keep consuming
            log.error(
                "message.settle_failed",
                error_type=type(exc).__name__,
                error=failures.error_text(exc),
            )
            _reject(message)
            for_queue(subscription.queue.name).dead_lettered(REJECTED).inc()

    def _finish_in_flight(self, connection: Connection) -> None:
        """On shutdown: skip queued work (the broker requeues it), finish and ack the current."""
        self._generation_skip_queued()
        while self._in_flight > 0 and self.worker_alive:
            self._apply_done(block_for=0.1)
            connection.heartbeat_check()

    def _generation_skip_queued(self) -> None:
        skipped = 0
        while True:
            try:
                item = self._work.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                skipped += 1
                self._in_flight -= 1
        if skipped:
            self._ack_multiple = False  # the skipped stay unacked: acknowledge one by one now
            log.info("consumer.requeued_unstarted", count=skipped)

    def _lost_connection(self) -> None:
        """Deliveries of a dead channel cannot be acked: forget them, the broker redelivers."""
        self.connected = False
        self._generation += 1
        self._in_flight = 0
        self._ack_multiple = True


def _delivery_tag(message: Message) -> int:
    tag = getattr(message, "delivery_tag", 0)
    return tag if isinstance(tag, int) else 0
