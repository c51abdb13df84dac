"""An open-loop HTTP load generator: signups start on a fixed schedule, whatever came back.

Request ``i`` of a step is started at ``t0 + i / rate`` on an asyncio loop without waiting for
earlier ones, so a slow server meets the offered rate instead of throttling it (closed-loop
generators hide queueing delay). ``lag`` records how late the generator itself started each
request, so an overloaded generator shows up instead of being mistaken for the server.

The client is a few dozen lines of HTTP/1.1 over ``asyncio.Protocol`` (``http11``): kept
connections (one request at a time on each, a new one opened only when every open one is busy),
the request bytes written once, the response parsed by ``Content-Length``. It costs a fraction of
the ~1.5 ms of CPU per request that ``httpx.AsyncClient`` took here, so at the top rates the
generator does not take the cores the platform is measured on. Its own CPU (the time of the
thread running the loop) is measured for every run (``LoadRun.cpu_seconds``) and reported apart.
"""

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import cpu
import orjson
from http11 import ConnectionPool, HttpError

PLANS = ("free", "pro", "team")
GENERATOR_GROUP = "load generator (asyncio HTTP/1.1, kept connections)"
READS_GROUP = "bench (reads, /proc snapshots)"
MAX_CONNECTIONS = 256
TIMEOUT = 30.0


@dataclass(frozen=True)
class Outcome:
    """One signup request: when it was due and started, how long it took, what came back."""

    due: float
    lag: float
    latency: float
    status: int
    user_id: str | None
    failure: str | None  # "HTTP 503", "ReadTimeout", ... (None when it succeeded)

    @property
    def ok(self) -> bool:
        return self.status == 201 and self.user_id is not None


@dataclass(frozen=True)
class LoadRun:
    tag: str
    rate: float
    duration: float
    outcomes: tuple[Outcome, ...]
    wall_offset: float  # time.time() - time.perf_counter() during the run
    cpu_seconds: float = 0.0  # the generator's own CPU (its event loop's thread)

    @property
    def ok(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.ok]

    @property
    def errors(self) -> int:
        return len(self.outcomes) - len(self.ok)

    @property
    def failures(self) -> dict[str, int]:
        """How many requests failed, per kind of failure."""
        return dict(Counter(o.failure or "no user id" for o in self.outcomes if not o.ok))

    @property
    def user_ids(self) -> list[str]:
        return [outcome.user_id for outcome in self.ok if outcome.user_id is not None]

    @property
    def span(self) -> float:
        """From the first request's start to the last response (seconds)."""
        return max(o.due + o.lag + o.latency for o in self.outcomes) - min(
            o.due + o.lag for o in self.outcomes
        )

    @property
    def achieved_rate(self) -> float:
        return len(self.ok) / self.span if self.outcomes else 0.0


def signup_body(tag: str, index: int) -> dict[str, Any]:
    """Every plan, 2 in 3 with a phone number, independent of each other."""
    body: dict[str, Any] = {
        "email": f"{tag}-{index}@bench.example.com",
        "full_name": f"Bench User {index}",
        "plan": PLANS[(index // 3) % 3],
    }
    if index % 3:
        body["phone"] = f"+1555{index % 10_000_000:07d}"
    return body


def request_bytes(host: str, path: str, body: dict[str, Any]) -> bytes:
    payload = orjson.dumps(body)
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\n\r\n"
    ).encode() + payload


def outcome(due: float, started: float, status: int, body: bytes) -> Outcome:
    """One answered request; the user id comes from a 201's JSON body."""
    latency = time.perf_counter() - started
    user_id = None
    if status == 201:
        try:
            found = orjson.loads(body).get("user_id")
        except (orjson.JSONDecodeError, AttributeError):
            found = None
        user_id = found if isinstance(found, str) else None
    failure = None if status == 201 else f"HTTP {status}"
    return Outcome(due, started - due, latency, status, user_id, failure)


async def _post(pool: ConnectionPool, raw: bytes, due: float) -> Outcome:
    started = time.perf_counter()
    try:
        status, body = await pool.request(raw, TIMEOUT)
    except (HttpError, OSError, TimeoutError) as exc:
        elapsed = time.perf_counter() - started
        return Outcome(due, started - due, elapsed, 0, None, type(exc).__name__)
    return outcome(due, started, status, body)


async def _offer(url: str, tag: str, rate: float, duration: float) -> tuple[Outcome, ...]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path or "/"
    pool = ConnectionPool(host, port, MAX_CONNECTIONS)
    try:
        tasks: list[asyncio.Task[Outcome]] = []
        start = time.perf_counter() + 0.05
        for index in range(round(rate * duration)):
            raw = request_bytes(f"{host}:{port}", path, signup_body(tag, index))
            due = start + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_post(pool, raw, due)))
        return tuple(await asyncio.gather(*tasks))
    finally:
        pool.close()


def offer(url: str, tag: str, rate: float, duration: float) -> LoadRun:
    """POST ``rate`` signups a second for ``duration`` seconds; returns once all have answered."""
    wall_offset = time.time() - time.perf_counter()
    cpu_before = time.thread_time()
    outcomes = asyncio.run(_offer(url, tag, rate, duration))
    cpu_seconds = time.thread_time() - cpu_before
    return LoadRun(tag, rate, duration, outcomes, wall_offset, cpu_seconds)


def scheduled_end(run: LoadRun) -> float:
    """``perf_counter`` time at which the last request of the run was due."""
    return max(outcome.due for outcome in run.outcomes)


def scheduled_end_utc(run: LoadRun) -> datetime:
    """The same moment on the wall clock (the one the services stamp their rows with)."""
    return datetime.fromtimestamp(scheduled_end(run) + run.wall_offset, UTC)


def split_bench_share(
    per_item: dict[str, float],
    kinds: dict[str, str],
    processes: dict[str, int],
    generator_ms: float,
) -> tuple[dict[str, float], dict[str, str], dict[str, int]]:
    """The benchmark process's share (``cpu.BENCH_GROUP``) split in two: the load generator's
    own ``generator_ms`` (never more than the process used) and the rest, its reads."""
    if cpu.BENCH_GROUP not in per_item:
        return per_item, kinds, processes
    per_item, kinds, processes = dict(per_item), dict(kinds), dict(processes)
    whole = per_item.pop(cpu.BENCH_GROUP)
    kinds.pop(cpu.BENCH_GROUP, None)
    processes.pop(cpu.BENCH_GROUP, None)
    per_item[GENERATOR_GROUP] = min(generator_ms, whole)
    per_item[READS_GROUP] = round(max(whole - generator_ms, 0.0), 2)
    for name in (GENERATOR_GROUP, READS_GROUP):
        kinds[name], processes[name] = cpu.BENCH, 1
    return per_item, kinds, processes
