"""Deciding: what becomes of a delivery once its handler ran (ack, retry, dead-letter, hold).

Poison (undecodable, invalid, unknown type/version, oversized) is dead-lettered at once. A
handler's transient error is retried in process (tenacity), then through the broker's delay
queues (``failures.decide``, the pure core, says which); a failure of the work after the
handler's commit (``failures.AfterCommitError``: an email still sending) goes straight to the
broker's retry, for a single message as for a batch. An outage of the service's own database
is not the message's fault: the message is held and retried until the database is back (or the
process stops: then it stays unacked, for redelivery). A batch goes to the batch handler in one
transaction; if that fails, each of its events is handled alone as ``process`` would.

Nothing here knows connections or acks. A fault of the runtime itself (not a handler's error,
which is a decision) raises; the worker loop's boundary (``consumer``) dead-letters the message
at fault as ``unprocessable``.
"""

import random
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from signup_contracts import UnsealError
from signup_shared import tracing
from signup_shared.backoff import Backoff
from signup_shared.errors import PoisonMessageError
from signup_shared.events import Envelope
from signup_shared.keys import KeyLookupError, KeysUnconfiguredError, UnconfiguredKeyResolver
from signup_shared.logging import correlation_scope
from signup_shared.messaging import failures
from signup_shared.messaging.delivery import Delivery, decode
from signup_shared.messaging.subscription import Handler, Subscription
from signup_shared.messaging.unseal import Unsealer, is_sealed

log = structlog.get_logger(__name__)
Decision = failures.Decision


class DatabaseOutageError(Exception):
    """Raised inside the processor when it gives up waiting for the database (shutdown)."""


