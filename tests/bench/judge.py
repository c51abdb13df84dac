"""The benchmark's rules as pure functions: step pass/fail, the step ladder, targets, verdicts."""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

EFFECT_DEADLINE_S = 5.0
ACHIEVED_SHARE = 0.95


def step_passed(
    offered: float,
    achieved: float,
    errors: int,
    done_after_s: float | None,
    deadline_s: float = EFFECT_DEADLINE_S,
) -> bool:
    """A 10 s step passes when the HTTP side kept up (>= 95% of the offered rate, no failed
    request) and every effect of its signups was committed within ``deadline_s`` seconds of the
    moment its last request was due (``None``: some effect never came)."""
    return (
        achieved >= ACHIEVED_SHARE * offered
        and errors == 0
        and done_after_s is not None
        and done_after_s <= deadline_s
    )


def ladder_from(ladder: Sequence[int], fixed: Mapping[int, bool]) -> list[int]:
    """The rungs still to try after the fixed-rate phases that were also 10 s steps.

    Above the highest fixed rate that passed; when none passed, the rungs below the lowest fixed
    rate. Rungs are tried upwards until one fails.
    """
    passed = [rate for rate, ok in fixed.items() if ok]
    if passed:
        return [rung for rung in ladder if rung > max(passed)]
    lowest = min(fixed) if fixed else max(ladder, default=0) + 1
    return [rung for rung in ladder if rung < lowest]


def max_sustained(steps: Iterable[tuple[int, bool]]) -> int | None:
    """The highest offered rate of a passing step (None when none passed)."""
    passed = [rate for rate, ok in steps if ok]
    return max(passed) if passed else None


@dataclass(frozen=True)
class Target:
    key: str
    text: str  # as printed: "<= 15 ms"
    limit: float
    at_most: bool  # True: measured <= limit; False: measured >= limit

    def met(self, measured: float | None) -> bool | None:
        """True/False, or None when there is no figure to judge."""
        if measured is None or measured != measured:  # None or NaN
            return None
        return measured <= self.limit if self.at_most else measured >= self.limit


TARGETS = {
    t.key: t
    for t in (
        # issue 20 ("Measure both ends")
        Target("cpu_per_signup_ms_20", "<= 16 ms", 16.0, at_most=True),
        Target("cpu_per_signup_ms_100", "<= 11 ms", 11.0, at_most=True),
        Target("idle_cpu_ms_per_s", "<= 20 ms/s", 20.0, at_most=True),
        Target("e2e_p50_ms_20", "<= 10 ms", 10.0, at_most=True),
        Target("e2e_p50_ms_100", "<= 15 ms", 15.0, at_most=True),
        Target("e2e_p99_ms_100", "<= 50 ms", 50.0, at_most=True),
        Target("max_sustained_rate", ">= 200/s", 200.0, at_most=False),
        Target("relay_ratio", ">= 0.70x", 0.70, at_most=False),
        Target("stats_drain_rate", ">= 3,000/s", 3000.0, at_most=False),
        # issue 17
        Target("welcome_email_ms", "<= 0.2 ms", 0.2, at_most=True),
        # issue 8, still held
        Target("handler_ratio", ">= 0.70x", 0.70, at_most=False),
    )
}


def verdict(met: bool | None) -> str:
    return {True: "met", False: "NOT met", None: "n/a"}[met]
