"""Record SIGINT/SIGTERM so the main thread can stop the sinks cleanly."""

import signal
import time
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any, Self

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
POLL_SECONDS = 0.1

Handler = Callable[[int, FrameType | None], Any] | int | None


class StopSignals:
    """While active, stop signals are only recorded: taking locks in a handler can deadlock."""

    def __init__(self) -> None:
        self.received: list[signal.Signals] = []
        self._previous: dict[signal.Signals, Handler] = {}

    def _record(self, signum: int, frame: FrameType | None) -> None:
        self.received.append(signal.Signals(signum))

    def __enter__(self) -> Self:
        self._previous = {signum: signal.signal(signum, self._record) for signum in STOP_SIGNALS}
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def wait(self) -> signal.Signals:
        while not self.received:
            time.sleep(POLL_SECONDS)
        return self.received[0]
