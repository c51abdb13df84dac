"""The outbox relay: publishes pending rows in batches and marks them sent after the confirm.

- ``SELECT ... FOR UPDATE SKIP LOCKED`` lets several relays share one outbox without overlap.
- Row locks are held while the batch is published, so a relay that dies mid-batch leaves its
  rows pending for the next one (they may be published twice; consumers deduplicate).
- It sleeps on ``LISTEN outbox`` (woken at commit by the table's trigger) with a poll timeout as
  a safety net, and prunes rows sent longer ago than the retention period.
"""

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import structlog
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import DBAPIError

from signup_shared.backoff import Backoff
from signup_shared.messaging.publisher import Publisher, PublishError
from signup_shared.messaging.wire import OutgoingMessage
from signup_shared.outbox.model import OUTBOX_NOTIFY_CHANNEL, OutboxMixin

log = structlog.get_logger(__name__)


def _to_message(row: Any) -> OutgoingMessage:
    return OutgoingMessage(
        body=row.payload.encode(),
        routing_key=row.routing_key,
        message_id=str(row.event_id),
        type=row.event_type,
        version=row.version,
        correlation_id=row.correlation_id,
        producer=row.producer,
    )


class OutboxRelay:
    def __init__(
        self,
        engine: Engine,
        model: type[OutboxMixin],
        publisher: Publisher,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        retention: timedelta = timedelta(hours=24),
        prune_interval: float = 600.0,
    ) -> None:
        self.engine = engine
        self.model = model
        self.publisher = publisher
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.retention = retention
        self.prune_interval = prune_interval
        self._last_prune = 0.0
        table: Any = model.__table__  # type: ignore[attr-defined]
        self._pending = (
            select(table)
            .where(table.c.sent_at.is_(None))
            .order_by(table.c.position)
            .limit(batch_size)
            .with_for_update(skip_locked=True)
        )
        self._table = table

    def publish_batch(self) -> int:
        """Publish one batch of pending rows; returns how many were confirmed and marked sent."""
        error: PublishError | None = None
        with self.engine.begin() as connection:
            rows = connection.execute(self._pending).all()
            if not rows:
                return 0
            messages = [_to_message(row) for row in rows]
            try:
                self.publisher.publish_batch(messages)
                confirmed = {m.message_id for m in messages}
            except PublishError as exc:
                error, confirmed = exc, set(exc.confirmed)
            positions = [row.position for row in rows if str(row.event_id) in confirmed]
            if positions:
                connection.execute(
                    update(self._table)
                    .where(self._table.c.position.in_(positions))
                    .values(sent_at=func.now())
                )
        if error is not None:
            raise error
        return len(positions)

    def publish_pending(self) -> int:
        """Publish batches until the outbox has no more pending rows free to take."""
        total = 0
        while True:
            count = self.publish_batch()
            total += count
            if count < self.batch_size:
                return total

    def prune(self) -> int:
        with self.engine.begin() as connection:
            result = connection.execute(
                delete(self._table).where(self._table.c.sent_at < func.now() - self.retention)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    def _maybe_prune(self) -> None:
        if time.monotonic() - self._last_prune >= self.prune_interval:
            self._last_prune = time.monotonic()
            pruned = self.prune()
            if pruned:
                log.info("outbox.pruned", rows=pruned)

    def run(self, stop: threading.Event) -> None:
        """Relay until ``stop`` is set; survives broker and database outages with backoff."""
        backoff = Backoff()
        wakeups = NotificationListener(self.engine)
        log.info("relay.started", batch_size=self.batch_size)
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
                wakeups.wait(min(self.poll_interval, 5.0))
        finally:
            wakeups.close()
            log.info("relay.stopped")


class NotificationListener:
    """Waits for ``NOTIFY outbox``; falls back to plain sleeping while the database is away."""

    def __init__(self, engine: Engine) -> None:
        self.conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self._connection: psycopg.Connection[Any] | None = None

    def _connect(self) -> psycopg.Connection[Any]:
        if self._connection is None or self._connection.closed:
            connection = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5)
            connection.execute(f"LISTEN {OUTBOX_NOTIFY_CHANNEL}")
            self._connection = connection
        return self._connection

    def wait(self, timeout: float) -> None:
        try:
            notifications: Iterator[Any] = self._connect().notifies(timeout=timeout, stop_after=1)
            for _ in notifications:
                pass
        except psycopg.Error:
            self.close()
            time.sleep(min(timeout, 1.0))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
