"""The handler thread: takes what is already delivered, decides it, hands the results back.

It takes up to ``batch_size`` deliveries that are waiting (never waiting for more), reads them
(``Delivery.of``) and gives each queue's share to the processor; the connection thread settles
the results, woken by ``wakeup`` (it sleeps in ``select()`` on its socket and that one). Work
carries the generation of the connection it came from: deliveries of a connection that died
since cannot be acked and are skipped (the broker redelivers them).

``decide`` is the one "never raises" boundary of the runtime: a handler's error is a decision
already; a fault of the runtime itself dead-letters the delivery at fault as ``unprocessable``
(the others of its batch are decided alone). If the thread dies anyway, it says why and ends
the process (``on_death``), since a consumer without its handler thread would hold its
deliveries forever.
"""

import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog

from signup_shared import tracing
from signup_shared.messaging import failures
from signup_shared.messaging.delivery import Delivery
from signup_shared.messaging.processing import MessageProcessor
from signup_shared.messaging.queue_metrics import for_queue
from signup_shared.messaging.settling import Result
from signup_shared.messaging.subscription import Subscription
from signup_shared.wakeup import Wakeup

log = structlog.get_logger(__name__)

DIED_EXIT_CODE = 70
Work = tuple[int, Subscription, Any]  # generation, subscription, broker message
Done = tuple[int, list[Result]]


class HandlerThread:
    def __init__(self, processor: MessageProcessor, batch_size: int) -> None:
        self.processor = processor
        self.batch_size = max(1, batch_size)
        self.stopping = threading.Event()
        self.generation = 0
        self.work: queue.Queue[Work | None] = queue.Queue()
        self.done: queue.Queue[Done] = queue.Queue()
        self.wakeup = Wakeup()  # readable once something is in ``done``
        self.on_death: Callable[[int], None] = os._exit
        self.died = False
        self.thread = threading.Thread(target=self.run, name="handler", daemon=True)

    @property
    def alive(self) -> bool:
        """False once the thread died (the process is then on its way out)."""
        return not self.died and (self.thread.is_alive() or self.thread.ident is None)

    def submit(self, subscription: Subscription, message: Any) -> None:
        self.work.put((self.generation, subscription, message))

    def run(self) -> None:
        try:
            while (first := self.work.get()) is not None:
                batch, last = self.take_batch(first)
                self.done.put(self.decide_batch(batch))
                self.wakeup.wake()
                if last:
                    return
        except BaseException as exc:
            self.died = True
            try:
                failures.log_failure(log.critical, "consumer.worker_died", exc)
            finally:
                self.on_death(DIED_EXIT_CODE)

    def take_batch(self, first: Work) -> tuple[list[Work], bool]:
        """``first`` and whatever else is already waiting, up to ``batch_size``; and whether
        the end of the work was reached."""
        batch = [first]
        while len(batch) < self.batch_size:
            try:
                item = self.work.get_nowait()
            except queue.Empty:
                return batch, False
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def decide_batch(self, batch: list[Work]) -> Done:
        """Decisions for one batch, each queue's share decided together."""
        generation = self.generation
        tracing.forget_consumed()
        by_queue: dict[str, tuple[Subscription, list[Any]]] = {}
        for item_generation, subscription, message in batch:
            if item_generation == generation:  # older ones died with their channel
                by_queue.setdefault(subscription.queue.name, (subscription, []))[1].append(message)
        results: list[Result] = []
        for subscription, messages in by_queue.values():
            deliveries = [Delivery.of(message) for message in messages]
            counted = for_queue(subscription.queue.name)
            counted.batch_size.observe(len(deliveries))
            started = time.perf_counter()
            decisions = self.decide(subscription, deliveries)
            counted.duration.observe(time.perf_counter() - started)
            results.extend(
                (subscription, message, delivery, decision)
                for message, delivery, decision in zip(messages, deliveries, decisions, strict=True)
            )
        return generation, results

    def decide(
        self, subscription: Subscription, deliveries: list[Delivery]
    ) -> list[failures.Decision | None]:
        """The decisions for one queue's deliveries; never raises (see the module docstring)."""
        try:
            decisions = self.processor.process_batch(subscription, deliveries, self.stopping)
            if len(decisions) != len(deliveries):
                raise RuntimeError("the processor lost track of a batch")
            return decisions
        except Exception as exc:
            queue_name = subscription.queue.name
            if len(deliveries) > 1:
                failures.log_failure(log.error, "batch.unprocessable", exc, queue=queue_name)
                return [self.decide(subscription, [delivery])[0] for delivery in deliveries]
            failures.log_failure(log.error, "message.unprocessable", exc, queue=queue_name)
            return [failures.unprocessable(exc, failures.attempts_so_far(deliveries[0].headers))]

    def skip_queued(self) -> int:
        """Drop the work not started yet (on shutdown: the broker redelivers it); how much."""
        skipped = 0
        while True:
            try:
                item = self.work.get_nowait()
            except queue.Empty:
                return skipped
            if item is not None:
                skipped += 1

    def finish(self, timeout: float) -> None:
        """Let the thread finish its current batch and end."""
        self.work.put(None)
        if self.thread.ident is not None:
            self.thread.join(timeout=timeout)
