"""Catch-up: a consuming service reads the event history, then goes on with its live queues.

Without a gap and without a double:

1. Declare the live queues and their bindings (``topology.declare``). From the moment the
   broker confirmed the bindings, every event published is routed to them too.
2. Wait ``margin`` seconds, then read the tail of the stream (``history.read_tail``). An event
   routed before the bindings existed was appended to the stream by then (an append takes
   milliseconds; the margin covers a replica that commits late), so it is at or before the tail.
3. Read the stream from the asked position up to the tail, inclusive, and stop at the first
   offset after it. Each event of a type the service subscribes to goes through the same
   decision and settling as a live delivery: the subscription's handler (inbox claim and effects
   in one transaction), the batch handler for a batch, in-process retries, and on failure a copy
   to the live queue's retry queue or dead-letter queue. Other event types are skipped.
4. The events after the bindings and up to the tail are in both the history and the live
   queue: whichever is handled second finds its id in the inbox and does nothing.

An empty history (no tail) or a start after the tail ends the catch-up at once; a stream that
stops delivering before the tail raises ``StalledError`` (the worker starts over). Progress is
logged every ``progress_every`` events and counted in ``signup_catch_up_events_total``.
"""

import contextlib
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from kombu.connection import Connection
from kombu.messaging import Consumer
from prometheus_client import Counter, Gauge

from signup_shared.messaging import history, topology
from signup_shared.messaging.connection import connect
from signup_shared.messaging.delivery import Delivery
from signup_shared.messaging.frames import contained_frame_handler
from signup_shared.messaging.processing import MessageProcessor
from signup_shared.messaging.publisher import Publisher
from signup_shared.messaging.settling import Result, settle_batch
from signup_shared.messaging.subscription import Subscription

log = structlog.get_logger(__name__)

CATCH_UP_EVENTS = Counter(
    "signup_catch_up_events_total",
    "Events read from the history during a catch-up, by outcome (handled: went through the "
    "handler, skipped: a type the service does not subscribe to).",
    ["service", "outcome"],
)
CATCH_UP_REMAINING = Gauge(
    "signup_catch_up_remaining_events",
    "Offsets of the history still to read before the catch-up reaches its tail (0: done).",
    ["service"],
)


class StalledError(Exception):
    """The stream delivered nothing for ``idle_timeout`` seconds before the tail."""


@dataclass
class CatchUpReport:
    """What a catch-up did: the offsets it read, how many events of each outcome, how long."""

    start: str
    tail: int | None = None
    last_offset: int | None = None
    handled: int = 0
    skipped: int = 0
    seconds: float = 0.0
    complete: bool = False


