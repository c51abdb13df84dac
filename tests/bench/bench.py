"""The Signup Platform benchmark, run by ``make bench``; about four minutes on a 2-core machine.

One run measures everything below on this machine, prints a report and writes it as JSON to
``var/bench/latest.json``. Every part works in resources of its own (scratch databases, a
private RabbitMQ vhost, or a private copy of the whole system) and removes them afterwards.

1. relay vs raw pika (messages/s, best of 3, all runs printed; ``relay_bench``).
   relay: N=20,000 committed ``UserSignedUp`` outbox rows published by
   ``OutboxRelay.publish_pending()`` with a ``ConfirmingPublisher`` (batches of 500: claim rows
   ``FOR UPDATE SKIP LOCKED``, publish pipelined, wait for every confirm, mark sent, commit).
   raw pika: ``baselines.raw_pika_publish_rate``, the same number of persistent messages with
   confirms and 1,000 in flight, no database. The ratio is what the database round trips and
   the at-least-once bookkeeping cost against the broker's own limit.
2. handler vs bare loop (messages/s, best of 3; ``handler_bench``). M=5,000 pre-loaded
   messages, each one transaction (inbox row + counter upsert) then an ack, prefetch 50:
   ``ConsumerRuntime`` + ``session_handler(exactly_once(...))`` against a hand-written pika loop.
   Target: the runtime at >= 70% of the bare loop.
3. end to end (``e2e_bench``; effect timestamps in ``effects``), the whole system started once:
   a. latency at 100 signups/s for 20 s, open loop: from each signup's accounts commit to the
      last of its effects (welcome email sent, space created, counted by stats): p50/p95/p99/max,
      and p50/p99 per effect (plus the email being recorded).
   b. max sustained signup rate: 10 s steps of rising offered rate; a step passes with >= 95% of
      the offered rate achieved, no errors, and every effect committed within 5 s of its end.
      That tolerates a backlog that drains within the 5 s, so the highest passing step whose
      p99 stayed under 1 s is reported too. CPU per process shows where the time goes.
4. a summary block.

Options (``--help``) shorten a run or pick parts; ``make bench`` runs the defaults.
"""

# ruff: noqa: E402  (the harness lives in tests/, which must be on sys.path first)
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

import argparse
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

import e2e_bench
import handler_bench
import relay_bench
from e2e_bench import E2EFigures, LatencyFigures, StepFigures
from figures import ms, rate, table
from handler_bench import HandlerFigures
from relay_bench import RelayFigures

from signup_shared.logging import configure_logging

HANDLER_TARGET = 0.70
OUTPUT = REPO / "var" / "bench" / "latest.json"
PARTS = ("relay", "handler", "e2e")
T = TypeVar("T")


# report sections ---------------------------------------------------------------------------
def relay_section(figures: RelayFigures) -> list[str]:
    runs = zip(figures.relay_runs, figures.raw_runs, strict=True)
    return [
        f"1. Outbox relay vs raw pika: {figures.count:,} messages, best of "
        f"{len(figures.relay_runs)}",
        table(
            ["run", "relay", "raw pika"],
            ([i, rate(a), rate(b)] for i, (a, b) in enumerate(runs, start=1)),
        ),
        f"   best: relay {rate(figures.relay)} vs raw pika {rate(figures.raw)} "
        f"({figures.ratio:.0%})",
    ]


def handler_section(figures: HandlerFigures) -> list[str]:
    runs = zip(figures.platform_runs, figures.bare_runs, strict=True)
    verdict = "met" if figures.ratio >= HANDLER_TARGET else "NOT met"
    return [
        f"2. Consumer handler vs bare loop: {figures.count:,} messages, best of "
        f"{len(figures.bare_runs)}",
        table(
            ["run", "ConsumerRuntime", "bare pika loop"],
            ([i, rate(a), rate(b)] for i, (a, b) in enumerate(runs, start=1)),
        ),
        f"   best: runtime {rate(figures.platform)} vs bare loop {rate(figures.bare)} "
        f"({figures.ratio:.0%}); target >= {HANDLER_TARGET:.0%}: {verdict}",
    ]


def rate_or_none(value: int | None) -> str:
    return f"{value}/s" if value is not None else "none"


def failures(kinds: dict[str, int]) -> str:
    return f" ({', '.join(f'{n} {kind}' for kind, n in kinds.items())})" if kinds else ""


