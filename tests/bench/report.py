"""The one table ``make bench`` prints, and the target verdicts, from the measured figures.

Pure: takes plain numbers (see ``Figures``), returns rows and text; ``bench.py`` fills it in.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from cpu import COUNTED, KIND_ORDER, PLATFORM
from figures import table
from judge import TARGETS, verdict

KIND_LABELS = {
    "postgres": "",
    "rabbitmq": "",
    "sink": "apart (dev sink): ",
    "supervisor": "apart (supervisor): ",
    "bench": "apart: ",
    "profiler": "apart (profiler): ",
    "postgres-shared": "apart: ",
    "other": "apart: ",
}
CELL = 11


@dataclass(frozen=True)
class CpuColumn:
    """CPU per signup of one phase: ms per group, each group's kind and process count."""

    title: str  # "@20/s"
    per_signup_ms: dict[str, float]
    kinds: dict[str, str]
    processes: dict[str, int]
    total_ms: float
    complete: bool = True
    machine_percent: float | None = None  # the whole machine's busy share, % of one core


@dataclass(frozen=True)
class Figures:
    """Everything the table shows; None where a part did not run or failed."""

    cpu: list[CpuColumn] = field(default_factory=list)
    idle: CpuColumn | None = None  # the idle burn: ms per SECOND per group (no traffic)
    max_sustained_rate: int | None = None
    steps: list[tuple[int, bool]] = field(default_factory=list)
    latency: dict[int, tuple[float, float]] = field(default_factory=dict)  # rate -> (p50, p99)
    scaled_latency: tuple[int, float, float] | None = None  # (processes, p50, p99) @100/s
    relay: tuple[float, float] | None = None  # best relay, best raw (msg/s)
    handler: tuple[float, float] | None = None  # best runtime, best bare loop (msg/s)
    handler_batched: float | None = None  # best runtime with a batch handler (msg/s)
    welcome_ms: float | None = None  # CPU ms to build one welcome email (render + MIME bytes)
    drain: tuple[int, float] | None = None  # events, events/s
    profile: tuple[str, str] | None = None  # process name, top-functions file
    profile_top: list[str] = field(default_factory=list)  # a few "12.3%  function" lines


@dataclass(frozen=True)
class Row:
    figure: str
    measured: str
    target: str = ""
    verdict: str = ""


def number(value: float | None, digits: int = 1) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:,.{digits}f}"


def millis(value: float | None) -> str:
    text = number(value)
    return text if text == "n/a" else f"{text} ms"


def cells(values: Sequence[str]) -> str:
    """Sub-columns of the "measured" column (one per phase), right-aligned."""
    return "".join(v.rjust(CELL) for v in values)


def group_order(columns: Sequence[CpuColumn]) -> list[str]:
    """Groups by kind (platform first), then by their cost in the last column, busiest first."""
    kinds: dict[str, str] = {}
    for column in columns:
        kinds.update(column.kinds)
    rank = {kind: i for i, kind in enumerate(KIND_ORDER)}
    last = columns[-1].per_signup_ms if columns else {}
    return sorted(kinds, key=lambda g: (rank.get(kinds[g], len(rank)), -last.get(g, 0.0), g))


def share(column: CpuColumn, group: str, kind: str) -> str:
    """A group's figure in one column; a counted group absent from it used no CPU there."""
    value = column.per_signup_ms.get(group)
    return number(0.0 if value is None and kind in COUNTED else value, 2)


def cpu_rows(figures: Figures) -> list[Row]:
    columns = ([figures.idle] if figures.idle is not None else []) + figures.cpu
    if not columns:
        return [Row("CPU per signup", "n/a (the system part did not run)")]
    kinds: dict[str, str] = {}
    for column in columns:
        kinds.update(column.kinds)
    rows = [
        Row(
            "CPU ms per signup (idle: ms per second), per role; xN: N processes each",
            cells([c.title for c in columns]),
        )
    ]
    for group in group_order(columns):
        kind = kinds[group]
        label = f"platform: {group}" if kind == PLATFORM else group
        rows.append(
            Row(
                f"  {KIND_LABELS.get(kind, '')}{label}",
                cells([share(c, group, kind) for c in columns]),
            )
        )
        if kind == COUNTED[-1]:
            rows.append(total_row(columns))
    if not any(kinds[g] == COUNTED[-1] for g in kinds):
        rows.append(total_row(columns))
    rows.append(
        Row(
            "  machine busy during the phase, % of one core",
            cells([number(c.machine_percent, 0) for c in columns]),
        )
    )
    incomplete = [c.title for c in columns if not c.complete]
    if incomplete:
        rows.append(Row("  (effects still missing when CPU was read)", ", ".join(incomplete)))
    return rows


def total_row(columns: Sequence[CpuColumn]) -> Row:
    totals = cells([number(c.total_ms, 1) for c in columns])
    return Row("  = platform + PostgreSQL + RabbitMQ", totals)


