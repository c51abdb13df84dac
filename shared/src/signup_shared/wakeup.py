"""Waking a thread that blocks in ``select()``: no polling to notice that it should stop.

A runtime that waits on sockets (the relay's ``LISTEN`` connection, a consumer's broker socket,
a health server's listening socket) adds ``Wakeup.fileno()`` to what it selects on. ``wake()``
makes that readable from any thread; ``wake_when_set`` does it when a stop event is set (the
event of ``stop_on_signals`` is set by a signal handler, which interrupts the ``select`` but
would not end it: Python retries an interrupted ``select`` with the time left).
"""

import contextlib
import socket
import threading


class Wakeup:
    """A socket pair: ``wake()`` makes ``fileno()`` readable until ``clear()``."""

    def __init__(self) -> None:
        self._reader, self._writer = socket.socketpair()
        self._reader.setblocking(False)
        self._writer.setblocking(False)

    def fileno(self) -> int:
        return self._reader.fileno()

    def wake(self) -> None:
        """Safe from any thread; a wake-up already pending (a full buffer) is enough."""
        with contextlib.suppress(OSError):
            self._writer.send(b"\0")

    def clear(self) -> None:
        """Forget the wake-ups so far (call once woken, before acting on the reason)."""
        with contextlib.suppress(OSError):
            while len(self._reader.recv(4096)) == 4096:  # less: nothing more is waiting
                pass

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


def wake_when_set(stop: threading.Event, wakeup: Wakeup) -> threading.Thread:
    """Wake ``wakeup`` once ``stop`` is set: a daemon thread blocked on the event (no CPU)."""

    def watch() -> None:
        stop.wait()
        wakeup.wake()

    thread = threading.Thread(target=watch, name="stop-watch", daemon=True)
    thread.start()
    return thread
