"""The idle burn: CPU the whole platform uses per second while no signup arrives.

After the stack has gone quiet (every earlier effect committed, and a few seconds more for timers
that a burst of work sets off), two ``/proc`` snapshots ``seconds`` apart give each process's CPU
per second of wall time. The benchmark does nothing meanwhile (no polling, no reads), so its own
share is ~0. Grouped like a load phase (``cpu.classify``), and per process: each platform process
by its stack name, the PostgreSQL backends per database (``<stack>_accounts`` -> ``accounts``),
RabbitMQ as one. RabbitMQ serves every vhost on the machine, so its idle figure includes whatever
else talks to it meanwhile (other engineers' tests): read it as an upper bound.

``profile_idle`` then attaches ``py-spy record`` (no ``--idle``: only threads on a CPU are
sampled) to every platform process at once, and ``py-spy dump`` to each, to show what wakes up.
"""

import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import cpu
import pyspy


@dataclass(frozen=True)
class IdleFigures:
    seconds: float
    per_second_ms: dict[str, float]  # group -> CPU ms per second of wall time
    kinds: dict[str, str]  # group -> cpu kind
    processes: dict[str, int]  # group -> processes
    per_process_ms: dict[str, float]  # one line per process (backends per database), ms/s
    total_ms: float  # platform + PostgreSQL backends + RabbitMQ, ms/s
    machine_percent: float  # the whole machine's busy share, % of one core
    profiles: dict[str, str | None]  # platform process -> its top-functions file (None: failed)


def backend_database(title: str, prefix: str) -> str | None:
    """``postgres: user bench1_stats 127.0.0.1(5) idle`` -> ``stats`` (None: not the stack's)."""
    words = title.removeprefix("postgres: ").split()
    if words and words[0].endswith(":"):
        words = words[1:]
    if words[:2] == ["autovacuum", "worker"] and len(words) > 2:
        database = words[2]
    elif len(words) >= 2:
        database = words[1]
    else:
        return None
    return database.removeprefix(f"{prefix}_") if database.startswith(f"{prefix}_") else None


def per_process(
    before: cpu.Snapshot, after: cpu.Snapshot, context: cpu.Context
) -> dict[str, float]:
    """CPU seconds per process label: platform processes by stack name (children included),
    PostgreSQL backends per database, every other group as ``cpu.classify`` names it."""
    used: dict[str, float] = defaultdict(float)
    for pid, proc in after.procs.items():
        earlier = before.procs.get(pid)
        ticks = proc.ticks - (earlier.ticks if earlier and earlier.command == proc.command else 0)
        if ticks <= 0:
            continue
        group = cpu.classify(proc, after.procs, context)
        label = group.name
        if group.kind in (cpu.PLATFORM, cpu.SINK, cpu.SUPERVISOR):
            label = _stack_name(pid, after.procs, context.named) or label
        elif group.kind == cpu.POSTGRES:
            label = f"PostgreSQL backends: {backend_database(proc.title, context.database_prefix)}"
        used[label] += ticks / cpu.TICKS_PER_SECOND
    return dict(used)


def _stack_name(pid: int, procs: Mapping[int, cpu.Proc], named: Mapping[int, str]) -> str | None:
    seen: set[int] = set()
    while pid in procs and pid not in seen:
        if pid in named:
            return named[pid]
        seen.add(pid)
        pid = procs[pid].ppid
    return None


def figures(before: cpu.Snapshot, after: cpu.Snapshot, context: cpu.Context) -> IdleFigures:
    """Per second of the window: every group, every process, the counted total."""
    used = cpu.usage(before, after, context)
    window = max(used.seconds, 1e-9)
    ordered = sorted(per_process(before, after, context).items(), key=lambda item: -item[1])
    machine = next((v for k, v in used.percent().items() if k.startswith("machine")), 0.0)
    return IdleFigures(
        seconds=round(used.seconds, 2),
        per_second_ms={g.name: round(1000 * g.seconds / window, 2) for g in used.groups},
        kinds={g.name: g.kind for g in used.groups},
        processes={g.name: g.processes for g in used.groups},
        per_process_ms={label: round(1000 * s / window, 2) for label, s in ordered},
        total_ms=round(1000 * used.counted_seconds() / window, 2),
        machine_percent=machine,
        profiles={},
    )


def measure(context: Callable[[], cpu.Context], seconds: float) -> IdleFigures:
    """Snapshot, sleep ``seconds`` doing nothing, snapshot."""
    before = cpu.snapshot()
    time.sleep(seconds)
    after = cpu.snapshot()
    return figures(before, after, context())


def profile_idle(pids: Mapping[str, int], folder: Path, seconds: float) -> dict[str, str | None]:
    """py-spy on every process at once (on-CPU threads, all of them, not only the GIL holder),
    plus one ``py-spy dump`` each (every thread's stack: where each one waits)."""
    results: dict[str, str | None] = {}

    def one(name: str, pid: int) -> None:
        profile = pyspy.record(f"idle-{name}", pid, folder, seconds, gil=False, subprocesses=True)
        results[name] = str(profile.top) if profile.top is not None else None
        dump = subprocess.run(
            [str(pyspy.PY_SPY), "dump", "--pid", str(pid), "--nonblocking"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        (folder / f"dump-idle-{name}.txt").write_text(dump.stdout + dump.stderr)

    threads = [threading.Thread(target=one, args=item, daemon=True) for item in pids.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + 90)
    return results