def cost_rows(figures: Figures) -> list[Row]:
    """The judged totals: CPU per signup at 20 and 100/s, and the idle burn."""
    rows = []
    for rate in (20, 100):
        column = next((c for c in figures.cpu if c.title == f"@{rate}/s"), None)
        total = column.total_ms if column is not None else None
        rows.append(
            judged(
                f"CPU per signup @{rate}/s (platform + PostgreSQL + RabbitMQ)",
                millis(total),
                f"cpu_per_signup_ms_{rate}",
                total,
            )
        )
    idle = figures.idle.total_ms if figures.idle is not None else None
    rows.append(
        judged(
            "idle burn, no traffic (platform + PostgreSQL + RabbitMQ)",
            "n/a" if idle is None else f"{number(idle)} ms CPU per s",
            "idle_cpu_ms_per_s",
            idle,
        )
    )
    return rows


def judged(figure: str, measured: str, key: str, value: float | None) -> Row:
    target = TARGETS[key]
    return Row(figure, measured, target.text, verdict(target.met(value)))


def latency_rows(figures: Figures) -> list[Row]:
    rows = []
    for rate in sorted({5, 20, 50, 100} | set(figures.latency)):
        p50, p99 = figures.latency.get(rate, (math.nan, math.nan))
        for name, value in (("p50", p50), ("p99", p99)):
            key = f"e2e_{name}_ms_{rate}"
            figure = f"e2e commit -> last effect {name} @{rate}/s"
            rows.append(
                judged(figure, millis(value), key, value)
                if key in TARGETS
                else Row(figure, millis(value))
            )
    if figures.scaled_latency is not None:
        processes, p50, p99 = figures.scaled_latency
        rows.append(
            Row(
                f"  @100/s with {processes} processes per consumer: p50 / p99",
                f"{number(p50)} / {number(p99)} ms",
            )
        )
    return rows


def ratio_row(figure: str, key: str, pair: tuple[float, float] | None, names: str) -> Row:
    if pair is None:
        return judged(figure, "n/a", key, None)
    mine, baseline = pair
    ratio = mine / baseline if baseline else math.nan
    return judged(
        figure, f"{mine:,.0f} vs {baseline:,.0f} msg/s ({names}) = {ratio:.2f}x", key, ratio
    )


def rows(figures: Figures) -> list[Row]:
    steps = " ".join(f"{rate}{'+' if ok else '-'}" for rate, ok in figures.steps)
    best = figures.max_sustained_rate
    if best is not None:
        sustained: tuple[str, float | None] = (f"{best}/s", float(best))
    elif figures.steps:
        sustained = ("below the lowest step", 0.0)
    else:
        sustained = ("n/a", None)
    result = [
        *cpu_rows(figures),
        *cost_rows(figures),
        judged(
            "max sustained rate (10 s steps, effects <= 5 s after)",
            sustained[0],
            "max_sustained_rate",
            sustained[1],
        ),
    ]
    if steps:
        result.append(Row("  steps run (+ pass, - fail)", steps))
    result += latency_rows(figures)
    result.append(
        ratio_row(
            "relay vs raw pika, 1,000 in flight", "relay_ratio", figures.relay, "relay vs raw"
        )
    )
    result.append(
        ratio_row(
            "consumer handler vs bare pika loop",
            "handler_ratio",
            figures.handler,
            "runtime vs bare",
        )
    )
    if figures.handler_batched is not None and figures.handler is not None:
        bare = figures.handler[1]
        result.append(
            Row(
                "  the runtime with a batch handler",
                f"{figures.handler_batched:,.0f} msg/s = {figures.handler_batched / bare:.2f}x "
                "the bare loop",
            )
        )
    result.append(
        judged(
            "welcome email built (render + MIME), CPU per message",
            "n/a" if figures.welcome_ms is None else f"{figures.welcome_ms:.3f} ms",
            "welcome_email_ms",
            figures.welcome_ms,
        )
    )
    if figures.drain is None:
        result.append(judged("stats backlog drain", "n/a", "stats_drain_rate", None))
    else:
        events, per_second = figures.drain
        result.append(
            judged(
                f"stats backlog drain ({events:,} events)",
                f"{per_second:,.0f}/s",
                "stats_drain_rate",
                per_second,
            )
        )
    if figures.profile is not None:
        name, path = figures.profile
        result.append(Row(f"py-spy profile @100/s, busiest: {name}", path))
        result += [Row("", line) for line in figures.profile_top]
    return result


def render(report: Sequence[Row]) -> str:
    return table(
        ["figure", "measured", "target", ""],
        ([r.figure, r.measured, r.target, r.verdict] for r in report),
        left=(0, 1, 2, 3),
    )


def verdicts(report: Sequence[Row]) -> list[dict[str, str]]:
    """The judged rows, for the JSON file."""
    return [
        {
            "figure": r.figure.strip(),
            "measured": r.measured.strip(),
            "target": r.target,
            "verdict": r.verdict,
        }
        for r in report
        if r.target
    ]
