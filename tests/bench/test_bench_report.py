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
        "cpu": [column("@20/s", 0.8), column("@100/s", 0.5), column("@100/s x2", 0.4, 2)],
        "idle": column("idle ms/s", 1.0),
        "max_sustained_rate": 200,
        "steps": [(50, True), (100, True), (150, True), (200, True), (250, False)],
        "latency": {20: (9.0, 20.0), 50: (9.0, 20.0), 100: (10.0, 60.0)},
        "relay": (14_000.0, 20_000.0),
        "handler": (900.0, 1_000.0),
        "handler_batched": 3_000.0,
        "welcome_ms": 0.05,
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


def test_the_idle_column_comes_first_and_every_column_has_its_total() -> None:
    report = rows(figures())
    assert report[0].measured.split() == ["idle", "ms/s", "@20/s", "@100/s", "@100/s", "x2"]
    total = next(row for row in report if "= platform" in row.figure)
    assert total.measured.split() == ["19.0", "15.2", "9.5", "7.6"]
    assert total.target == ""


def test_cpu_per_signup_is_judged_at_20_and_100_per_second_and_the_idle_burn_per_second() -> None:
    judged = {row["figure"]: (row["measured"], row["verdict"]) for row in verdicts(rows(figures()))}
    assert judged["CPU per signup @20/s (platform + PostgreSQL + RabbitMQ)"] == ("15.2 ms", "met")
    assert judged["CPU per signup @100/s (platform + PostgreSQL + RabbitMQ)"] == ("9.5 ms", "met")
    idle = judged["idle burn, no traffic (platform + PostgreSQL + RabbitMQ)"]
    assert idle == ("19.0 ms CPU per s", "met")
    worse = figures(cpu=[column("@20/s", 1.0), column("@100/s", 0.6)], idle=column("idle", 1.1))
    judged = {row["figure"]: row["verdict"] for row in verdicts(rows(worse))}
    assert judged["CPU per signup @20/s (platform + PostgreSQL + RabbitMQ)"] == "NOT met"
    assert judged["CPU per signup @100/s (platform + PostgreSQL + RabbitMQ)"] == "NOT met"
    assert judged["idle burn, no traffic (platform + PostgreSQL + RabbitMQ)"] == "NOT met"


def test_every_target_has_a_verdict_next_to_its_figure() -> None:
    judged = {row["figure"]: (row["measured"], row["verdict"]) for row in verdicts(rows(figures()))}
    assert judged["max sustained rate (10 s steps, effects <= 5 s after)"] == ("200/s", "met")
    assert judged["e2e commit -> last effect p50 @20/s"] == ("9.0 ms", "met")
    assert judged["e2e commit -> last effect p50 @100/s"] == ("10.0 ms", "met")
    assert judged["e2e commit -> last effect p99 @100/s"] == ("60.0 ms", "NOT met")
    assert judged["relay vs raw pika, 1,000 in flight"][1] == "met"  # 0.70x
    assert judged["stats backlog drain (5,000 events)"] == ("3,100/s", "met")
    assert judged["welcome email built (render + MIME), CPU per message"] == ("0.050 ms", "met")
    assert len(judged) == 11
    slow = {r["figure"]: r["verdict"] for r in verdicts(rows(figures(welcome_ms=0.25)))}
    assert slow["welcome email built (render + MIME), CPU per message"] == "NOT met"


def test_a_counted_group_without_cpu_in_a_column_shows_zero_and_others_n_a() -> None:
    quiet = CpuColumn("idle ms/s", {"notifications": 1.0}, KINDS, {}, total_ms=1.0)
    report = {row.figure.strip(): row.measured.split() for row in rows(figures(idle=quiet))}
    assert report["platform: notifications"][0] == "1.00"
    assert report["PostgreSQL backends"][0] == "0.00"
    assert report["apart (dev sink): smtp-sink"][0] == "n/a"


def test_latency_without_a_target_is_shown_unjudged() -> None:
    report = {row.figure: row for row in rows(figures())}
    assert report["e2e commit -> last effect p99 @20/s"].measured == "20.0 ms"
    assert report["e2e commit -> last effect p99 @20/s"].target == ""
    assert report["e2e commit -> last effect p50 @5/s"].measured == "n/a"


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
