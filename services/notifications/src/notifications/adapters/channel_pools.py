"""Delivery lanes: one small thread pool per channel, so a slow provider holds back only its own.

A slow or dead SMTP server fills the email lane and nothing else: SMS keep their own threads.
Work is keyed (a notification id): a key already queued or running is not started twice, and
whoever asks for it again waits on the same future. ``run`` does not wait on a lane whose
workers were all taken before it was called (a stuck provider, or one that cannot keep up): the
consumer that asked goes on with its next messages instead of paying the wait on every one of
them, and what it did not wait for is retried later.
"""

import threading
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
R = TypeVar("R")


class ChannelPools(Generic[K, R]):
    """``run`` each job on its channel's pool and wait for the results up to a time limit."""

    def __init__(self, channels: Sequence[str], workers_per_channel: int) -> None:
        self._pools = {
            channel: ThreadPoolExecutor(
                max_workers=max(1, workers_per_channel), thread_name_prefix=f"deliver-{channel}"
            )
            for channel in channels
        }
        self._lock = threading.RLock()  # a job done at once calls back under the lock
        self._running: dict[K, Future[R]] = {}
        self._busy = dict.fromkeys(self._pools, 0)  # jobs queued or running per channel

    @property
    def workers_per_channel(self) -> Mapping[str, int]:
        return {channel: pool._max_workers for channel, pool in self._pools.items()}

    def submit(self, key: K, channel: str, job: Callable[[], R]) -> "Future[R]":
        """Start ``job`` on ``channel``'s pool unless ``key`` is queued or running already."""
        with self._lock:
            future = self._running.get(key)
            if future is None:
                self._busy[channel] += 1
                future = self._pools[channel].submit(job)
                self._running[key] = future
                future.add_done_callback(lambda _done: self._forget(key, channel))
        return future

    def saturated(self) -> set[str]:
        """The channels whose workers all have a job (running, or queued behind them)."""
        with self._lock:
            return {
                channel
                for channel, pool in self._pools.items()
                if self._busy[channel] >= pool._max_workers
            }

    def run(self, jobs: Sequence[tuple[K, str, Callable[[], R]]], wait: float | None) -> dict[K, R]:
        """Run every job on its channel's pool; the results of those done within ``wait``
        seconds (None: all). A job not done by then goes on running; its key is missing. With
        a time limit, a channel saturated before the call is not waited on."""
        saturated = self.saturated() if wait is not None else set()
        futures = {key: self.submit(key, channel, job) for key, channel, job in jobs}
        awaited = [futures[key] for key, channel, _ in jobs if channel not in saturated]
        if awaited:
            wait_for(awaited, timeout=wait)
        return {
            key: future.result()
            for key, future in futures.items()
            if future.done() and not future.cancelled()
        }

    def _forget(self, key: K, channel: str) -> None:
        with self._lock:
            self._running.pop(key, None)
            self._busy[channel] -= 1

    def shutdown(self, wait_seconds: float = 60.0) -> None:
        """Start nothing new; let running jobs finish (each ends within its own deadline)."""
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        until = time.monotonic() + wait_seconds
        for pool in self._pools.values():
            for thread in list(pool._threads):
                thread.join(max(0.0, until - time.monotonic()))
