"""The Signup Platform benchmark, run by ``make bench``: about 8-10 minutes on a 2-core machine.

One run measures the figures of issue 20 (both ends: the idle burn and CPU per signup from 5
to 100 signups/s, latency, the maximum sustained rate) on this machine, prints them as ONE
table with the targets next to them, and writes them to ``var/bench/latest.json`` (with every
detail: each phase's per-process CPU, latency distributions per effect, the steps, every run of
the component benchmarks). Every part works in resources of its own (scratch databases, a
private RabbitMQ vhost, a private copy of the whole system) and removes them afterwards.

1. relay vs raw pika (``relay_bench``): 20,000 outbox rows published by ``OutboxRelay`` with
   confirms, against raw pika keeping 1,000 publishes unconfirmed; best of 3, same run.
2. handler vs bare loop (``handler_bench``): 5,000 messages, one small transaction each, the
   consumer runtime against a hand-written pika loop; best of 3. Beside it (no target), the
   runtime given a batch handler (one transaction and one ack per batch).
3. the welcome email's build (``welcome_bench``): CPU per message to render it (plan and
   language skeletons filled with the user's fields) and write its MIME bytes; best of 3.
4. the whole system in the production configuration (``e2e_bench``): the idle burn, CPU ms per
   second of every process with no traffic (``idle``, with py-spy profiles and dumps of every
   idle process under ``var/bench/``); CPU per signup per process at 5, 20, 50 and 100
   signups/s (``cpu``; the load generator's own CPU apart) and end-to-end latency at each
   (``effects``); a py-spy profile of the busiest process at 100/s (``pyspy``); a stats
   backlog drain, the maximum sustained rate in 10 s steps (``judge``), and the 100/s phase
   again with several processes per consuming service.

Environment:
    BENCH_QUICK=1                  every part small (about 2 minutes): for working on the bench
    BENCH_CONSUMER_PROCESSES=N     processes per consuming service in the scale-out repeat of
                                   the 100/s phase (default 2; 1 skips it)
    BENCH_PARTS=relay,handler,welcome,e2e  a subset of the parts
    BENCH_LOW=1                    the system part at the low end only: idle, 5/s and 20/s at
                                   full length (about 3 minutes; implies BENCH_PARTS=e2e)

The machine is shared: the table shows the CPU of every other process during each phase
("apart: other processes on the machine") and the JSON the load averages, to judge a run by.
"""

# ruff: noqa: E402  (the harness lives in tests/, which must be on sys.path first)
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import json
import os
import platform
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, TypeVar

import cpu
import e2e_bench
import handler_bench
import loadgen
import pyspy
import relay_bench
import report
import welcome_bench
from handler_bench import HandlerFigures
from relay_bench import RelayFigures
from system_figures import PhaseFigures, Plan, SystemFigures

from signup_shared.logging import configure_logging

FOLDER = REPO / "var" / "bench"
OUTPUT = FOLDER / "latest.json"
PARTS = ("relay", "handler", "welcome", "e2e")
T = TypeVar("T")


def attempt(name: str, errors: dict[str, str], measure: Callable[[], T]) -> T | None:
    """Run one part; a failure is reported and recorded, and the other parts still run."""
    try:
        return measure()
    except Exception as exc:
        traceback.print_exc()
        errors[name] = repr(exc)
        print(f"!! {name} failed: {exc!r}", flush=True)
        return None


def cpu_column(title: str, phase: PhaseFigures | None) -> report.CpuColumn | None:
    if phase is None or phase.cpu is None:
        return None
    machine = next(
        (v for k, v in phase.cpu.percent_of_core.items() if k.startswith("machine")), None
    )
    return report.CpuColumn(
        title,
        phase.cpu.per_signup_ms,
        phase.cpu.kinds,
        phase.cpu.processes,
        phase.cpu.total_ms,
        phase.cpu.complete,
        machine,
    )


