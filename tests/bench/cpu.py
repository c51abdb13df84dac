"""Who used the CPU during a window, per role: every process of a ``Stack``, PostgreSQL, RabbitMQ.

Read from ``/proc`` (Linux): ``utime + stime`` (fields 14 and 15 of ``/proc/<pid>/stat``, in
clock ticks) of every process on the machine, before and after a window, and the machine-wide busy
share from ``/proc/stat``. Every process is put in one group (a role) of one kind:

- platform: a process the stack started (and its descendants), by Procfile name with the instance
  suffix dropped (``notifications-2`` counts as ``notifications``);
- sink / supervisor: the dev sinks and any process supervisor, reported apart (production has
  neither);
- postgres: the PostgreSQL backends of the stack's own databases (``postgres: user <stack>_<svc>
  ...``, autovacuum workers on them included), minus the backends serving the benchmark's own
  reads (found by ``application_name`` in ``pg_stat_activity``);
- rabbitmq: ``beam.smp`` and its helpers; the broker is shared with everything else on the
  machine, so other vhosts' traffic lands here too;
- apart: the benchmark (load generator and reads, with its PostgreSQL backends), the profiler,
  PostgreSQL's shared server processes (WAL writer, checkpointer, ...), and everything else.

"platform + PostgreSQL + RabbitMQ" is the sum of the first, fourth and fifth kinds.
"""

import contextlib
import os
import re
import time
from collections import defaultdict
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1

PLATFORM, POSTGRES, RABBITMQ = "platform", "postgres", "rabbitmq"
SINK, SUPERVISOR, BENCH, PROFILER, PG_SHARED, OTHER = (
    "sink",
    "supervisor",
    "bench",
    "profiler",
    "postgres-shared",
    "other",
)
COUNTED = (PLATFORM, POSTGRES, RABBITMQ)  # the kinds in "platform + PostgreSQL + RabbitMQ"
KIND_ORDER = (PLATFORM, POSTGRES, RABBITMQ, SINK, SUPERVISOR, BENCH, PROFILER, PG_SHARED, OTHER)

POSTGRES_BACKENDS = "PostgreSQL backends of the stack's databases"
POSTGRES_SHARED = "PostgreSQL server processes (shared)"
RABBITMQ_GROUP = "RabbitMQ (beam.smp; the broker is shared)"
BENCH_GROUP = "bench (load generator, reads)"
BENCH_BACKENDS = "bench's PostgreSQL backends"
PROFILER_GROUP = "py-spy"
OTHER_GROUP = "other processes on the machine"
RABBITMQ_COMMANDS = frozenset({"beam.smp", "erl_child_setup", "inet_gethost", "epmd"})
SUPERVISOR_COMMANDS = frozenset({"supervisord", "honcho"})
INSTANCE_SUFFIX = re.compile(r"^(?P<role>.+?)[-_:.#@](?:\d+)$")


@dataclass(frozen=True)
class Proc:
    pid: int
    ppid: int
    command: str  # the kernel's comm (field 2), e.g. "postgres", "beam.smp", "notifications"
    title: str  # /proc/<pid>/cmdline joined by spaces (PostgreSQL puts its process title here)
    ticks: int  # utime + stime


@dataclass(frozen=True)
class Snapshot:
    at: float
    procs: dict[int, Proc]
    machine_busy: int
    machine_total: int


@dataclass(frozen=True)
class Group:
    name: str
    kind: str


# pure: who is who ---------------------------------------------------------------------------
def parse_stat(pid: int, stat: str, title: str) -> Proc:
    """One ``/proc/<pid>/stat`` line; the command may contain spaces and parentheses."""
    command = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): ppid is field 4, utime and stime are fields 14 and 15
    return Proc(pid, int(fields[1]), command, title, int(fields[11]) + int(fields[12]))


def role_of(name: str) -> str:
    """A stack process name without its instance number: ``stats-2`` -> ``stats``."""
    found = INSTANCE_SUFFIX.match(name)
    return found["role"] if found else name


def kind_of_stack_process(name: str, command: str) -> str:
    if "sink" in name.split("-"):
        return SINK
    if "supervisor" in name or command in SUPERVISOR_COMMANDS:
        return SUPERVISOR
    return PLATFORM


@dataclass(frozen=True)
class Context:
    """What the classification needs to know about the stack and the benchmark."""

    named: Mapping[int, str]  # pid -> stack process name (Procfile entry, maybe with instance)
    database_prefix: str  # the stack's databases are "<prefix>_<service>"
    bench_pids: frozenset[int] = frozenset()
    bench_backends: frozenset[int] = frozenset()
    profiler_pids: frozenset[int] = frozenset()
    broker_pid: int | None = None  # the RabbitMQ node the stack uses (others may run more nodes)


def _ancestor(pid: int, procs: Mapping[int, Proc], wanted: Container[int]) -> int | None:
    """``pid`` itself or its nearest ancestor that is in ``wanted``."""
    seen: set[int] = set()
    while pid in procs and pid not in seen:
        if pid in wanted:
            return pid
        seen.add(pid)
        pid = procs[pid].ppid
    return pid if pid in wanted else None


def _postgres_database(title: str) -> str | None:
    """``postgres: [cluster:] user db host(port) state`` -> db; ``autovacuum worker db`` -> db;
    None for the server's own processes (``postgres: 15/main: walwriter``)."""
    if not title.startswith("postgres: "):
        return None
    words = title[len("postgres: ") :].split()
    if words and words[0].endswith(":"):  # cluster_name (Debian sets "15/main")
        words = words[1:]
    if words[:2] == ["autovacuum", "worker"]:
        return words[2] if len(words) > 2 else None
    if len(words) >= 3 and ("(" in words[2] or words[2] == "[local]"):
        return words[1]
    return None


