"""The wake-up socket that lets select()-based loops stop without polling."""

import select
import threading

from signup_shared.wakeup import Wakeup, wake_when_set


def readable(wakeup: Wakeup, timeout: float = 0.0) -> bool:
    ready, _, _ = select.select([wakeup.fileno()], [], [], timeout)
    return bool(ready)


def test_a_wakeup_is_readable_after_wake_until_cleared() -> None:
    wakeup = Wakeup()
    try:
        assert not readable(wakeup)
        wakeup.wake()
        wakeup.wake()
        assert readable(wakeup)
        wakeup.clear()
        assert not readable(wakeup)
    finally:
        wakeup.close()


def test_setting_the_stop_event_wakes_the_selecting_thread() -> None:
    wakeup, stop = Wakeup(), threading.Event()
    try:
        watcher = wake_when_set(stop, wakeup)
        assert not readable(wakeup)
        stop.set()
        assert readable(wakeup, timeout=2.0)
        watcher.join(timeout=2.0)
        assert not watcher.is_alive()
    finally:
        wakeup.close()


def test_waking_a_closed_wakeup_is_harmless() -> None:
    wakeup = Wakeup()
    wakeup.close()
    wakeup.wake()
    wakeup.clear()