def busiest(cpu: dict[str, float], count: int = 4) -> str:
    named = [(k, v) for k, v in cpu.items() if not k.startswith("machine")]
    return ", ".join(f"{name} {value:.0f}%" for name, value in named[:count])


def machine(cpu: dict[str, float]) -> str:
    return next((f"{v:.0f}%" for k, v in cpu.items() if k.startswith("machine")), "n/a")


def latency_section(figures: LatencyFigures) -> list[str]:
    e2e, http = figures.end_to_end_ms, figures.http_ms
    settled = (
        f"last effect committed {figures.settled_after_s:.1f} s after the last request was due"
        if figures.settled_after_s is not None
        else f"{figures.incomplete} signups still incomplete after the settle timeout"
    )
    return [
        f"3a. End-to-end latency at {figures.rate:.0f} signups/s for {figures.seconds:.0f} s: "
        f"{figures.requests:,} requests, HTTP achieved {figures.achieved_rate:.0f}/s, "
        f"{figures.errors} errors{failures(figures.failures)}",
        f"   commit -> last effect: p50 {ms(e2e['p50'])}, p95 {ms(e2e['p95'])}, "
        f"p99 {ms(e2e['p99'])}, max {ms(e2e['max'])} ({e2e['count']:,} complete signups)",
        table(
            ["effect (from the accounts commit)", "p50", "p99"],
            (
                [name.replace("_", " "), ms(values["p50"]), ms(values["p99"])]
                for name, values in figures.effects_ms.items()
            ),
        ),
        f"   HTTP response time p50 {ms(http['p50'])}, p99 {ms(http['p99'])}; generator lag "
        f"p99 {ms(figures.generator_lag_p99_ms)}; {settled}",
        f"   CPU: machine {machine(figures.cpu_percent)} busy; "
        f"{busiest(figures.cpu_percent)} (of one core)",
    ]


def step_row(step: StepFigures) -> list[object]:
    done = step.effects_done_after_s
    return [
        f"{step.offered_rate}/s",
        f"{step.achieved_rate:.1f}/s",
        f"{step.errors}{failures(step.failures)}",
        "n/a" if done is None else f"{done:.1f} s" + ("" if step.effects_in_time else " LATE"),
        ms(step.p50_ms),
        ms(step.p99_ms),
        ms(step.http_p99_ms),
        machine(step.cpu_percent),
        busiest(step.cpu_percent, 3),
        "pass" if step.passed else "FAIL",
    ]


def steps_section(figures: E2EFigures) -> list[str]:
    best = figures.max_sustained_rate
    lines = [
        f"3b. Maximum sustained signup rate ({figures.step_seconds:.0f} s steps; pass = >= 95% "
        "achieved, no errors, all effects within 5 s of the step's end)",
        table(
            [
                "offered",
                "achieved",
                "errors",
                "effects done",
                "p50",
                "p99",
                "HTTP p99",
                "CPU",
                "busiest (% of a core)",
                "",
            ],
            (step_row(step) for step in figures.steps),
            left=(0, 8, 9),
        ),
        f"   max sustained signup rate: {f'{best}/s' if best else 'below the first step'}; "
        f"highest with p99 under 1 s: {rate_or_none(figures.max_unqueued_rate)}",
    ]
    reference = next((s for s in reversed(figures.steps) if s.passed), None)
    if reference is not None:
        per_signup = reference.cpu_ms_per_signup
        costs = ", ".join(f"{k} {v:.1f}" for k, v in per_signup.items())
        lines.append(
            f"   CPU ms per signup at {reference.offered_rate}/s: {sum(per_signup.values()):.0f} "
            f"in all ({costs})"
        )
    return lines


def summary(results: dict[str, Any]) -> list[str]:
    lines = []
    if (relay := results.get("relay")) is not None:
        lines.append(
            f"relay: {rate(relay.relay)} vs raw pika {rate(relay.raw)} ({relay.ratio:.0%})"
        )
    if (handler := results.get("handler")) is not None:
        lines.append(
            f"handler: {rate(handler.platform)} vs bare loop {rate(handler.bare)} "
            f"({handler.ratio:.0%})"
        )
    if (e2e := results.get("e2e")) is not None:
        latency, best = e2e.latency, e2e.max_sustained_rate
        lines.append(
            f"e2e @{latency.rate:.0f}/s: p50 {ms(latency.end_to_end_ms['p50'])}, "
            f"p99 {ms(latency.end_to_end_ms['p99'])} (effects: notifications sent, space, stats)"
        )
        lines.append(
            f"max sustained signup rate: {rate_or_none(best)} "
            f"(with p99 under 1 s: {rate_or_none(e2e.max_unqueued_rate)})"
        )
        if best is not None and best < latency.rate:
            lines.append(
                f"  (the {latency.rate:.0f}/s latency run is above that rate: its figures are "
                "mostly queueing)"
            )
    return lines


