"""Unit tests of the benchmark's rules: percentiles, step pass/fail, the ladder, targets."""

import math

import pytest
from figures import distribution, percentile
from judge import TARGETS, Target, ladder_from, max_sustained, step_passed, verdict


def test_percentile_is_nearest_rank_on_unsorted_values() -> None:
    values = [float(v) for v in reversed(range(1, 101))]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile(values, 0) == 1.0


def test_percentile_of_few_values_rounds_the_rank_up() -> None:
    assert percentile([10.0, 20.0, 30.0], 50) == 20.0
    assert percentile([10.0, 20.0], 99) == 20.0
    assert percentile([7.0], 50) == 7.0


def test_percentile_of_nothing_is_nan_and_distribution_says_so() -> None:
    assert math.isnan(percentile([], 50))
    figures = distribution([])
    assert math.isnan(figures["p99"]) and figures["count"] == 0


@pytest.mark.parametrize(
    ("achieved", "errors", "done_after", "passed"),
    [
        (95.0, 0, 5.0, True),  # exactly 95% achieved, effects exactly at the deadline
        (94.9, 0, 1.0, False),  # the HTTP side fell behind
        (100.0, 1, 1.0, False),  # a request failed
        (100.0, 0, 5.01, False),  # an effect came too late
        (100.0, 0, None, False),  # an effect never came
        (100.0, 0, -0.2, True),  # effects done before the last request was even due
    ],
)
def test_a_step_passes_only_when_load_kept_up_and_effects_came_within_5_s(
    achieved: float, errors: int, done_after: float | None, passed: bool
) -> None:
    assert step_passed(100, achieved, errors, done_after) is passed


def test_the_ladder_continues_above_the_highest_fixed_rate_that_passed() -> None:
    ladder = (20, 30, 40, 60, 80, 125, 150, 200)
    assert ladder_from(ladder, {50: True, 100: True}) == [125, 150, 200]
    assert ladder_from(ladder, {50: True, 100: False}) == [60, 80, 125, 150, 200]


def test_the_ladder_goes_below_the_fixed_rates_when_none_passed() -> None:
    assert ladder_from((20, 30, 40, 60, 150), {50: False, 100: False}) == [20, 30, 40]
    assert ladder_from((20, 30), {}) == [20, 30]


def test_max_sustained_is_the_highest_passing_step() -> None:
    assert max_sustained([(50, True), (100, False), (20, True), (40, True)]) == 50
    assert max_sustained([(50, False)]) is None


def test_targets_judge_both_directions_and_no_figure() -> None:
    at_most = Target("x", "<= 15 ms", 15.0, at_most=True)
    at_least = Target("y", ">= 150/s", 150.0, at_most=False)
    assert at_most.met(15.0) is True and at_most.met(15.1) is False
    assert at_least.met(150.0) is True and at_least.met(149.0) is False
    assert at_most.met(None) is None and at_most.met(math.nan) is None
    assert [verdict(v) for v in (True, False, None)] == ["met", "NOT met", "n/a"]


def test_the_issue_targets_are_all_there() -> None:
    assert TARGETS["cpu_per_signup_ms_20"].met(16.0) and not TARGETS["cpu_per_signup_ms_20"].met(
        16.1
    )
    assert TARGETS["cpu_per_signup_ms_100"].met(10.9) and not TARGETS["cpu_per_signup_ms_100"].met(
        11.1
    )
    assert TARGETS["idle_cpu_ms_per_s"].met(20.0) and not TARGETS["idle_cpu_ms_per_s"].met(20.5)
    assert not TARGETS["max_sustained_rate"].met(199.0) and TARGETS["max_sustained_rate"].met(200.0)
    assert TARGETS["relay_ratio"].met(0.7)
    assert not TARGETS["stats_drain_rate"].met(2999.0)
    assert TARGETS["e2e_p99_ms_100"].met(50.0) and not TARGETS["e2e_p50_ms_100"].met(15.5)
    assert TARGETS["e2e_p50_ms_20"].met(10.0) and not TARGETS["e2e_p50_ms_20"].met(10.1)
