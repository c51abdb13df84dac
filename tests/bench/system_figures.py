"""What the system benchmark runs and what it measured: the plan (phases, steps, the idle
window), the figures of each phase and of the whole run, and the pure functions that compute
them from a load run and the effects' timestamps (``e2e_bench`` runs the stack and fills them in).
"""

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import cpu
from effects import SignupTimes
from figures import distribution, percentile
from idle import IdleFigures
from judge import step_passed
from loadgen import LoadRun, scheduled_end_utc, split_bench_share
from pyspy import Profile

STEP_RATES = (20, 30, 40, 60, 80, 125, 150, 175, 200, 250, 300, 400, 500, 600, 800)
DETAILED_EFFECTS = ("email_recorded", "email_sent", "sms_sent", "space", "stats", "active")


@dataclass(frozen=True)
class Phase:
    rate: int
    signups: int
    cpu: bool = False
    latency: bool = False
    profile: bool = False

    @property
    def seconds(self) -> float:
        return self.signups / self.rate


@dataclass(frozen=True)
class Plan:
    phases: tuple[Phase, ...] = (
        Phase(5, 150, cpu=True, latency=True),
        Phase(20, 600, cpu=True, latency=True),
        Phase(50, 500, cpu=True, latency=True),
        Phase(100, 1000, cpu=True, latency=True, profile=True),
    )
    warm_up: Phase = Phase(20, 60)
    idle_seconds: float = 30.0  # 0: no idle measurement
    idle_settle_seconds: float = 5.0  # after the system went quiet, before the idle window
    idle_profile_seconds: float = 15.0  # 0: no idle profiles
    step_seconds: float = 10.0
    step_rates: tuple[int, ...] = STEP_RATES
    drain_events: int = 5000
    consumer_processes: int = 2  # for the scale-out repeat of the profiled phase; <= 1: none

    @classmethod
    def quick(cls, consumer_processes: int = 1) -> "Plan":
        """For iterating on the benchmark itself: every phase a few seconds, few steps."""
        return cls(
            phases=(
                Phase(5, 25, cpu=True, latency=True),
                Phase(20, 100, cpu=True, latency=True),
                Phase(50, 150, cpu=True, latency=True),
                Phase(100, 300, cpu=True, latency=True, profile=True),
            ),
            warm_up=Phase(20, 20),
            idle_seconds=10.0,
            idle_settle_seconds=2.0,
            idle_profile_seconds=5.0,
            step_seconds=3.0,
            step_rates=(20, 40, 150, 300),
            drain_events=1000,
            consumer_processes=consumer_processes,
        )

    @classmethod
    def low(cls) -> "Plan":
        """Both low ends only, at full length (idle, 5/s, 20/s): the before/after of the idle
        and per-message cuts, in about 3 minutes; no drain, steps or scale-out."""
        return cls(
            phases=(Phase(5, 150, cpu=True, latency=True), Phase(20, 600, cpu=True, latency=True)),
            step_rates=(),
            drain_events=0,
            consumer_processes=1,
        )


# figures ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CpuFigures:
    """CPU per signup in one phase: per group (role), the counted total, and context."""

    per_signup_ms: dict[str, float]  # group -> ms
    kinds: dict[str, str]  # group -> cpu kind (platform, postgres, rabbitmq, sink, ...)
    processes: dict[str, int]  # group -> how many processes did work
    total_ms: float  # platform + PostgreSQL backends + RabbitMQ
    percent_of_core: dict[str, float]
    window_s: float
    complete: bool  # False: some effect was still missing when CPU was read

    @classmethod
    def of(
        cls, used: cpu.Usage, signups: int, complete: bool, generator_seconds: float = 0.0
    ) -> "CpuFigures":
        """``generator_seconds`` of the benchmark process's CPU were the load generator's: they
        are shown as a group of their own, the rest as the benchmark's reads."""
        per_signup, kinds, processes = split_bench_share(
            used.per_item_ms(signups),
            {g.name: g.kind for g in used.groups},
            {g.name: g.processes for g in used.groups},
            round(1000 * generator_seconds / max(signups, 1), 2),
        )
        return cls(
            per_signup_ms=per_signup,
            kinds=kinds,
            processes=processes,
            total_ms=used.total_per_item_ms(signups),
            percent_of_core=used.percent(),
            window_s=round(used.seconds, 2),
            complete=complete,
        )


