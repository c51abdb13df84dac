"""The whole system (``platform_harness.stack.Stack``, production logging) under open-loop load.

One private stack (its own databases, vhost, ports) runs, in this order:

1. a warm-up (60 signups at 20/s);
2. the idle burn (``idle``): once every effect is committed and a few seconds more have passed,
   CPU per second of every process over 30 s of no traffic; then a py-spy profile and a dump of
   every platform process while it stays idle;
3. fixed-rate phases, each followed by a wait until every effect of its signups is committed
   (``effects``: email sent, SMS sent when owed, space, stats, subscription active; and every
   space counted by stats); CPU per signup per process and end-to-end latency in each:
   - 5/s x 150 and 20/s x 600 (30 s each): the rates a signup platform mostly runs at;
   - 50/s x 500 (10 s, so also judged as a step of part 5);
   - 100/s x 1000, with a py-spy profile of the process that is busiest 30% into it (10 s, also
     a step);
4. a stats backlog drain: the stats consumer is stopped, N ``UserSignedUp`` events are put
   straight into its queue, it is started again; events/s from its first inbox row to the last;
5. the maximum sustained rate: 10 s steps of rising offered rate, continuing above the highest
   fixed phase that passed (``judge.ladder_from``), until one fails. A step passes with >= 95% of
   the offered rate achieved, no failed request, and every effect committed within 5 s after its
   last request was due (judged by the rows' own timestamps, not by when polling noticed).

Optionally a second stack with N processes per consuming service repeats the warm-up and the
100/s phase, to show what scaling out does.

CPU (``cpu``): a /proc snapshot right before a phase's first request and one as soon as all of
its effects are committed (polled every 0.25 s, up to ``SETTLE_TIMEOUT``); divided by the signups
accepted. Before each phase the system is let go quiet (earlier effects all done). The load
generator's own CPU (``LoadRun.cpu_seconds``) is split out of the benchmark process's share.
"""

import dataclasses
import inspect
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cpu
import idle
from effects import STATS_CONSUMER, EffectReader, SignupTimes
from idle import IdleFigures
from judge import ladder_from
from loadgen import LoadRun, offer, scheduled_end
from pyspy import BusiestProfiler
from resources import publish_all, ready_messages, unique, wait_for
from system_figures import (
    CpuFigures,
    DrainFigures,
    Phase,
    PhaseFigures,
    Plan,
    SystemFigures,
    phase_figures,
    phase_line,
)

from platform_harness.stack import AMQP_HOST, Stack
from signup_shared.messaging.wire import OutgoingMessage
from signup_shared.testing import user_signed_up

PRODUCTION_ENV = {"LOG_FORMAT": "json", "LOG_LEVEL": "INFO"}
SETTLE_TIMEOUT = 90.0
POLL_INTERVAL = 0.25
POLL_GRACE = 0.5
QUIET_TIMEOUT = 90.0
STATS_ROLE = "stats"
DRAIN_TIMEOUT = 120.0

Log = Callable[[str], None]


# the stack -------------------------------------------------------------------------------------
def new_stack(processes: int) -> Stack:
    """A private stack in the production configuration, with ``processes`` per consuming role
    when the harness supports it (``Stack(consumer_processes=N)``)."""
    kwargs: dict[str, Any] = {"name": unique("bench"), "extra_env": dict(PRODUCTION_ENV)}
    if processes > 1:
        if "consumer_processes" not in inspect.signature(Stack).parameters:
            raise RuntimeError("this Stack cannot run several processes per consumer")
        kwargs["consumer_processes"] = processes
    return Stack(**kwargs)


