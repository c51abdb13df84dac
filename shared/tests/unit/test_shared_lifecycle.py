import signal

import pytest

from signup_shared import lifecycle


class FakePrctl:
    def __init__(self, result: int = 0) -> None:
        self.calls: list[tuple[int, int]] = []
        self.result = result

    def __call__(self, option: int, value: int) -> int:
        self.calls.append((option, value))
        return self.result


class FakeWatch:
    def __init__(self) -> None:
        self.watched: list[tuple[int, float]] = []

    def __call__(self, parent: int, grace: float) -> None:
        self.watched.append((parent, grace))


def test_asks_the_kernel_for_sigterm_when_the_parent_dies_and_bounds_the_stop() -> None:
    prctl, watch = FakePrctl(), FakeWatch()
    armed = lifecycle.die_with_parent(environ={}, getppid=lambda: 42, prctl=prctl, watch=watch)
    assert armed
    assert prctl.calls == [(lifecycle.PR_SET_PDEATHSIG, int(signal.SIGTERM))]
    assert watch.watched == [(42, lifecycle.GRACE_SECONDS)]


def test_a_failing_prctl_is_an_error_not_a_silent_no_op() -> None:
    with pytest.raises(OSError, match="PR_SET_PDEATHSIG"):
        lifecycle.die_with_parent(
            environ={}, getppid=lambda: 42, prctl=FakePrctl(-1), watch=FakeWatch()
        )


def test_exits_when_the_expected_parent_died_before_the_prctl_call() -> None:
    environ, watch = {lifecycle.PARENT_ENV: "4242"}, FakeWatch()
    with pytest.raises(SystemExit, match="4242 is gone"):
        lifecycle.die_with_parent(
            environ=environ, getppid=lambda: 1, prctl=FakePrctl(), watch=watch
        )
    assert watch.watched == []


def test_starts_under_the_expected_parent_and_does_not_pass_the_expectation_on() -> None:
    environ = {lifecycle.PARENT_ENV: "4242", "OTHER": "kept"}
    assert lifecycle.die_with_parent(
        environ=environ, getppid=lambda: 4242, prctl=FakePrctl(), watch=FakeWatch()
    )
    assert environ == {"OTHER": "kept"}


def test_without_an_expected_parent_any_parent_will_do() -> None:
    assert lifecycle.die_with_parent(
        environ={}, getppid=lambda: 1, prctl=FakePrctl(), watch=FakeWatch()
    )