@dataclass(frozen=True)
class PhaseFigures:
    rate: int
    seconds: float
    requests: int
    signups: int
    errors: int
    failures: dict[str, int]
    achieved_rate: float
    http_ms: dict[str, float]
    generator_lag_p99_ms: float
    generator_cpu_ms_per_request: float
    end_to_end_ms: dict[str, float]
    effects_ms: dict[str, dict[str, float]]
    incomplete: int
    done_after_s: float | None  # last effect's commit, from the moment the last request was due
    cpu: CpuFigures | None = None
    profile: dict[str, Any] | None = None

    @property
    def passed(self) -> bool:
        return step_passed(self.rate, self.achieved_rate, self.errors, self.done_after_s)


@dataclass(frozen=True)
class DrainFigures:
    events: int
    seconds: float
    rate: float  # events/s from the first event's handling to the last one seen done
    stats_cpu_ms_per_event: float | None


@dataclass(frozen=True)
class SystemFigures:
    processes_per_consumer: int
    phases: tuple[PhaseFigures, ...]
    steps: tuple[PhaseFigures, ...]  # every 10 s step run, the fixed 50 and 100/s ones included
    drain: DrainFigures | None
    idle: IdleFigures | None = None
    scaled: tuple[PhaseFigures, ...] = field(default=())  # the profiled phase, N processes
    scaled_processes: int = 1

    @property
    def max_sustained_rate(self) -> int | None:
        passed = [s.rate for s in self.steps if s.passed]
        return max(passed) if passed else None

    def phase(self, rate: int) -> PhaseFigures | None:
        """The fixed-rate phase at ``rate`` signups/s."""
        return next((p for p in self.phases if p.rate == rate), None)


# pure bits --------------------------------------------------------------------------------------
def to_ms(values: list[float]) -> list[float]:
    return [1000 * value for value in values]


def end_to_end(times: list[SignupTimes]) -> list[float]:
    return [t.end_to_end for t in times if t.end_to_end is not None]


def per_effect(times: list[SignupTimes]) -> dict[str, dict[str, float]]:
    figures = {}
    for effect in DETAILED_EFFECTS:
        delays = [d for t in times if (d := t.after(effect)) is not None]
        figures[effect] = {k: v for k, v in distribution(delays).items() if k in ("p50", "p99")}
    return figures


def done_after(run: LoadRun, times: list[SignupTimes]) -> float | None:
    """Seconds from the run's last due request to the commit of its last effect (None while
    some effect is missing), from the services' own timestamps rather than from polling."""
    moments = [t.last_effect for t in times]
    if not moments or None in moments:
        return None
    last: datetime = max(moment for moment in moments if moment is not None)
    return round((last - scheduled_end_utc(run)).total_seconds(), 2)


def phase_figures(
    run: LoadRun,
    times: list[SignupTimes],
    cpu_figures: CpuFigures | None,
    profile: Profile | None,
) -> PhaseFigures:
    return PhaseFigures(
        rate=round(run.rate),
        seconds=run.duration,
        requests=len(run.outcomes),
        signups=len(run.ok),
        errors=run.errors,
        failures=run.failures,
        achieved_rate=round(run.achieved_rate, 1),
        http_ms=distribution(to_ms([o.latency for o in run.ok])),
        generator_lag_p99_ms=round(percentile(to_ms([o.lag for o in run.outcomes]), 99), 1),
        generator_cpu_ms_per_request=round(1000 * run.cpu_seconds / max(len(run.outcomes), 1), 3),
        end_to_end_ms=distribution(end_to_end(times)),
        effects_ms=per_effect(times),
        incomplete=sum(1 for t in times if not t.complete),
        done_after_s=done_after(run, times),
        cpu=cpu_figures,
        profile=None
        if profile is None
        else {
            k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(profile).items()
        },
    )


def phase_line(tag: str, figures: PhaseFigures) -> str:
    line = (
        f"  {tag}: {figures.signups} signups at {figures.rate}/s (achieved "
        f"{figures.achieved_rate:.0f}/s, {figures.errors} errors), e2e p50 "
        f"{figures.end_to_end_ms['p50']} ms p99 {figures.end_to_end_ms['p99']} ms, done "
        f"{figures.done_after_s} s after the end: {'pass' if figures.passed else 'FAIL'}"
    )
    if figures.cpu is not None:
        line += f"; CPU {figures.cpu.total_ms:.1f} ms/signup"
    return line
