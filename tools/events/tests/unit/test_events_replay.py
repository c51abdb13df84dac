"""The replay loop against an in-memory target: which events go where, progress, final line."""

from datetime import UTC, datetime
from typing import Any

from signup_events.records import EventRecord
from signup_events.replay import Replayer, ReplayOutcome, final_line, progress_line, queue_for


class FakeTarget:
    def __init__(self, queues: set[str]) -> None:
        self.queues = queues
        self.lookups: list[str] = []
        self.published: list[tuple[str, Any]] = []

    def has_queue(self, queue: str) -> bool:
        self.lookups.append(queue)
        return queue in self.queues

    def publish(self, queue: str, message: Any) -> None:
        self.published.append((queue, message))


def record(offset: int, kind: str = "UserSignedUp", version: int = 2) -> EventRecord:
    return EventRecord(
        offset, f"id-{offset}", kind, version, "accounts", "k", datetime(2026, 1, 1, tzinfo=UTC)
    )


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        self.now += 0.5
        return self.now


def test_queue_for_names_the_service_queue_of_an_event_type() -> None:
    assert queue_for("audit", "UserSignedUp") == "audit.user_signed_up"


def test_events_go_to_the_services_queue_and_other_types_are_skipped() -> None:
    target = FakeTarget({"stats.user_signed_up"})
    replayer = Replayer("stats", target)
    for offset, kind in enumerate(["UserSignedUp", "SpaceProvisioned", "UserSignedUp"]):
        replayer.handle(f"m{offset}", record(offset, kind))
    assert target.published == [("stats.user_signed_up", "m0"), ("stats.user_signed_up", "m2")]
    assert (replayer.outcome.read, replayer.outcome.replayed, replayer.outcome.skipped) == (3, 2, 1)
    assert target.lookups == ["stats.user_signed_up", "stats.space_provisioned"]  # once per type


def test_type_and_version_filters() -> None:
    target = FakeTarget({"audit.user_signed_up", "audit.space_provisioned"})
    replayer = Replayer("audit", target, types={"UserSignedUp"}, versions={2})
    replayer.handle("a", record(1, version=1))
    replayer.handle("b", record(2, version=2))
    replayer.handle("c", record(3, kind="SpaceProvisioned", version=2))
    assert target.published == [("audit.user_signed_up", "b")]
    assert replayer.outcome.skipped == 2


def test_dry_run_counts_without_publishing() -> None:
    target = FakeTarget({"audit.user_signed_up"})
    replayer = Replayer("audit", target, dry_run=True)
    replayer.handle("a", record(1))
    assert target.published == []
    assert replayer.outcome.by_queue == {"audit.user_signed_up": 1}
    assert final_line("audit", replayer.outcome, dry_run=True).startswith("would replay 1 event(s)")


def test_progress_every_n_events_and_rate() -> None:
    seen: list[int] = []
    replayer = Replayer(
        "audit",
        FakeTarget({"audit.user_signed_up"}),
        progress_every=2,
        on_progress=lambda outcome: seen.append(outcome.read),
        clock=Clock(),
    )
    for offset in range(5):
        replayer.handle(offset, record(offset))
    assert seen == [2, 4]
    assert replayer.outcome.seconds == 2.5  # first event at 100.5, last at 103.0
    assert replayer.outcome.rate == 2.0


def test_lines_say_counts_offset_and_rate() -> None:
    outcome = ReplayOutcome(read=10, replayed=8, skipped=2, last_offset=41, seconds=2.0)
    outcome.by_queue["audit.user_signed_up"] = 8
    assert progress_line(outcome) == "read 10 (offset 41), replayed 8, skipped 2, 5 events/s"
    assert final_line("audit", outcome, dry_run=False) == (
        "replayed 8 event(s) into audit (audit.user_signed_up 8); skipped 2 of 10 read in "
        "2.0 s (5 events/s)"
    )