class Measure:
    """Load, settle and CPU snapshots against one running stack."""

    def __init__(self, stack: Stack, reader: EffectReader, folder: Path, log: Log) -> None:
        self.stack, self.reader, self.folder, self.log = stack, reader, folder, log
        self.url = stack.url("accounts", "/signups")
        self.broker = cpu.listening_pid(int(AMQP_HOST.rsplit(":", 1)[1]))

    def context(self) -> cpu.Context:
        return cpu.Context(
            named={process.pid: name for name, process in self.stack.processes.items()},
            database_prefix=self.stack.name,
            bench_pids=frozenset({os.getpid()}),
            bench_backends=self.reader.bench_backends(),
            broker_pid=self.broker,
        )

    def platform_pids(self) -> dict[str, int]:
        context = self.context()
        return {
            name: process.pid
            for name, process in self.stack.processes.items()
            if cpu.kind_of_stack_process(name, "") == cpu.PLATFORM
            and context.named.get(process.pid) == name
        }

    def settle(self, signups: dict[uuid.UUID, SignupTimes], deadline: float) -> bool:
        """Poll until every effect is committed (True) or ``deadline`` (perf_counter) passes."""
        while True:
            if self.reader.missing(signups) == 0:
                return True
            if time.perf_counter() > deadline:
                return False
            time.sleep(POLL_INTERVAL)

    def quiet(self) -> None:
        """Wait (bounded) until earlier load is fully handled: every effect of every signup so
        far committed, so that a phase's CPU window holds only its own work."""
        deadline = time.monotonic() + QUIET_TIMEOUT
        while self.reader.backlog():
            if time.monotonic() > deadline:
                self.log("  (the system did not go quiet in time; measuring anyway)")
                return
            time.sleep(POLL_INTERVAL)

    def signed_up(self, run: LoadRun) -> dict[uuid.UUID, SignupTimes]:
        signups = self.reader.signups(run.user_ids)
        if len(signups) != len(run.user_ids):
            raise RuntimeError(f"{len(run.user_ids) - len(signups)} accepted signups missing")
        return signups

    def phase(self, tag: str, phase: Phase, deadline: float = SETTLE_TIMEOUT) -> PhaseFigures:
        """Offer ``phase``; CPU is read when its effects are all in (or the deadline passed)."""
        self.quiet()
        context = self.context()
        profiler = None
        if phase.profile:
            # picked after 30% of the phase, once the consumers have work queued up too
            profiler = BusiestProfiler(
                self.platform_pids(),
                self.folder,
                seconds=max(phase.seconds, 3.0),
                pick_after=0.3 * phase.seconds,
            ).start()
        before = cpu.snapshot()
        run = offer(self.url, tag, phase.rate, phase.seconds)
        signups = self.signed_up(run)
        complete = self.settle(signups, scheduled_end(run) + deadline)
        after = cpu.snapshot()
        profile = profiler.join() if profiler is not None else None
        if not complete:
            self.settle(signups, time.perf_counter() + SETTLE_TIMEOUT)
        used = cpu.usage(before, after, context)
        cpu_figures = (
            CpuFigures.of(used, len(run.ok), complete, run.cpu_seconds) if phase.cpu else None
        )
        figures = phase_figures(run, self.reader.times(signups), cpu_figures, profile)
        self.log(phase_line(tag, figures))
        return figures

    def step(self, rate: int, seconds: float) -> PhaseFigures:
        """One step of the ladder: the effects get 5 s after the end (+ a poll's grace)."""
        return self.phase(f"step{rate}", Phase(rate, round(rate * seconds)), deadline=5.5)

    def idle(self, plan: "Plan") -> IdleFigures:
        """The idle burn once everything earlier is done; then idle profiles of every process."""
        self.quiet()
        time.sleep(plan.idle_settle_seconds)
        figures = idle.measure(self.context, plan.idle_seconds)
        counted = [
            (k, v)
            for k, v in figures.per_process_ms.items()
            if figures.kinds.get(k, cpu.PLATFORM) in cpu.COUNTED
        ]
        self.log(
            f"  idle: {figures.total_ms:.1f} ms of CPU per second (platform + PostgreSQL + "
            f"RabbitMQ) over {figures.seconds:.0f} s; "
            + ", ".join(f"{k} {v:.1f}" for k, v in counted[:6])
        )
        if plan.idle_profile_seconds > 0:
            profiles = idle.profile_idle(
                self.platform_pids(), self.folder, plan.idle_profile_seconds
            )
            figures = dataclasses.replace(figures, profiles=profiles)
        return figures

    # the stats backlog drain --------------------------------------------------------------------
    def drain(self, events: int) -> DrainFigures:
        stats = {n: p for n, p in self.stack.processes.items() if cpu.role_of(n) == STATS_ROLE}
        self.quiet()
        for name in stats:
            self.stack.signal(name, signal.SIGTERM)
        url = self.stack.amqp_url
        messages = [
            dataclasses.replace(
                OutgoingMessage.from_envelope(user_signed_up("accounts")),
                exchange="",
                routing_key=STATS_CONSUMER,
            )
            for _ in range(events)
        ]
        try:
            publish_all(url, messages)
            wait_for(lambda: ready_messages(url, STATS_CONSUMER) >= events, 30, 0.1, "backlog")
        finally:
            for name in stats:
                self.stack.restart(name)
        ids = [uuid.UUID(m.message_id) for m in messages]
        pids = [self.stack.processes[name].pid for name in stats]
        started = self._counted_since(ids, DRAIN_TIMEOUT)
        ticks_at_start = cpu.ticks_of(pids)
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while self.reader.counted(ids) < events:
            if time.monotonic() > deadline:
                raise TimeoutError(f"stats did not drain {events} events")
            time.sleep(0.05)
        finished = time.time()
        ticks = cpu.ticks_of(pids)
        used = sum(ticks[p] - ticks_at_start.get(p, 0) for p in ticks) / cpu.TICKS_PER_SECOND
        seconds = finished - started
        figures = DrainFigures(
            events=events,
            seconds=round(seconds, 2),
            rate=round(events / seconds, 1),
            stats_cpu_ms_per_event=round(1000 * used / events, 3) if ticks else None,
        )
        self.log(
            f"  stats backlog drain: {events:,} events in {figures.seconds:.2f} s = "
            f"{figures.rate:,.0f}/s"
        )
        return figures

    def _counted_since(self, ids: list[uuid.UUID], timeout: float) -> float:
        """Wall time of the first inbox row for ``ids`` (when handling began)."""
        first: list[float] = []

        def begun() -> bool:
            found = self.reader.first_counted(ids)
            if found is not None:
                first.append(found)
            return found is not None

        wait_for(begun, timeout, 0.02, "the stats consumer's first event")
        return first[0]


