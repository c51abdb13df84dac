"""Rows the broker refused, held back before the relay tries them again.

A refusal often passes: a quorum queue or the history stream electing a new leader nacks every
publish for ten to twenty seconds. Trying the row again at once would spend its ``park_after``
refusals within a second and park it; holding it back a little longer after each refusal
(2 s, 4 s, 8 s, 16 s by default) parks a row only when the broker has refused it for about half
a minute. The rows behind it are published meanwhile: a held row holds back nothing else.

Holds live in the relay's memory: a restarted relay tries a refused row again at once, and its
refusals, kept in the row, still count towards parking it.
"""

import threading
import time
from collections.abc import Callable, Iterable


class Holds:
    """Refused rows by position, each with the moment it may be tried again."""

    def __init__(
        self,
        first_delay: float = 2.0,
        cap: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.first_delay = first_delay
        self.cap = cap
        self._clock = clock
        self._until: dict[int, float] = {}
        self._lock = threading.Lock()  # the relay marks batches on a helper thread

    def hold(self, position: int, refusals_before: int) -> float:
        """Hold a row refused once more; the delay before it is tried again."""
        delay = min(self.cap, self.first_delay * float(2**refusals_before))
        if delay > 0:
            with self._lock:
                self._until[position] = self._clock() + delay
        return delay

    def release(self, positions: Iterable[int]) -> None:
        """Forget rows that were published or parked."""
        with self._lock:
            for position in positions:
                self._until.pop(position, None)

    def held(self) -> list[int]:
        """The positions not to claim now (rows whose delay has passed are released)."""
        now = self._clock()
        with self._lock:
            for position in [p for p, until in self._until.items() if until <= now]:
                del self._until[position]
            return list(self._until)

    def next_due(self) -> float | None:
        """Seconds until the first held row may be tried again; None when nothing is held."""
        with self._lock:
            if not self._until:
                return None
            return max(0.0, min(self._until.values()) - self._clock())