def classify(proc: Proc, procs: Mapping[int, Proc], context: Context) -> Group:
    """The group (role) and kind one process's CPU is reported under."""
    if proc.pid in context.bench_pids:
        return Group(BENCH_GROUP, BENCH)
    if proc.pid in context.profiler_pids or proc.command == "py-spy":
        return Group(PROFILER_GROUP, PROFILER)
    owner = _ancestor(proc.pid, procs, context.named)
    if owner is not None:
        name = context.named[owner]
        command = procs[owner].command if owner in procs else proc.command
        return Group(role_of(name), kind_of_stack_process(name, command))
    if proc.command == "postgres" or proc.title.startswith("postgres: "):
        if proc.pid in context.bench_backends:
            return Group(BENCH_BACKENDS, BENCH)
        database = _postgres_database(proc.title)
        if database is not None and database.startswith(f"{context.database_prefix}_"):
            return Group(POSTGRES_BACKENDS, POSTGRES)
        if database is None:
            return Group(POSTGRES_SHARED, PG_SHARED)
        return Group(OTHER_GROUP, OTHER)
    if proc.command in RABBITMQ_COMMANDS:
        broker = context.broker_pid
        if broker is None or _ancestor(proc.pid, procs, (broker,)) is not None:
            return Group(RABBITMQ_GROUP, RABBITMQ)
    return Group(OTHER_GROUP, OTHER)


# pure: what each group used -------------------------------------------------------------------
@dataclass(frozen=True)
class GroupUsage:
    name: str
    kind: str
    seconds: float  # CPU seconds in the window
    processes: int  # how many processes contributed (e.g. 2 notifications consumers)


@dataclass(frozen=True)
class Usage:
    """CPU used per group over a window of ``seconds``, and the machine's busy share (0..1)."""

    seconds: float
    groups: tuple[GroupUsage, ...]  # kind order, then busiest first
    machine_busy: float
    processes: dict[str, list[int]] = field(default_factory=dict)  # group -> pids

    def counted_seconds(self) -> float:
        """CPU seconds of platform + PostgreSQL backends + RabbitMQ."""
        return sum(g.seconds for g in self.groups if g.kind in COUNTED)

    def percent(self) -> dict[str, float]:
        """Percent of one core per group, plus the whole machine (of ``100 * CORES``)."""
        shares = {g.name: round(100 * g.seconds / self.seconds, 1) for g in self.groups}
        shares[f"machine (of {100 * CORES}%)"] = round(100 * CORES * self.machine_busy, 1)
        return shares

    def per_item_ms(self, items: int) -> dict[str, float]:
        """CPU milliseconds per item (e.g. per signup) per group."""
        return {g.name: round(1000 * g.seconds / max(items, 1), 2) for g in self.groups}

    def total_per_item_ms(self, items: int) -> float:
        return round(1000 * self.counted_seconds() / max(items, 1), 2)


def usage(before: Snapshot, after: Snapshot, context: Context) -> Usage:
    """Ticks used between the snapshots, per group (a process born in the window counts whole;
    one that died in it is lost, its ticks cannot be read any more)."""
    ticks: dict[Group, int] = defaultdict(int)
    pids: dict[Group, list[int]] = defaultdict(list)
    for pid, proc in after.procs.items():
        earlier = before.procs.get(pid)
        used = proc.ticks - (earlier.ticks if earlier and earlier.command == proc.command else 0)
        group = classify(proc, after.procs, context)
        ticks[group] += max(used, 0)
        pids[group].append(pid)
    rank = {kind: i for i, kind in enumerate(KIND_ORDER)}
    ordered = sorted(ticks.items(), key=lambda item: (rank[item[0].kind], -item[1]))
    span = after.machine_total - before.machine_total
    return Usage(
        seconds=after.at - before.at,
        groups=tuple(
            GroupUsage(g.name, g.kind, used / TICKS_PER_SECOND, _count(g, pids[g], after, before))
            for g, used in ordered
            if used > 0 or g.kind == PLATFORM
        ),
        machine_busy=(after.machine_busy - before.machine_busy) / span if span else 0.0,
        processes={g.name: sorted(p) for g, p in pids.items() if g.kind == PLATFORM},
    )


def _count(group: Group, pids: list[int], after: Snapshot, before: Snapshot) -> int:
    """Processes that did some work in the window (idle PostgreSQL backends do not count)."""
    return sum(
        1
        for pid in pids
        if after.procs[pid].ticks - (before.procs[pid].ticks if pid in before.procs else 0) > 0
        or group.kind == PLATFORM
    )


# impure: reading /proc ------------------------------------------------------------------------
def _read(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return parse_stat(pid, stat, raw.replace(b"\0", b" ").decode(errors="replace").strip())


def _machine() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def snapshot() -> Snapshot:
    procs = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (proc := _read(int(entry.name))) is not None:
            procs[proc.pid] = proc
    busy, total = _machine()
    return Snapshot(time.monotonic(), procs, busy, total)


def listening_pid(port: int) -> int | None:
    """The process listening on TCP ``port`` (IPv4 or IPv6), found through socket inodes."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{fields[9]}]")
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for fd in os.scandir(f"/proc/{entry.name}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(fd.path) in inodes:
                        return int(entry.name)
    return None


def ticks_of(pids: list[int]) -> dict[int, int]:
    """Current utime + stime of a few processes (those that still exist)."""
    found = {}
    for pid in pids:
        if (proc := _read(pid)) is not None:
            found[pid] = proc.ticks
    return found
