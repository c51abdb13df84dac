"""The outbox relay: publishes pending rows in batches and marks them sent after the confirm.

- ``SELECT ... FOR UPDATE SKIP LOCKED`` lets several relays share one outbox without overlap;
  the row locks are held while the batch is published, so a relay that dies mid-batch leaves
  its rows pending for the next one (published twice, maybe; consumers deduplicate).
- A row that cannot be published (the client cannot encode it: parked at once; the broker
  refused it ``park_after`` times, held back longer after each refusal, ``outbox.holds``) is
  parked and counted (``signup_relay_parked_total``, gauge ``signup_outbox_parked_rows``); the
  rest of its batch is marked sent, in the same transaction as the refusals.
- It sleeps on ``LISTEN outbox`` (woken at commit by the table's trigger, ``outbox.listener``:
  nothing runs while nothing happens) with a long safety poll (``poll_interval``, 30 s in the
  services), and prunes rows sent longer ago than the retention period (checked after each
  round of work, so at least once a safety poll).
"""

import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import psycopg
import structlog
from sqlalchemy import Engine, Row
from sqlalchemy.exc import DBAPIError

from signup_shared import metrics
from signup_shared.backoff import Backoff
from signup_shared.messaging.publisher import UNENCODABLE, Publisher, PublishError, Ticket
from signup_shared.outbox.batch import Claim, to_message
from signup_shared.outbox.holds import Holds
from signup_shared.outbox.listener import NotificationListener
from signup_shared.outbox.model import OutboxMixin
from signup_shared.outbox.parking import RELAY_PARKED, ParkedCollector
from signup_shared.outbox.queries import OutboxQueries, Refusal
from signup_shared.wakeup import wake_when_set

log = structlog.get_logger(__name__)


