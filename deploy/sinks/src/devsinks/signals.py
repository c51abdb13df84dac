"""Block the main thread until SIGINT or SIGTERM arrives."""

import signal
import time
from types import FrameType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
POLL_SECONDS = 0.1


def wait_for_stop_signal() -> signal.Signals:
    """The handler only records the signal: taking locks inside a handler can deadlock."""
    received: list[signal.Signals] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        received.append(signal.Signals(signum))

    previous = {signum: signal.signal(signum, on_signal) for signum in STOP_SIGNALS}
    try:
        while not received:
            time.sleep(POLL_SECONDS)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return received[0]