def relative(path: str | None) -> str | None:
    if path is None or not Path(path).is_relative_to(REPO):
        return path
    return str(Path(path).relative_to(REPO))


def profile_lines(path: str | None) -> list[str]:
    """A few self-time lines of a top-functions file, short enough for the table."""
    if path is None or not Path(path).exists():
        return []
    return pyspy.self_lines(Path(path).read_text())


def figures_of(
    relay: RelayFigures | None,
    handler: HandlerFigures | None,
    system: SystemFigures | None,
    welcome: welcome_bench.WelcomeFigures | None = None,
) -> report.Figures:
    figures = report.Figures(
        relay=(relay.relay, relay.raw) if relay is not None else None,
        handler=(handler.platform, handler.bare) if handler is not None else None,
        handler_batched=handler.batched if handler is not None else None,
        welcome_ms=welcome.best_ms if welcome is not None else None,
    )
    if system is None:
        return figures
    columns = [
        *(cpu_column(f"@{p.rate}/s", p) for p in system.phases),
        *(cpu_column(f"@100/s x{system.scaled_processes}", p) for p in system.scaled),
    ]
    latency = {
        phase.rate: (phase.end_to_end_ms["p50"], phase.end_to_end_ms["p99"])
        for phase in system.phases
    }
    quiet = system.idle
    idle = None
    if quiet is not None:
        # the benchmark only sleeps while idle: its share is named like its reads in a phase
        names = {cpu.BENCH_GROUP: loadgen.READS_GROUP}
        idle = report.CpuColumn(
            "idle ms/s",
            {names.get(k, k): v for k, v in quiet.per_second_ms.items()},
            {names.get(k, k): v for k, v in quiet.kinds.items()},
            {names.get(k, k): v for k, v in quiet.processes.items()},
            quiet.total_ms,
            machine_percent=quiet.machine_percent,
        )
    scaled = system.scaled[0] if system.scaled else None
    profiled = next((p.profile for p in system.phases if p.profile is not None), None)
    return report.Figures(
        cpu=[c for c in columns if c is not None],
        idle=idle,
        max_sustained_rate=system.max_sustained_rate,
        steps=[(s.rate, s.passed) for s in system.steps],
        latency=latency,
        scaled_latency=None
        if scaled is None
        else (system.scaled_processes, scaled.end_to_end_ms["p50"], scaled.end_to_end_ms["p99"]),
        relay=figures.relay,
        handler=figures.handler,
        handler_batched=figures.handler_batched,
        welcome_ms=figures.welcome_ms,
        drain=(system.drain.events, system.drain.rate) if system.drain is not None else None,
        profile=None
        if profiled is None
        else (
            f"{profiled['name']} ({profiled['samples']} samples)",
            relative(profiled["top"]) or f"failed: {profiled['error']}",
        ),
        profile_top=profile_lines(profiled["top"]) if profiled is not None else [],
    )


