"""Unit tests of the one table: CPU rows per process, the total against its target, verdicts."""

from report import CpuColumn, Figures, render, rows, verdicts

KINDS = {
    "notifications": "platform",
    "accounts-web": "platform",
    "PostgreSQL backends": "postgres",
    "RabbitMQ (beam.smp)": "rabbitmq",
    "smtp-sink": "sink",
    "other processes on the machine": "other",
}


def column(title: str, scale: float, processes: int = 1) -> CpuColumn:
    per_signup = {
        "notifications": 10 * scale,
        "accounts-web": 4 * scale,
        "PostgreSQL backends": 3 * scale,
        "RabbitMQ (beam.smp)": 2 * scale,
        "smtp-sink": 1 * scale,
        "other processes on the machine": 50.0,
    }
    processes_of = {group: 1 for group in per_signup} | {"notifications": processes}
    return CpuColumn(title, per_signup, KINDS, processes_of, total_ms=19 * scale)


def figures(**overrides: object) -> Figures:
    values: dict[str, object] = {
        "cpu": [column("@20/s", 2.0), column("@100/s", 0.5), column("@100/s x2", 0.4, 2)],
        "max_sustained_rate": 150,
        "steps": [(50, True), (100, True), (125, True), (150, True), (175, False)],
        "latency": {50: (9.0, 20.0), 100: (10.0, 30.0)},
        "relay": (14_000.0, 20_000.0),
        "handler": (900.0, 1_000.0),
        "handler_batched": 3_000.0,
        "drain": (5000, 3100.0),
        "profile": ("notifications", "var/bench/profile-notifications-top.txt"),
    }
    values.update(overrides)
    return Figures(**values)  # type: ignore[arg-type]


def test_cpu_rows_list_platform_first_then_the_counted_total_then_what_is_apart() -> None:
    labels = [row.figure.strip() for row in rows(figures())]
    assert labels.index("platform: notifications") < labels.index("platform: accounts-web")
    total = labels.index("= platform + PostgreSQL + RabbitMQ")
    assert labels.index("RabbitMQ (beam.smp)") < total < labels.index("apart (dev sink): smtp-sink")


def test_the_total_is_judged_in_the_100_per_second_column() -> None:
    total = next(row for row in rows(figures()) if "= platform" in row.figure)
    assert total.measured.split() == ["38.0", "9.5", "7.6"]
    assert (total.target, total.verdict) == ("<= 15 ms @100/s", "met")
    worse = figures(cpu=[column("@20/s", 2.0), column("@100/s", 1.0)])
    assert next(r for r in rows(worse) if "= platform" in r.figure).verdict == "NOT met"


def test_every_target_has_a_verdict_next_to_its_figure() -> None:
    judged = {row["figure"]: (row["measured"], row["verdict"]) for row in verdicts(rows(figures()))}
    assert judged["max sustained rate (10 s steps, effects <= 5 s after)"] == ("150/s", "met")
    assert judged["e2e commit -> last effect p99 @100/s"] == ("30.0 ms", "NOT met")
    assert judged["relay vs raw pika, 1,000 in flight"][1] == "met"  # 0.70x
    assert judged["stats backlog drain (5,000 events)"] == ("3,100/s", "met")
    assert len(judged) == 9


def test_missing_parts_say_n_a_instead_of_failing() -> None:
    report = rows(Figures())
    text = render(report)
    assert "n/a" in text
    assert all(row["verdict"] == "n/a" for row in verdicts(report))


def test_no_passing_step_is_judged_as_not_met() -> None:
    report = rows(figures(max_sustained_rate=None, steps=[(50, False)]))
    sustained = next(r for r in report if r.figure.startswith("max sustained"))
    assert (sustained.measured, sustained.verdict) == ("below the lowest step", "NOT met")


def test_the_batched_runtime_is_shown_against_the_bare_loop_without_a_target() -> None:
    row = next(r for r in rows(figures()) if "batch handler" in r.figure)
    assert (row.measured, row.target) == ("3,000 msg/s = 3.00x the bare loop", "")
