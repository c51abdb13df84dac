import threading
import time

from notifications.adapters.channel_pools import ChannelPools


def test_a_stuck_channel_holds_back_only_its_own_jobs() -> None:
    release = threading.Event()
    lanes: ChannelPools[str, str] = ChannelPools(["email", "sms"], workers_per_channel=1)
    try:
        started = time.monotonic()
        results = lanes.run(
            [
                ("e1", "email", lambda: "sent" if release.wait(5) else "timeout"),
                ("s1", "sms", lambda: "sms-1"),
                ("s2", "sms", lambda: "sms-2"),
            ],
            wait=0.05,
        )
        assert results == {"s1": "sms-1", "s2": "sms-2"}
        assert time.monotonic() - started < 1.0
        stuck = lanes.submit("e1", "email", lambda: "again")  # the same job, not a second one
        release.set()
        assert stuck.result(5) == "sent"
    finally:
        release.set()
        lanes.shutdown(wait_seconds=5)


def test_a_key_queued_or_running_is_not_started_twice() -> None:
    release = threading.Event()
    calls: list[str] = []

    def job() -> str:
        calls.append("ran")
        release.wait(5)
        return "done"

    lanes: ChannelPools[str, str] = ChannelPools(["email"], workers_per_channel=2)
    try:
        first = lanes.submit("n1", "email", job)
        second = lanes.submit("n1", "email", job)
        assert first is second
        release.set()
        assert first.result(5) == "done"
        assert calls == ["ran"]
    finally:
        release.set()
        lanes.shutdown(wait_seconds=5)


def test_a_job_done_at_once_is_forgotten_so_it_may_run_again() -> None:
    lanes: ChannelPools[str, int] = ChannelPools(["sms"], workers_per_channel=1)
    try:
        counter = iter(range(10))
        assert lanes.run([("n1", "sms", lambda: next(counter))], wait=5) == {"n1": 0}
        time.sleep(0.01)
        assert lanes.run([("n1", "sms", lambda: next(counter))], wait=5) == {"n1": 1}
    finally:
        lanes.shutdown(wait_seconds=5)


def test_each_channel_has_its_own_workers() -> None:
    lanes: ChannelPools[str, int] = ChannelPools(["email", "sms"], workers_per_channel=3)
    try:
        assert lanes.workers_per_channel == {"email": 3, "sms": 3}
    finally:
        lanes.shutdown()


def test_a_channel_whose_workers_are_all_taken_is_not_waited_on() -> None:
    release = threading.Event()
    lanes: ChannelPools[str, str] = ChannelPools(["email", "sms"], workers_per_channel=1)
    try:
        lanes.submit("stuck", "email", lambda: "sent" if release.wait(5) else "timeout")
        assert lanes.saturated() == {"email"}
        started = time.monotonic()
        results = lanes.run(
            [("e2", "email", lambda: "queued"), ("s1", "sms", lambda: "sms-1")], wait=2.0
        )
        assert results == {"s1": "sms-1"}
        assert time.monotonic() - started < 1.0  # not the 2 s a free lane could be waited on
    finally:
        release.set()
        lanes.shutdown(wait_seconds=5)
    assert lanes.saturated() == set()