# running ---------------------------------------------------------------------------------------
def measure_system(
    measure: Measure, plan: Plan, log: Log
) -> tuple[list[PhaseFigures], list[PhaseFigures], DrainFigures | None, IdleFigures | None]:
    offer(measure.url, "warmup", plan.warm_up.rate, plan.warm_up.seconds)
    quiet = None
    if plan.idle_seconds > 0:
        try:
            quiet = measure.idle(plan)
        except Exception as exc:  # the other figures stand without it
            log(f"  idle measurement failed, left out: {exc!r}")
    phases = [measure.phase(f"phase{p.rate}", p) for p in plan.phases]
    drain = None
    if plan.drain_events:
        try:
            drain = measure.drain(plan.drain_events)
        except Exception as exc:  # the other figures stand without it
            log(f"  stats backlog drain failed, left out: {exc!r}")
    steps = [p for p in phases if abs(p.seconds - plan.step_seconds) < 0.01]
    rungs = ladder_from(plan.step_rates, {s.rate: s.passed for s in steps})
    for rate in rungs:
        step = measure.step(rate, plan.step_seconds)
        steps.append(step)
        if not step.passed:
            break
    log(f"  steps: {', '.join(f'{s.rate}/s ' + ('pass' if s.passed else 'FAIL') for s in steps)}")
    return phases, sorted(steps, key=lambda s: s.rate), drain, quiet


def with_stack(processes: int, folder: Path, log: Log, body: Callable[[Measure], Any]) -> Any:
    """Start a private stack, run ``body``, always tear it down (logs kept on failure)."""
    stack = new_stack(processes)
    try:
        log(f"  starting a stack ({processes} process(es) per consuming service) ...")
        stack.start()
        reader = EffectReader(stack)
        try:
            result = body(Measure(stack, reader, folder, log))
        finally:
            reader.close()
    except BaseException:
        stack.close(keep_logs_in=folder / "logs")
        raise
    stack.close()
    return result


def run(plan: Plan, folder: Path, log: Log = print) -> SystemFigures:
    phases, steps, drain, quiet = with_stack(1, folder, log, lambda m: measure_system(m, plan, log))
    scaled: list[PhaseFigures] = []
    if plan.consumer_processes > 1:
        profiled = next((p for p in plan.phases if p.profile), plan.phases[-1])
        repeat = dataclasses.replace(profiled, profile=False)

        def scale_out(measure: Measure) -> list[PhaseFigures]:
            offer(measure.url, "warmup", plan.warm_up.rate, plan.warm_up.seconds)
            return [measure.phase(f"phase{repeat.rate}x{plan.consumer_processes}", repeat)]

        try:
            scaled = with_stack(plan.consumer_processes, folder, log, scale_out)
        except Exception as exc:  # the main stack's figures stand without it
            log(f"  scale-out run failed, left out: {exc!r}")
    return SystemFigures(
        processes_per_consumer=1,
        phases=tuple(phases),
        steps=tuple(steps),
        drain=drain,
        idle=quiet,
        scaled=tuple(scaled),
        scaled_processes=plan.consumer_processes if scaled else 1,
    )
