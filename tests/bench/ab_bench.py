"""Side-by-side A/B of CPU per signup: two (or more) private stacks, each running the sources
of one checkout, with fixed-rate phases interleaved (A B, B A, A B, ...).

On a shared machine single runs wander by 10 % or more; interleaving the variants in one
session, each in its own stack started at the same time, puts them under the same load. Each
variant is ``label=PYTHONPATH`` (the ``src`` folders of a checkout, e.g. one made with
``git archive <commit> | tar -x -C /tmp/a``); an empty path runs this working tree::

    P=$(ls -d /tmp/a/shared/src /tmp/a/contracts/src /tmp/a/services/*/src | paste -sd:)
    .venv/bin/python tests/bench/ab_bench.py before=$P after=

Environment: ``AB_ROUNDS`` (default 2), ``AB_RATE`` (20), ``AB_SIGNUPS`` (600); or
``AB_PHASES=20x600,100x1000`` for several rates, each interleaved in every round (rate 20 for
every variant, then rate 100, ...). Prints one line per phase and a table per process and rate
(each round's figure), and writes it as JSON to ``var/bench/ab-<time>.json``. CPU is counted
as in ``make bench`` (``e2e_bench.Measure``).
"""

# ruff: noqa: E402  (the harness lives in tests/, which must be on sys.path first)
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parents[1]
for folder in (BENCH.parent, BENCH):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import json
import os
import time
from typing import Any

from e2e_bench import PRODUCTION_ENV, Measure
from effects import EffectReader
from loadgen import offer
from resources import unique
from system_figures import Phase

from platform_harness.stack import Stack
from signup_shared.logging import configure_logging

FOLDER = REPO / "var" / "bench"


def variants(argv: list[str]) -> dict[str, str]:
    """``label=PYTHONPATH`` arguments, in order."""
    found = dict(arg.split("=", 1) for arg in argv if "=" in arg)
    if not found:
        raise SystemExit(__doc__)
    return found


def phases() -> list[Phase]:
    """``AB_PHASES`` (``rate x signups``, comma-separated), else ``AB_RATE`` x ``AB_SIGNUPS``."""
    spec = os.environ.get("AB_PHASES") or (
        f"{os.environ.get('AB_RATE', '20')}x{os.environ.get('AB_SIGNUPS', '600')}"
    )
    return [
        Phase(int(rate), int(signups), cpu=True, latency=True)
        for rate, signups in (item.strip().split("x") for item in spec.split(","))
    ]


def figures(measure: Measure, tag: str, phase: Phase) -> dict[str, Any]:
    result = measure.phase(tag, phase)
    assert result.cpu is not None
    return {
        "total": round(result.cpu.total_ms, 2),
        **{name: round(ms, 2) for name, ms in result.cpu.per_signup_ms.items()},
        "p50": result.end_to_end_ms["p50"],
        "p99": result.end_to_end_ms["p99"],
    }


def main() -> None:
    configure_logging("bench", "WARNING", "json")
    paths = variants(sys.argv[1:])
    rounds = int(os.environ.get("AB_ROUNDS", "2"))
    stacks: dict[str, Stack] = {}
    measures: dict[str, Measure] = {}
    results: dict[str, list[dict[str, Any]]] = {}
    try:
        for label, path in paths.items():
            env = dict(PRODUCTION_ENV) | ({"PYTHONPATH": path} if path else {})
            stacks[label] = Stack(name=unique(f"ab{label}"), extra_env=env)
            stacks[label].start()
            measures[label] = Measure(stacks[label], EffectReader(stacks[label]), FOLDER, print)
            offer(measures[label].url, "warmup", 20, 3.0)
        for number in range(rounds):
            order = list(paths) if number % 2 == 0 else list(reversed(paths))
            for phase in phases():
                for label in order:
                    key = f"{label}@{phase.rate}"
                    tag = f"{label}-{phase.rate}-r{number}"
                    results.setdefault(key, []).append(figures(measures[label], tag, phase))
                    print(key, number, json.dumps(results[key][-1]), flush=True)
    finally:
        FOLDER.mkdir(parents=True, exist_ok=True)  # the figures first: closing may fail
        (FOLDER / f"ab-{int(time.time())}.json").write_text(json.dumps(results, indent=1))
        for measure in measures.values():
            measure.reader.close()
        for label, stack in stacks.items():
            try:
                stack.close()
            except Exception as exc:  # the others are still closed
                print(f"closing the {label} stack failed ({exc!r}): remove {stack.name} by hand")
    names = sorted({name for rows in results.values() for row in rows for name in row})
    print("\n" + "".join(f"{key:>26}" for key in ["", *results]))
    for name in names:
        cells = [" / ".join(str(row.get(name, "-")) for row in rows) for rows in results.values()]
        print(f"{name[:26]:<26}" + "".join(f"{cell:>26}" for cell in cells))


if __name__ == "__main__":
    main()