class CatchUp:
    """Reads the history from ``start`` to its tail through the subscriptions' handlers."""

    def __init__(
        self,
        service: str,
        amqp_url: str,
        subscriptions: Sequence[Subscription],
        start: history.Position,
        publisher: Publisher,
        *,
        processor: MessageProcessor | None = None,
        prefetch: int = 500,
        batch_size: int = 100,
        heartbeat: int = 20,
        margin: float = 2.0,
        idle_timeout: float = 30.0,
        progress_every: int = 10_000,
    ) -> None:
        self.service = service
        self.amqp_url = amqp_url
        self.subscriptions = list(subscriptions)
        self.by_type = {
            event.event_type: subscription
            for subscription in self.subscriptions
            for event in subscription.events
        }
        self.by_queue = {subscription.queue.name: subscription for subscription in subscriptions}
        self.start = start
        self.publisher = publisher
        self.processor = processor or MessageProcessor()
        self.prefetch = prefetch
        self.batch_size = batch_size
        self.heartbeat = heartbeat
        self.margin = margin
        self.idle_timeout = idle_timeout
        self.progress_every = progress_every
        self.remaining = CATCH_UP_REMAINING.labels(service)

    def run(self, stop: threading.Event) -> CatchUpReport:
        """Catch up once (raises if the broker fails; the caller decides to retry or stop)."""
        report = CatchUpReport(start=history.describe(self.start))
        began = time.monotonic()
        with connect(
            self.amqp_url, self.heartbeat, frame_handler=contained_frame_handler
        ) as connection:
            history.check_exists(connection)
            topology.declare(connection, [s.queue for s in self.subscriptions])
            log.info("catch_up.live_queues_bound", margin_seconds=self.margin)
            if stop.wait(self.margin):
                return report
            tail = history.read_tail(connection)
            report.tail = tail.offset if tail else None
            log.info("catch_up.started", start=report.start, tail=report.tail)
            if tail is not None and not history.after_tail(self.start, tail):
                self._replay(connection, tail.offset, report, stop)
            else:
                report.complete = True
        report.seconds = round(time.monotonic() - began, 3)
        if report.complete:
            self.remaining.set(0)
        log.info(
            "catch_up.finished" if report.complete else "catch_up.interrupted",
            start=report.start,
            tail=report.tail,
            last_offset=report.last_offset,
            handled=report.handled,
            skipped=report.skipped,
            seconds=report.seconds,
            events_per_second=round(report.handled / report.seconds) if report.seconds else None,
        )
        return report

    def _replay(
        self, connection: Connection, tail: int, report: CatchUpReport, stop: threading.Event
    ) -> None:
        channel = connection.channel()
        pending: list[Any] = []
        try:
            channel.basic_qos(0, self.prefetch, False)
            consumer = Consumer(
                channel,
                queues=[history.stream_queue(self.start)],
                on_message=pending.append,
                no_ack=False,
                tag_prefix=f"{self.service}.catch-up.",
            )
            consumer.consume()
            last_delivery = time.monotonic()
            next_progress = self.progress_every
            while not stop.is_set() and not report.complete:
                self._fill(connection, pending)
                connection.heartbeat_check()
                if not pending:
                    if time.monotonic() - last_delivery > self.idle_timeout:
                        # Not "done": ending here could leave a gap. The worker starts over.
                        raise StalledError(f"no delivery for {self.idle_timeout} s before {tail}")
                    continue
                last_delivery = time.monotonic()
                batch, pending[:] = pending[: self.batch_size], pending[self.batch_size :]
                self._handle(batch, tail, report, stop)
                if report.handled + report.skipped >= next_progress:
                    next_progress += self.progress_every
                    log.info(
                        "catch_up.progress",
                        offset=report.last_offset,
                        tail=tail,
                        handled=report.handled,
                        skipped=report.skipped,
                    )
        finally:
            with contextlib.suppress(Exception):
                channel.close()  # unacked deliveries of a stream need no requeue

    def _fill(self, connection: Connection, pending: list[Any]) -> None:
        """Take deliveries until a batch is full or none came for a moment (``drain_events``
        dispatches one delivery per call)."""
        timeout = 0.5
        while len(pending) < self.batch_size:
            try:
                connection.drain_events(timeout=timeout)
            except TimeoutError:
                return
            timeout = 0.01

    def _handle(
        self, messages: list[Any], tail: int, report: CatchUpReport, stop: threading.Event
    ) -> None:
        """Handle the messages up to the tail (one batch per subscription), settle them."""
        groups: dict[str, list[tuple[Any, Delivery]]] = defaultdict(list)
        skipped: list[Any] = []
        for message in messages:
            offset = history.offset_of(message)
            if offset is not None and offset > tail:
                report.complete = True
                break
            if offset is not None:
                report.last_offset = offset
            delivery = Delivery.of(message)
            subscription = self.by_type.get(str(delivery.properties.get("type") or ""))
            if subscription is None:
                skipped.append(message)
            else:
                groups[subscription.queue.name].append((message, delivery))
        results: list[Result] = []
        for name, group in groups.items():
            subscription = self.by_queue[name]
            deliveries = [delivery for _, delivery in group]
            decisions = self.processor.process_batch(subscription, deliveries, stop)
            results.extend(
                (subscription, message, delivery, decision)
                for (message, delivery), decision in zip(group, decisions, strict=True)
            )
        # A decision None (the database was away when the process was told to stop) stays
        # unacked; ``stop`` is set then, so nothing more is read.
        settle_batch(results, self.publisher, self.service, ack_multiple=False)
        for message in skipped:
            message.ack()
        report.handled += len(results)
        report.skipped += len(skipped)
        CATCH_UP_EVENTS.labels(self.service, "handled").inc(len(results))
        CATCH_UP_EVENTS.labels(self.service, "skipped").inc(len(skipped))
        if report.last_offset is not None:
            self.remaining.set(max(tail - report.last_offset, 0))
        if report.last_offset is not None and report.last_offset >= tail:
            report.complete = True
