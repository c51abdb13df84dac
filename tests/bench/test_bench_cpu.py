"""Unit tests of the per-process CPU accounting: /proc parsing, who is who, sums per role."""

import cpu
import pytest
from cpu import Context, Proc, Snapshot, classify, parse_stat, role_of, usage

STACK = "bench1234abcd"


def stat(pid: int, command: str, ppid: int, utime: int, stime: int) -> str:
    """A /proc/<pid>/stat line: fields 14 and 15 are utime and stime."""
    middle = " ".join(["S", str(ppid)] + ["0"] * 9 + [str(utime), str(stime)] + ["0"] * 30)
    return f"{pid} ({command}) {middle}"


def test_parse_stat_reads_ppid_and_utime_plus_stime_even_with_odd_command_names() -> None:
    proc = parse_stat(42, stat(42, "we ird) (name", 7, 120, 30), "title")
    assert (proc.pid, proc.ppid, proc.command, proc.ticks) == (42, 7, "we ird) (name", 150)


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("notifications-2", "notifications"),
        ("stats-1", "stats"),
        ("accounts-web", "accounts-web"),
        ("accounts-consumer-10", "accounts-consumer"),
        ("stats", "stats"),
    ],
)
def test_role_drops_the_instance_number(name: str, role: str) -> None:
    assert role_of(name) == role


def procs(*items: Proc) -> dict[int, Proc]:
    return {p.pid: p for p in items}


def p(pid: int, command: str, title: str = "", ppid: int = 1, ticks: int = 0) -> Proc:
    return Proc(pid, ppid, command, title or command, ticks)


CONTEXT = Context(
    named={10: "notifications-1", 11: "notifications-2", 12: "smtp-sink", 13: "accounts-web"},
    database_prefix=STACK,
    bench_pids=frozenset({99}),
    bench_backends=frozenset({204}),
    broker_pid=300,
)
WORLD = procs(
    p(10, "notifications"),
    p(11, "notifications"),
    p(12, "devsinks-smtp"),
    p(13, "accounts-web"),
    p(14, "python3", ppid=13),  # a child of a stack process belongs to it
    p(99, "python"),
    p(200, "postgres", "/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main"),
    p(201, "postgres", f"postgres: postgres {STACK}_stats 127.0.0.1(5100) idle", ppid=200),
    p(202, "postgres", "postgres: postgres other_db 127.0.0.1(5101) idle", ppid=200),
    p(203, "postgres", "postgres: 15/main: walwriter ", ppid=200),
    p(204, "postgres", f"postgres: postgres {STACK}_accounts 127.0.0.1(5102) idle", ppid=200),
    p(205, "postgres", f"postgres: autovacuum worker {STACK}_notifications", ppid=200),
    p(206, "postgres", f"postgres: 15/main: postgres {STACK}_stats [local] idle", ppid=200),
    p(207, "postgres", "postgres: 15/main: checkpointer ", ppid=200),
    p(300, "beam.smp"),
    p(301, "erl_child_setup", ppid=300),
    p(310, "beam.smp"),
    p(400, "py-spy"),
    p(500, "bash"),
)


@pytest.mark.parametrize(
    ("pid", "group", "kind"),
    [
        (10, "notifications", cpu.PLATFORM),
        (11, "notifications", cpu.PLATFORM),
        (14, "accounts-web", cpu.PLATFORM),
        (12, "smtp-sink", cpu.SINK),
        (99, cpu.BENCH_GROUP, cpu.BENCH),
        (200, cpu.POSTGRES_SHARED, cpu.PG_SHARED),
        (201, cpu.POSTGRES_BACKENDS, cpu.POSTGRES),
        (202, cpu.OTHER_GROUP, cpu.OTHER),
        (203, cpu.POSTGRES_SHARED, cpu.PG_SHARED),
        (204, cpu.BENCH_BACKENDS, cpu.BENCH),
        (205, cpu.POSTGRES_BACKENDS, cpu.POSTGRES),
        (206, cpu.POSTGRES_BACKENDS, cpu.POSTGRES),  # with a cluster_name in the title
        (207, cpu.POSTGRES_SHARED, cpu.PG_SHARED),
        (300, cpu.RABBITMQ_GROUP, cpu.RABBITMQ),
        (301, cpu.RABBITMQ_GROUP, cpu.RABBITMQ),
        (310, cpu.OTHER_GROUP, cpu.OTHER),  # another RabbitMQ node on the machine
        (400, cpu.PROFILER_GROUP, cpu.PROFILER),
        (500, cpu.OTHER_GROUP, cpu.OTHER),
    ],
)
def test_every_process_lands_in_one_group_of_one_kind(pid: int, group: str, kind: str) -> None:
    assert classify(WORLD[pid], WORLD, CONTEXT) == cpu.Group(group, kind)


def test_a_supervisor_in_the_stack_is_reported_apart() -> None:
    world = procs(p(1, "supervisord"), p(2, "stats", ppid=1))
    context = Context(named={1: "supervisor", 2: "stats"}, database_prefix=STACK)
    assert classify(world[1], world, context).kind == cpu.SUPERVISOR
    assert classify(world[2], world, context) == cpu.Group("stats", cpu.PLATFORM)


def snap(
    at: float,
    ticks: dict[int, int],
    busy: int = 0,
    total: int = 100,
    commands: dict[int, str] | None = None,
) -> Snapshot:
    found = {}
    for pid, used in ticks.items():
        base = WORLD[pid]
        command = (commands or {}).get(pid, base.command)
        found[pid] = Proc(pid, base.ppid, command, base.title, used)
    return Snapshot(at, found, busy, total)


def test_usage_sums_instances_per_role_and_counts_only_platform_postgres_rabbitmq() -> None:
    hz = cpu.TICKS_PER_SECOND
    before = snap(0.0, {10: 100, 11: 50, 12: 0, 201: 10, 300: 0, 99: 0, 202: 0}, 0, 0)
    after = snap(
        10.0,
        {10: 100 + hz, 11: 50 + hz, 12: hz, 201: 10 + hz, 300: hz, 99: hz, 202: hz, 13: hz},
        busy=150,
        total=200,
    )
    used = usage(before, after, CONTEXT)
    seconds = {g.name: g.seconds for g in used.groups}
    assert seconds["notifications"] == pytest.approx(2.0)
    assert next(g for g in used.groups if g.name == "notifications").processes == 2
    assert seconds["accounts-web"] == pytest.approx(1.0)  # born in the window: counted whole
    # platform (notifications 2 + accounts-web 1) + PostgreSQL backends 1 + RabbitMQ 1
    assert used.counted_seconds() == pytest.approx(5.0)
    assert used.total_per_item_ms(1000) == pytest.approx(5.0)
    assert used.per_item_ms(1000)["smtp-sink"] == pytest.approx(1.0)
    assert used.groups[0].kind == cpu.PLATFORM and used.groups[-1].kind == cpu.OTHER
    assert used.machine_busy == pytest.approx(0.75)
    assert used.percent()["notifications"] == pytest.approx(20.0)


def test_a_reused_pid_counts_from_zero() -> None:
    before = snap(0.0, {10: 500, 11: 7})
    after = snap(1.0, {10: 30, 11: 7}, commands={10: "bash"})  # pid 10 died, reused by "bash"
    used = usage(before, after, CONTEXT)
    seconds = {g.name: g.seconds for g in used.groups}
    assert seconds["notifications"] == pytest.approx(30 / cpu.TICKS_PER_SECOND)
