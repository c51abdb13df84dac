"""Unit tests of the idle burn (per second, per process) and of splitting the load generator's
CPU out of the benchmark process's share."""

import cpu
import pytest
from cpu import Context, Proc, Snapshot
from idle import backend_database, figures, per_process
from loadgen import GENERATOR_GROUP, READS_GROUP, split_bench_share

STACK = "bench1234abcd"
TICKS = cpu.TICKS_PER_SECOND


@pytest.mark.parametrize(
    ("title", "database"),
    [
        (f"postgres: u {STACK}_stats 127.0.0.1(5) idle", "stats"),
        (f"postgres: 15/main: u {STACK}_accounts [local] idle", "accounts"),
        (f"postgres: autovacuum worker {STACK}_provisioning", "provisioning"),
        ("postgres: u other_stats 127.0.0.1(5) idle", None),
        ("postgres: ", None),
    ],
)
def test_a_backend_is_named_by_its_stack_database(title: str, database: str | None) -> None:
    assert backend_database(title, STACK) == database


def snapshots(seconds: float, used: dict[int, tuple[str, str, int, int]]) -> tuple[Snapshot, ...]:
    """pid -> (command, title, ppid, ticks used in the window)."""
    before = {pid: Proc(pid, ppid, c, t, 100) for pid, (c, t, ppid, _) in used.items()}
    after = {pid: Proc(pid, ppid, c, t, 100 + n) for pid, (c, t, ppid, n) in used.items()}
    return Snapshot(0.0, before, 0, 0), Snapshot(seconds, after, 50, 100)


PROCESSES = {
    10: ("python", "notifications consume", 1, 2 * TICKS // 10),  # 0.2 s
    11: ("python", "child of notifications", 10, TICKS // 10),  # 0.1 s, counted with its parent
    12: ("python", "accounts-web", 1, 0),
    20: ("postgres", f"postgres: u {STACK}_stats 127.0.0.1(1) idle", 2, TICKS // 10),
    21: ("postgres", f"postgres: u {STACK}_stats 127.0.0.1(2) idle", 2, TICKS // 10),
    22: ("postgres", f"postgres: u {STACK}_accounts 127.0.0.1(3) idle", 2, 0),
    30: ("beam.smp", "beam.smp", 1, TICKS // 2),
    40: ("python", "bench.py", 1, TICKS // 10),
}
CONTEXT = Context(
    named={10: "notifications", 12: "accounts-web"},
    database_prefix=STACK,
    bench_pids=frozenset({40}),
    broker_pid=30,
)


def test_per_process_names_platform_processes_and_backends_per_database() -> None:
    before, after = snapshots(10.0, PROCESSES)
    used = per_process(before, after, CONTEXT)
    assert used == pytest.approx(
        {
            "notifications": 0.3,
            "PostgreSQL backends: stats": 0.2,
            cpu.RABBITMQ_GROUP: 0.5,
            cpu.BENCH_GROUP: 0.1,
        }
    )


def test_idle_figures_are_ms_per_second_and_the_total_counts_platform_postgres_rabbitmq() -> None:
    before, after = snapshots(10.0, PROCESSES)
    idle = figures(before, after, CONTEXT)
    assert idle.total_ms == pytest.approx(100.0)  # (0.3 + 0.2 + 0.5) s over 10 s
    assert idle.per_second_ms["notifications"] == pytest.approx(30.0)
    assert idle.per_second_ms["accounts-web"] == 0.0
    assert idle.per_process_ms["PostgreSQL backends: stats"] == pytest.approx(20.0)
    assert next(iter(idle.per_process_ms)) == cpu.RABBITMQ_GROUP  # busiest first
    assert idle.machine_percent == pytest.approx(100.0 * cpu.CORES * 0.5)


PER_SIGNUP = {"notifications": 1.0, cpu.BENCH_GROUP: 0.5}
KINDS = {"notifications": cpu.PLATFORM, cpu.BENCH_GROUP: cpu.BENCH}
COUNT = {"notifications": 1, cpu.BENCH_GROUP: 1}


def test_the_load_generator_is_split_out_of_the_benchmark_process() -> None:
    per_signup, kinds, processes = split_bench_share(PER_SIGNUP, KINDS, COUNT, 0.3)
    assert per_signup == pytest.approx(
        {"notifications": 1.0, GENERATOR_GROUP: 0.3, READS_GROUP: 0.2}
    )
    assert kinds[GENERATOR_GROUP] == kinds[READS_GROUP] == cpu.BENCH
    assert cpu.BENCH_GROUP not in kinds and cpu.BENCH_GROUP not in processes


def test_the_generator_never_shows_more_than_the_process_used() -> None:
    per_signup, _, _ = split_bench_share(PER_SIGNUP, KINDS, COUNT, 0.8)
    assert (per_signup[GENERATOR_GROUP], per_signup[READS_GROUP]) == (0.5, 0.0)
    assert split_bench_share({"x": 1.0}, {"x": cpu.PLATFORM}, {"x": 1}, 0.3)[0] == {"x": 1.0}
