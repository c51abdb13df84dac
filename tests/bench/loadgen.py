"""An open-loop HTTP load generator: signups start on a fixed schedule, whatever came back.

Request ``i`` of a step is started at ``t0 + i / rate`` on an asyncio loop (``httpx.AsyncClient``)
without waiting for earlier ones, so a slow server meets the offered rate instead of throttling
it (closed-loop generators hide queueing delay). ``lag`` records how late the generator itself
started each request, so an overloaded generator shows up instead of being mistaken for the
server.

Requests are spread round-robin over several small ``AsyncClient`` pools: httpcore's pool scans
every connection and every waiting request on each request, so a single pool of hundreds of
connections costs the generator more CPU per request the busier it gets, and collapses (here at
~120 requests/s against a trivial server). Eight pools of 16 cost ~1.5 ms of CPU per request.
"""

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

PLANS = ("free", "pro", "team")
CLIENTS = 8
CONNECTIONS_PER_CLIENT = 16
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


async def _post(client: httpx.AsyncClient, url: str, body: dict[str, Any], due: float) -> Outcome:
    started = time.perf_counter()
    try:
        response = await client.post(url, json=body)
    except httpx.HTTPError as exc:
        elapsed = time.perf_counter() - started
        return Outcome(due, started - due, elapsed, 0, None, type(exc).__name__)
    latency = time.perf_counter() - started
    created = response.status_code == 201
    user_id = response.json().get("user_id") if created else None
    failure = None if created else f"HTTP {response.status_code}"
    return Outcome(due, started - due, latency, response.status_code, user_id, failure)


async def _offer(url: str, tag: str, rate: float, duration: float) -> tuple[Outcome, ...]:
    limits = httpx.Limits(
        max_connections=CONNECTIONS_PER_CLIENT, max_keepalive_connections=CONNECTIONS_PER_CLIENT
    )
    async with contextlib.AsyncExitStack() as clients:
        pool = [
            await clients.enter_async_context(httpx.AsyncClient(limits=limits, timeout=TIMEOUT))
            for _ in range(CLIENTS)
        ]
        tasks: list[asyncio.Task[Outcome]] = []
        start = time.perf_counter() + 0.05
        for index in range(round(rate * duration)):
            due = start + index / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            client = pool[index % CLIENTS]
            tasks.append(asyncio.create_task(_post(client, url, signup_body(tag, index), due)))
        return tuple(await asyncio.gather(*tasks))


def offer(url: str, tag: str, rate: float, duration: float) -> LoadRun:
    """POST ``rate`` signups a second for ``duration`` seconds; returns once all have answered."""
    wall_offset = time.time() - time.perf_counter()
    return LoadRun(tag, rate, duration, asyncio.run(_offer(url, tag, rate, duration)), wall_offset)


def scheduled_end(run: LoadRun) -> float:
    """``perf_counter`` time at which the last request of the run was due."""
    return max(outcome.due for outcome in run.outcomes)


def scheduled_end_utc(run: LoadRun) -> datetime:
    """The same moment on the wall clock (the one the services stamp their rows with)."""
    return datetime.fromtimestamp(scheduled_end(run) + run.wall_offset, UTC)