class MessageProcessor:
    """Decides the fate of deliveries; knows nothing of connections or acks."""

    def __init__(
        self,
        in_process_attempts: int = 3,
        max_wait: float = 1.0,
        outage_backoff_cap: float = 5.0,
        unsealer: Unsealer | None = None,
    ) -> None:
        self.in_process_attempts = in_process_attempts
        self.max_wait = max_wait
        self.outage_backoff_cap = outage_backoff_cap
        self.unsealer = unsealer or Unsealer(UnconfiguredKeyResolver("<SERVICE>_KEYS"))

    def process(
        self,
        subscription: Subscription,
        delivery: Delivery,
        stopping: threading.Event | None = None,
    ) -> Decision | None:
        """The decision for this delivery, or None to leave it unacked for redelivery (only when
        the process stops while its database is unreachable)."""
        envelope: Envelope[Any] | Decision | None = self._decoded(subscription, delivery)
        if isinstance(envelope, Envelope):
            [envelope] = self._opened(subscription, [(delivery, envelope)], stopping)
        if not isinstance(envelope, Envelope):
            return envelope
        return self.handle(subscription, delivery, envelope, stopping)

    def process_batch(
        self,
        subscription: Subscription,
        deliveries: Sequence[Delivery],
        stopping: threading.Event | None = None,
    ) -> list[Decision | None]:
        """Decisions for several deliveries of one queue, aligned with them.

        Poison is decided on its own; the valid events go to the batch handler in one
        transaction. If that fails, each event is handled alone as ``process`` would. An event
        whose after-commit work failed is retried through the broker (or dead-lettered when the
        error is permanent) without running it again here: a slow provider must not make the
        consumer pay its wait once more per event, holding back the rest of the queue.
        """
        if subscription.batch_handler is None or len(deliveries) < 2:
            return [self.process(subscription, delivery, stopping) for delivery in deliveries]
        decisions: list[Decision | None] = [None] * len(deliveries)
        valid: list[tuple[int, Envelope[Any]]] = []
        for index, delivery in enumerate(deliveries):
            envelope = self._decoded(subscription, delivery)
            if isinstance(envelope, Decision):
                decisions[index] = envelope
            else:
                valid.append((index, envelope))
        opened = self._opened(subscription, [(deliveries[i], e) for i, e in valid], stopping)
        decoded: list[tuple[int, Envelope[Any]]] = []
        for (index, _), result in zip(valid, opened, strict=True):
            if isinstance(result, Envelope):
                decoded.append((index, result))
            else:
                decisions[index] = result
        if not decoded:
            return decisions
        errors = self._run_batch(subscription, [envelope for _, envelope in decoded])
        for index, envelope in decoded:
            delivery = deliveries[index]
            if errors is None:  # the transaction failed: each event alone
                decisions[index] = self.handle(subscription, delivery, envelope, stopping)
            elif envelope.id not in errors:
                decisions[index] = failures.ACK
                log.info(
                    "message.handled",
                    queue=subscription.queue.name,
                    event_id=str(envelope.id),
                    event_type=envelope.type,
                    correlation_id=envelope.correlation_id,
                    batch=len(decoded),
                )
            else:  # after-commit work failed (it was just tried): the broker's retry or DLQ
                with correlation_scope(envelope.correlation_id, event_id=str(envelope.id)):
                    decisions[index] = self._failed(subscription, delivery, errors[envelope.id])
        return decisions

    def handle(
        self,
        subscription: Subscription,
        delivery: Delivery,
        envelope: Envelope[Any],
        stopping: threading.Event | None = None,
    ) -> Decision | None:
        """Run the handler for one decoded event (retries in process, waits through outages)."""
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
            except failures.AfterCommitError as exc:  # committed: the broker retries the rest
                return self._failed(subscription, delivery, exc.error)
            except Exception as exc:
                return self._failed(subscription, delivery, exc)
            attempt = failures.attempts_so_far(delivery.headers) + 1
            log.info("message.handled", queue=subscription.queue.name, attempt=attempt)
            return failures.ACK

    def _decoded(self, subscription: Subscription, delivery: Delivery) -> Envelope[Any] | Decision:
        """The event, with its ``consume`` span; or the dead-letter decision for poison."""
        try:
            envelope = decode(subscription, delivery)
        except PoisonMessageError as exc:
            log.warning(
                "message.poison", queue=subscription.queue.name, reason=failures.error_text(exc)
            )
            return failures.decide(exc, failures.attempts_so_far(delivery.headers), 0)
        tracing.consumed(subscription.queue.name, envelope.id, delivery.traceparent)
        return envelope

    def _opened(
        self,
        subscription: Subscription,
        items: Sequence[tuple[Delivery, Envelope[Any]]],
        stopping: threading.Event | None,
    ) -> list[Envelope[Any] | Decision | None]:
        """The events with each sealed signup opened (one key lookup for them all). While the
        keys service is away, they wait here (backoff) as through a database outage; None each
        if the process stops meanwhile (left unacked). An event that cannot be opened gets its
        decision: retry then dead-letter (no keys service configured), dead-letter (altered)."""
        if not any(is_sealed(envelope) for _, envelope in items):
            return [envelope for _, envelope in items]
        backoff: Backoff | None = None
        while True:
            try:
                return list(self.unsealer.open(subscription.events, [e for _, e in items]))
            except KeysUnconfiguredError:
                break
            except KeyLookupError as exc:
                waiting = stopping or threading.Event()
                backoff, stopped = self._wait_out(backoff, "keys", exc, subscription, waiting)
                if stopped:
                    return [None] * len(items)
            except Exception:  # each alone, to find which one fails and why
                break
        return [self._open_one(subscription, delivery, e) for delivery, e in items]

    def _open_one(
        self, subscription: Subscription, delivery: Delivery, envelope: Envelope[Any]
    ) -> Envelope[Any] | Decision:
        with correlation_scope(envelope.correlation_id, event_id=str(envelope.id)):
            try:
                [opened] = self.unsealer.open(subscription.events, [envelope])
            except UnsealError as exc:
                return self._failed(subscription, delivery, PoisonMessageError(str(exc)))
            except Exception as exc:  # KeyLookupError: transient, retried later
                return self._failed(subscription, delivery, exc)
        return opened

    def _run_batch(
        self, subscription: Subscription, envelopes: list[Envelope[Any]]
    ) -> Mapping[Any, BaseException] | None:
        """The batch handler's after-commit errors by event id; None if the transaction failed."""
        assert subscription.batch_handler is not None
        try:
            errors = subscription.batch_handler(envelopes)
        except Exception as exc:
            failures.log_failure(
                log.warning,
                "batch.failed",
                exc,
                queue=subscription.queue.name,
                count=len(envelopes),
            )
            return None
        log.debug(
            "batch.handled", queue=subscription.queue.name, count=len(envelopes), failed=len(errors)
        )
        return errors

    def _failed(
        self, subscription: Subscription, delivery: Delivery, error: BaseException
    ) -> Decision:
        """Retry or dead-letter after a handler failed, and say so in one line."""
        previous = failures.attempts_so_far(delivery.headers)
        decision = failures.decide(error, previous, len(subscription.queue.retry_delays_ms))
        failures.log_failure(
            log.warning,
            "message.failed",
            error,
            queue=subscription.queue.name,
            attempt=decision.attempt,
            next_step=decision.action.value,
        )
        return decision

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
                backoff, stopped = self._wait_out(backoff, "database", exc, subscription, stopping)
                if stopped:
                    raise DatabaseOutageError from exc

    def _wait_out(
        self,
        backoff: Backoff | None,
        what: str,
        exc: BaseException,
        subscription: Subscription,
        stopping: threading.Event,
    ) -> tuple[Backoff, bool]:
        """An outage of ``what`` (the database, the keys service): say so and sleep the next
        backoff delay; the backoff (built on the first call) and whether the process stops."""
        backoff = backoff or Backoff(base=0.5, cap=self.outage_backoff_cap)
        delay = backoff.next()
        failures.log_failure(
            log.warning,
            f"message.waiting_for_{what}",
            exc,
            queue=subscription.queue.name,
            retry_in=round(delay, 2),
        )
        return backoff, stopping.wait(delay)

    def _handle(self, handler: Handler, envelope: Envelope[Any]) -> None:
        """The handler, retried in process on transient errors (the retrier is built only then)."""
        try:
            handler(envelope)
            return
        except Exception as exc:
            if self.in_process_attempts <= 1 or not _retry_in_process(exc):
                raise
        time.sleep(random.uniform(0, min(0.05, self.max_wait)))
        for attempt in Retrying(
            retry=retry_if_exception(_retry_in_process),
            stop=stop_after_attempt(self.in_process_attempts - 1),
            wait=wait_exponential_jitter(multiplier=0.05, max=self.max_wait),
            reraise=True,
        ):
            with attempt:
                handler(envelope)


def _retry_in_process(exc: BaseException) -> bool:
    """A transient error of the handler's transaction; not after-commit work (the broker's)."""
    return not isinstance(exc, failures.AfterCommitError) and failures.is_transient(exc)