def as_json(results: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    if (relay := results.get("relay")) is not None:
        document["relay"] = {
            **asdict(relay),
            "relay_best": relay.relay,
            "raw_best": relay.raw,
            "ratio": round(relay.ratio, 3),
        }
    if (handler := results.get("handler")) is not None:
        document["handler"] = {
            **asdict(handler),
            "platform_best": handler.platform,
            "bare_best": handler.bare,
            "ratio": round(handler.ratio, 3),
        }
    if (welcome := results.get("welcome")) is not None:
        document["welcome"] = {**asdict(welcome), "best_ms": welcome.best_ms}
    if (system := results.get("e2e")) is not None:
        document["system"] = {
            **asdict(system),
            "steps": [{**asdict(s), "passed": s.passed} for s in system.steps],
            "max_sustained_rate": system.max_sustained_rate,
        }
    return document


def main() -> int:
    # SIGTERM unwinds like Ctrl-C, so every part still removes what it created.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    processes = int(os.environ.get("BENCH_CONSUMER_PROCESSES") or (1 if quick else 2))
    low = os.environ.get("BENCH_LOW", "") not in ("", "0")
    parts = set((os.environ.get("BENCH_PARTS") or ",".join(PARTS)).split(","))
    if low:
        parts = {"e2e"}
    configure_logging("bench", "WARNING", "json")
    started, load_before = time.monotonic(), os.getloadavg()
    errors: dict[str, str] = {}
    results: dict[str, Any] = {}
    print(
        f"Signup Platform benchmark{' (QUICK: figures not comparable)' if quick else ''}: "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, load average "
        f"{load_before[0]:.2f}",
        flush=True,
    )
    if "relay" in parts:
        print("\n[1/4] outbox relay vs raw pika ...", flush=True)
        count, runs = (5_000, 1) if quick else (20_000, 3)
        results["relay"] = attempt("relay", errors, lambda: relay_bench.run(count, runs))
        if (relay := results["relay"]) is not None:
            print(f"  relay {relay.relay_runs} vs raw {relay.raw_runs} msg/s", flush=True)
    if "handler" in parts:
        print("\n[2/4] consumer handler vs bare loop ...", flush=True)
        count, runs = (1_000, 1) if quick else (5_000, 3)
        results["handler"] = attempt("handler", errors, lambda: handler_bench.run(count, runs))
        if (handler := results["handler"]) is not None:
            print(
                f"  runtime {handler.platform_runs} vs bare {handler.bare_runs} msg/s; "
                f"runtime with a batch handler {handler.batched_runs}",
                flush=True,
            )
    if "welcome" in parts:
        print("\n[3/4] the welcome email's build ...", flush=True)
        count, runs = (1_000, 1) if quick else (5_000, 3)
        results["welcome"] = attempt("welcome", errors, lambda: welcome_bench.run(count, runs))
        if (welcome := results["welcome"]) is not None:
            print(f"  {welcome.runs_ms} CPU ms per message", flush=True)
    if "e2e" in parts:
        print("\n[4/4] the whole system, production logging ...", flush=True)
        for old in FOLDER.glob("profile-*.txt"):  # an earlier run's profile of another process
            old.unlink()
        if low:
            plan = Plan.low()
        else:
            plan = Plan.quick(processes) if quick else Plan(consumer_processes=processes)
        results["e2e"] = attempt(
            "e2e", errors, lambda: e2e_bench.run(plan, FOLDER, lambda line: print(line, flush=True))
        )
    duration = time.monotonic() - started
    figures = figures_of(
        results.get("relay"), results.get("handler"), results.get("e2e"), results.get("welcome")
    )
    rows = report.rows(figures)
    load_after = os.getloadavg()
    print(
        f"\nResults ({duration / 60:.1f} min; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after; the machine is shared, see 'other processes'):\n"
    )
    print(report.render(rows), flush=True)
    FOLDER.mkdir(parents=True, exist_ok=True)
    document = {
        "finished_at": datetime.now(UTC).isoformat(),
        "duration_s": round(duration, 1),
        "quick": quick,
        "machine": {
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "accounting": {
            "cpu": "utime+stime from /proc/<pid>/stat before a phase and once all its effects "
            "are committed, divided by the signups accepted",
            "total": "platform processes (by role) + PostgreSQL backends of the stack's own "
            "databases (not all backends: the server is shared) + RabbitMQ beam.smp of the "
            "node on the AMQP port (shared by every vhost on the machine)",
            "apart": "dev sinks, supervisor, the bench itself and its PostgreSQL backends, "
            "py-spy, PostgreSQL's shared server processes, every other process",
            "end_to_end": "users.created_at to the last of email sent, SMS sent (when owed), "
            "space, stats counted, subscription active (see tests/bench/effects.py)",
        },
        "targets": report.verdicts(rows),
        "table": [asdict(row) for row in rows],
        **as_json(results),
        "errors": errors,
    }
    OUTPUT.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"\nwritten to {OUTPUT.relative_to(REPO)}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