# JSON ----------------------------------------------------------------------------------------
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
            "target": HANDLER_TARGET,
            "target_met": handler.ratio >= HANDLER_TARGET,
        }
    if (e2e := results.get("e2e")) is not None:
        document["e2e"] = {
            "latency": asdict(e2e.latency),
            "steps": [{**asdict(s), "passed": s.passed} for s in e2e.steps],
            "step_seconds": e2e.step_seconds,
            "max_sustained_rate": e2e.max_sustained_rate,
            "max_rate_with_p99_under_1s": e2e.max_unqueued_rate,
        }
    return document


def write_json(document: dict[str, Any]) -> None:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(document, indent=2, default=str) + "\n")


# running -------------------------------------------------------------------------------------
def attempt(name: str, errors: dict[str, str], measure: Callable[[], T]) -> T | None:
    """Run one part; a failure is reported and recorded, and the other parts still run."""
    try:
        return measure()
    except Exception as exc:
        traceback.print_exc()
        errors[name] = repr(exc)
        print(f"!! {name} failed: {exc!r}", flush=True)
        return None


def say(lines: list[str]) -> None:
    print("\n" + "\n".join(lines), flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset")
    parser.add_argument("--relay-messages", type=int, default=20_000)
    parser.add_argument("--handler-messages", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of parts 1 and 2 (best kept)")
    parser.add_argument("--latency-rate", type=float, default=e2e_bench.LATENCY_RATE)
    parser.add_argument("--latency-seconds", type=float, default=e2e_bench.LATENCY_SECONDS)
    parser.add_argument(
        "--steps", default=",".join(map(str, e2e_bench.STEP_RATES)), help="offered rates, /s"
    )
    parser.add_argument("--step-seconds", type=float, default=e2e_bench.STEP_SECONDS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so every part still removes what it created.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parts = set(args.parts.split(","))
    configure_logging("bench", "WARNING", "json")
    started = time.monotonic()
    errors: dict[str, str] = {}
    results: dict[str, Any] = {}
    print(f"Signup Platform benchmark: {os.cpu_count()} cores, Python {platform.python_version()}")
    if "relay" in parts:
        print("\n[1/3] outbox relay vs raw pika ...", flush=True)
        results["relay"] = attempt(
            "relay", errors, lambda: relay_bench.run(args.relay_messages, args.runs)
        )
        if results["relay"] is not None:
            say(relay_section(results["relay"]))
    if "handler" in parts:
        print("\n[2/3] consumer handler vs bare loop ...", flush=True)
        results["handler"] = attempt(
            "handler", errors, lambda: handler_bench.run(args.handler_messages, args.runs)
        )
        if results["handler"] is not None:
            say(handler_section(results["handler"]))
    if "e2e" in parts:
        print("\n[3/3] the whole system ...", flush=True)
        plan = e2e_bench.Plan(
            args.latency_rate,
            args.latency_seconds,
            tuple(int(r) for r in args.steps.split(",")),
            args.step_seconds,
        )
        logs = REPO / "var" / "bench" / "logs"
        results["e2e"] = attempt("e2e", errors, lambda: e2e_bench.run(plan, keep_logs_in=logs))
        if results["e2e"] is not None:
            say(latency_section(results["e2e"].latency))
            say(steps_section(results["e2e"]))
    duration = time.monotonic() - started
    lines = summary(results)
    say(["Summary", *(f"  {line}" for line in lines), f"  ({duration / 60:.1f} min)"])
    write_json(
        {
            "finished_at": datetime.now(UTC).isoformat(),
            "duration_s": round(duration, 1),
            "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
            **as_json(results),
            "summary": lines,
            "errors": errors,
        }
    )
    print(f"written to {OUTPUT.relative_to(REPO)}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
