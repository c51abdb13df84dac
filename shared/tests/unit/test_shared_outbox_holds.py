"""A refused row is held back longer after each refusal, then tried again."""

from signup_shared.outbox.holds import Holds


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_refusal_doubles_the_hold_up_to_the_cap() -> None:
    holds = Holds(first_delay=2.0, cap=10.0, clock=Clock())
    assert [holds.hold(7, refusals) for refusals in range(5)] == [2.0, 4.0, 8.0, 10.0, 10.0]


def test_the_default_parks_a_row_only_after_about_half_a_minute_of_refusals() -> None:
    holds = Holds()
    waited = sum(holds.hold(1, refusals) for refusals in range(4))  # before the 5th refusal
    assert waited == 30.0  # longer than a quorum queue or stream takes to elect a leader


def test_a_held_row_is_not_claimed_until_its_time_has_come() -> None:
    clock = Clock()
    holds = Holds(first_delay=2.0, clock=clock)
    holds.hold(7, 0)
    holds.hold(9, 2)
    assert sorted(holds.held()) == [7, 9]
    assert holds.next_due() == 2.0
    clock.now += 2.0
    assert holds.held() == [9]
    assert holds.next_due() == 6.0


def test_released_rows_and_an_empty_hold_list() -> None:
    holds = Holds(clock=Clock())
    assert holds.next_due() is None and holds.held() == []
    holds.hold(3, 0)
    holds.release([3])
    assert holds.held() == [] and holds.next_due() is None


def test_no_delay_holds_nothing() -> None:
    holds = Holds(first_delay=0.0, clock=Clock())
    assert holds.hold(3, 4) == 0.0
    assert holds.held() == []
