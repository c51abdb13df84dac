"""``drop-erased --all``: one pass over every dead-letter queue, and the periodic runner.

A pass lists the DLQs (the management API, or any callable), asks each its depth with a passive
declare (exact, and cheap: an empty DLQ costs one round trip and is not walked), and walks each
non-empty one with an :class:`~signup_dlq.erased.ErasedDropper` bounded by that depth. Accounts
is asked once per user per pass (the walks share what it said). A stop request (SIGTERM, Ctrl-C)
ends the pass at the next message boundary: the message in hand is finished first.

:meth:`Janitor.run_every` repeats the pass every ``seconds`` until a stop request: a pass that
fails (accounts or the broker unreachable) is reported and the next one tries again; it never
guesses (the failing walk leaves its DLQ as it was, see ``erased.py``).

No I/O of its own: the broker, the DLQ listing, accounts, the clock and the reports are given.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol

from signup_dlq.erased import DropOutcome, ErasedDropper, ErasureLookup, Keep, UserStatus
from signup_dlq.errors import DlqError
from signup_dlq.replay import ReplayChannel
from signup_dlq.walk import StoppableWalk


class SweepBroker(ReplayChannel, Protocol):
    def depth(self, queue: str) -> int: ...

    def enable_confirms(self) -> None: ...


@dataclass
class QueueSweep:
    """One DLQ of a pass: its depth when the pass reached it and what the walk did."""

    queue: str
    depth: int
    outcome: DropOutcome


@dataclass
class Sweep:
    """What one pass did (kept current while it runs)."""

    listed: int = 0  # dead-letter queues the listing named
    empty: int = 0  # of them, found empty by the passive declare: not walked
    walked: list[QueueSweep] = field(default_factory=list)
    stopped: bool = False
    error: str | None = None
    seconds: float = 0.0

    @property
    def dropped(self) -> int:
        return sum(w.outcome.dropped for w in self.walked)

    @property
    def kept(self) -> Counter[Keep]:
        return sum((w.outcome.kept for w in self.walked), Counter())

    @property
    def lookups(self) -> int:
        return sum(w.outcome.lookups for w in self.walked)

    def line(self) -> str:
        """``drop-erased --all: 12 dead-letter queue(s), 2 walked, 10 empty: dropped 3, ...``."""
        kept = DropOutcome(kept=self.kept).kept_summary()
        end = "stopped" if self.stopped else "failed" if self.error else "done"
        return (
            f"drop-erased --all {end}: {self.listed} dead-letter queue(s), {len(self.walked)} "
            f"walked, {self.empty} empty: dropped {self.dropped} dead letter(s) of erased users, "
            f"{kept}; asked accounts about {self.lookups} user(s) in {self.seconds:.1f} s"
            + (f"; error: {self.error}" if self.error else "")
        )


def queue_line(walked: QueueSweep) -> str:
    """``drop-erased notifications.user_signed_up.dlq: 4 message(s): dropped 1, kept 3 (...)``."""
    outcome = walked.outcome
    return (
        f"drop-erased {walked.queue}: {walked.depth} message(s): dropped {outcome.dropped}, "
        f"{outcome.kept_summary()}; asked accounts about {outcome.lookups} user(s)"
    )


class Janitor(StoppableWalk):
    """Drops the dead letters of erased users from every DLQ, once (:meth:`sweep`) or every
    ``seconds`` (:meth:`run_every`). :meth:`request_stop` is safe from a signal handler."""

    def __init__(
        self,
        connect: Callable[[], AbstractContextManager[SweepBroker]],
        list_dlqs: Callable[[], list[str]],
        lookup: ErasureLookup,
        *,
        dry_run: bool = False,
        report: Callable[[str], None] = lambda _line: None,
        finished: Callable[[Sweep], None] = lambda _sweep: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connect = connect
        self.list_dlqs = list_dlqs
        self.lookup = lookup
        self.dry_run = dry_run
        self.report = report
        self.finished = finished
        self.clock = clock
        self._stopping = threading.Event()
        self._walk: StoppableWalk | None = None

    def request_stop(self) -> None:
        super().request_stop()
        self._stopping.set()
        walk = self._walk
        if walk is not None:
            walk.request_stop()

    def sweep(self) -> Sweep:
        """One pass; a :class:`DlqError` ends it (reported in ``Sweep.error``, never raised)."""
        began = self.clock()
        sweep = Sweep()
        try:
            self._sweep(sweep)
        except DlqError as exc:
            sweep.error = str(exc)
        sweep.seconds = self.clock() - began
        self.report(sweep.line())
        self.finished(sweep)
        return sweep

    def _sweep(self, sweep: Sweep) -> None:
        queues = self.list_dlqs()
        sweep.listed = len(queues)
        statuses: dict[uuid.UUID, UserStatus] = {}  # one question per user per pass
        with self.connect() as broker:
            if not self.dry_run:
                broker.enable_confirms()
            for queue in queues:
                if self._stopping.is_set():
                    sweep.stopped = True
                    return
                depth = broker.depth(queue)
                if depth == 0:
                    sweep.empty += 1
                    continue
                dropper = ErasedDropper(
                    broker,
                    queue,
                    self.lookup,
                    max_messages=depth,
                    dry_run=self.dry_run,
                    statuses=statuses,
                )
                walked = QueueSweep(queue, depth, dropper.outcome)
                sweep.walked.append(walked)
                self._walk = dropper
                if self._stopping.is_set():  # a stop that came in between
                    dropper.request_stop()
                try:
                    outcome = dropper.run()
                finally:
                    self._walk = None
                self.report(queue_line(walked))
                if outcome.stopped:
                    sweep.stopped = True
                    return

    def run_every(self, seconds: float) -> int:
        """A pass now and then every ``seconds`` (from the start of the previous one) until a
        stop request; how many passes ran (each was reported to ``finished``)."""
        passes = 0
        while not self._stopping.is_set():
            began = self.clock()
            self.sweep()
            passes += 1
            if self._stopping.wait(max(0.0, seconds - (self.clock() - began))):
                break
        return passes
