"""Who used the CPU during a window: per stack process, PostgreSQL, RabbitMQ and the benchmark.

Read from ``/proc`` (Linux): user + system ticks of every process, summed per group, and the
machine-wide busy share from ``/proc/stat``. Figures are percent of ONE core (200% = both cores
of a 2-core machine busy).
"""

import os
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1
POSTGRES, RABBITMQ, BENCH, OTHER = "postgres", "rabbitmq", "bench (load generator)", "other"
RABBITMQ_COMMANDS = frozenset({"beam.smp", "erl_child_setup", "inet_gethost", "epmd"})


@dataclass(frozen=True)
class Sample:
    at: float
    ticks: dict[int, tuple[str, int]]
    machine_busy: int
    machine_total: int


def _process(pid: int) -> tuple[str, int] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    command = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    return command, int(fields[11]) + int(fields[12])


def _machine() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


class CpuMeter:
    def __init__(self, named: Mapping[str, int]) -> None:
        self.names = {pid: name for name, pid in named.items()}
        self.names[os.getpid()] = BENCH

    def _group(self, pid: int, command: str) -> str:
        if pid in self.names:
            return self.names[pid]
        if command == "postgres":
            return POSTGRES
        return RABBITMQ if command in RABBITMQ_COMMANDS else OTHER

    def sample(self) -> Sample:
        ticks = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit() and (found := _process(int(entry.name))) is not None:
                command, used = found
                ticks[int(entry.name)] = (self._group(int(entry.name), command), used)
        busy, total = _machine()
        return Sample(time.monotonic(), ticks, busy, total)


@dataclass(frozen=True)
class Usage:
    """CPU seconds per group over a window of ``seconds``, and the machine's busy share."""

    seconds: float
    groups: dict[str, float]
    machine_busy: float

    def percent(self) -> dict[str, float]:
        """Percent of one core per group, busiest first, plus the whole machine."""
        shares = {group: round(100 * used / self.seconds, 1) for group, used in self.groups.items()}
        shares[f"machine (of {100 * CORES}%)"] = round(100 * CORES * self.machine_busy, 1)
        return shares

    def per_item_ms(self, items: int) -> dict[str, float]:
        """CPU milliseconds per item (e.g. per signup) per group, busiest first."""
        return {group: round(1000 * used / max(items, 1), 1) for group, used in self.groups.items()}


def usage(before: Sample, after: Sample) -> Usage:
    per_group: dict[str, int] = defaultdict(int)
    for pid, (group, used) in after.ticks.items():
        per_group[group] += used - before.ticks.get(pid, (group, 0))[1]
    busiest = sorted(per_group.items(), key=lambda item: -item[1])
    busy = (after.machine_busy - before.machine_busy) / (after.machine_total - before.machine_total)
    return Usage(
        seconds=after.at - before.at,
        groups={group: used / TICKS_PER_SECOND for group, used in busiest if used > 0},
        machine_busy=busy,
    )