class OutboxRelay:
    def __init__(
        self,
        engine: Engine,
        model: type[OutboxMixin],
        publisher: Publisher,
        *,
        batch_size: int = 500,
        poll_interval: float = 30.0,
        retention: timedelta = timedelta(hours=24),
        prune_interval: float = 600.0,
        service: str | None = None,
        park_after: int = 5,
        refusal_hold_seconds: float = 2.0,
    ) -> None:
        self.engine = engine
        self.service = service or engine.url.database or "outbox"
        self.model = model
        self.publisher = publisher
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retention = retention
        self.prune_interval = prune_interval
        self.park_after = park_after
        self.holds = Holds(first_delay=refusal_hold_seconds)
        self._last_prune = 0.0
        self._pool = ThreadPoolExecutor(2, thread_name_prefix="outbox")
        self.queries = OutboxQueries(model, batch_size)
        # labelled once: ``labels()`` takes a lock and validates the labels on every call
        self._published = metrics.RELAY_PUBLISHED.labels(self.service)
        self._publish_seconds = metrics.RELAY_PUBLISH_SECONDS.labels(self.service)
        self._confirm_seconds = metrics.RELAY_CONFIRM_SECONDS.labels(self.service)

    def publish_batch(self) -> int:
        """Publish one batch of pending rows; returns how many were confirmed and marked sent."""
        claim = self._claim()
        if claim is None:
            return 0
        confirmed, refused, error = self._confirm(*self._send(claim))
        marked = self._mark_sent(claim, confirmed, refused)
        if error is not None:
            raise error
        return marked

    def publish_pending(self) -> int:
        """Publish batches until a batch is not full; returns how many rows were sent.

        Full batches are pipelined: while one waits for its confirms, the next is selected (on
        a helper thread) and written, and the one before is marked sent (on another); each is
        its own transaction, holding its rows' locks until marked or released. A batch that is
        not full (the usual case at low rates) is claimed, published and marked on this thread.
        """
        claim: Claim | None = self._claim()
        next_claim: Future[Claim | None] | None = None
        in_flight: deque[tuple[Claim, Ticket, float]] = deque()
        marking: list[Future[int]] = []
        marked = 0
        try:
            while claim is not None or in_flight:
                full = claim is not None and len(claim.rows) == self.batch_size
                next_claim = self._pool.submit(self._claim) if full else None
                if claim is not None:
                    in_flight.append((claim, *self._send(claim)))
                while in_flight and (len(in_flight) > 1 or next_claim is None):
                    done, ticket, sent_at = in_flight.popleft()
                    confirmed, refused, error = self._confirm(ticket, sent_at)
                    if next_claim is None and not in_flight:  # the last batch: no hand-off
                        marked += self._mark_sent(done, confirmed, refused)
                    else:
                        marking.append(self._pool.submit(self._mark_sent, done, confirmed, refused))
                    if error is not None:
                        raise error
                claim = next_claim.result() if next_claim is not None else None
                next_claim = None
        finally:
            if next_claim is not None and (leftover := next_claim.result()) is not None:
                leftover.abandon()
            for claim_left, _, _ in in_flight:
                claim_left.abandon()
        return marked + sum(future.result() for future in marking)

    def _claim(self) -> "Claim | None":
        connection = self.engine.connect()
        try:
            transaction = connection.begin()
            rows = self.queries.claim(connection, self.holds.held())
        except BaseException:
            connection.close()
            raise
        if not rows:
            transaction.rollback()
            connection.close()
            return None
        return Claim(connection, transaction, rows)

    def _send(self, claim: "Claim") -> tuple[Ticket, float]:
        """Write the batch to the broker; its ticket and when the write ended."""
        started = time.perf_counter()
        try:
            ticket = self.publisher.send([to_message(row) for row in claim.rows])
        except BaseException:
            claim.abandon()
            raise
        finally:
            self._publish_seconds.observe(time.perf_counter() - started)
        return ticket, time.perf_counter()

    def _confirm(
        self, ticket: Ticket, sent_at: float
    ) -> tuple[frozenset[str], dict[str, str], PublishError | None]:
        """The confirmed and the refused messages of a batch, and its error if some messages
        failed with the connection (a batch whose every message was settled has none)."""
        try:
            self.publisher.wait(ticket)
        except PublishError as exc:
            settled = exc.confirmed | exc.refused.keys()
            return exc.confirmed, exc.refused, None if settled >= ticket.message_ids else exc
        self._confirm_seconds.observe(time.perf_counter() - sent_at)
        return ticket.message_ids, {}, None

    def backlog(self) -> tuple[int, float]:
        """Rows waiting to be published and the age in seconds of the oldest (for metrics)."""
        with self.engine.connect() as connection:
            return self.queries.backlog_of(connection)

    def parked(self) -> int:
        """Rows parked because they cannot be published (for metrics)."""
        with self.engine.connect() as connection:
            return self.queries.count_parked(connection)

    def _mark_sent(self, claim: "Claim", confirmed: frozenset[str], refused: dict[str, str]) -> int:
        """Mark the confirmed rows sent, count or park the refused ones, and commit, which
        releases the batch's locks."""
        positions = [row.position for row in claim.rows if row.event_id in confirmed]
        refusals = [
            Refusal(row.position, reason, self._parks(row, reason))
            for row in claim.rows
            if (reason := refused.get(row.event_id)) is not None
        ]
        try:
            self.queries.record_sent(claim.connection, positions)
            self.queries.record_refused(claim.connection, refusals)
            claim.transaction.commit()
        finally:
            claim.connection.close()
        self._published.inc(len(positions))
        self.holds.release(positions)
        self.holds.release(refusal.position for refusal in refusals if refusal.park)
        refused_before = {row.position: row.refusals for row in claim.rows}
        for refusal in refusals:
            retry_in = (
                0.0
                if refusal.park
                else self.holds.hold(refusal.position, refused_before[refusal.position])
            )
            log.warning(
                "relay.row_refused",
                position=refusal.position,
                reason=refusal.reason,
                parked=refusal.park,
                retry_in=retry_in,
            )
        if parked := sum(refusal.park for refusal in refusals):
            RELAY_PARKED.labels(self.service).inc(parked)
        return len(positions)

    def _parks(self, row: Row[Any], reason: str) -> bool:
        """Park a row the client cannot encode (at once) or the broker refused park_after times."""
        return reason.startswith(UNENCODABLE) or row.refusals + 1 >= self.park_after

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def prune(self) -> int:
        with self.engine.begin() as connection:
            return self.queries.prune(connection, self.retention)

    def _maybe_prune(self) -> None:
        if time.monotonic() - self._last_prune >= self.prune_interval:
            self._last_prune = time.monotonic()
            pruned = self.prune()
            if pruned:
                log.info("outbox.pruned", rows=pruned)

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set (``follow``), with the outbox's metrics collectors; then
        release the helper threads."""
        collectors = [
            metrics.OutboxCollector(self.service, self.backlog),
            ParkedCollector(self.service, self.parked),
        ]
        for collector in collectors:
            metrics.register(collector)
        log.info("relay.started", batch_size=self.batch_size)
        try:
            self.follow(stop)
        finally:
            for collector in collectors:
                metrics.unregister(collector)
            self.close()
            log.info("relay.stopped")

    def follow(self, stop: threading.Event) -> None:
        """Publish what is committed until ``stop`` is set: woken at commit (``LISTEN``), a
        safety poll every ``poll_interval``; survives broker and database outages with backoff.
        A consumer process runs it beside its work for an outbox of its own (no timer)."""
        backoff = Backoff()
        wakeups = NotificationListener(self.engine)
        wake_when_set(stop, wakeups.wakeup)
        try:
            while not stop.is_set():
                try:
                    published = self.publish_pending()
                    if published:
                        log.debug("relay.published", count=published)
                    self._maybe_prune()
                    backoff.reset()
                except (PublishError, DBAPIError, psycopg.Error, OSError) as exc:
                    delay = backoff.next()
                    log.warning("relay.retrying", error=str(exc), retry_in=round(delay, 2))
                    stop.wait(delay)
                    continue
                due = self.holds.next_due()  # a refused row's hold ends
                wakeups.wait(self.poll_interval if due is None else min(self.poll_interval, due))
        finally:
            wakeups.close()
            wakeups.wakeup.close()
