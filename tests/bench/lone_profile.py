"""Where a lone message's CPU goes: one private stack at a steady low rate, every platform
process profiled at once, plus the CPU per signup of the same window.

    .venv/bin/python tests/bench/lone_profile.py            # 20/s for 30 s
    LONE_RATE=100 LONE_SECONDS=10 .venv/bin/python tests/bench/lone_profile.py

Each platform process gets ``py-spy record --nonblocking -r 200`` without ``--gil`` and without
``--idle``: the threads the OS shows running are sampled, those asleep in ``select``/``futex``
are left out (not exactly: without ``--gil`` some waiting shows up as CPU). ``LONE_GIL=1``
samples only the thread holding the GIL (Python CPU time). ``LONE_TOOL=strace`` runs
``strace -c -f`` on each process instead (system calls per signup; it slows the processes, so
its CPU figures are not to be read then); ``LONE_TOOL=none`` neither (clean CPU figures).
Whatever the tool, the CPU of every thread of every platform process is read from
``/proc/<pid>/task/<tid>/stat`` before and after (exact; ``threads.txt``, threads named by
``py-spy dump``). ``LONE_PYTHONPATH`` runs another checkout's sources, as ``ab_bench`` does.
Output: ``var/bench/lone-<rate>-<time>/`` (raw collapsed stacks, ``*-top.txt``,
``strace-*.txt``, ``threads.txt``, ``cpu.json``).
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
import re
import signal
import subprocess
import threading
import time

from e2e_bench import PRODUCTION_ENV, Measure
from effects import EffectReader
from loadgen import offer
from pyspy import GIL_ONLY, ON_CPU, PY_SPY, parse_collapsed, top_text
from resources import unique
from system_figures import Phase

from platform_harness.stack import Stack
from signup_shared.logging import configure_logging

SAMPLE_RATE = 200
TICKS = os.sysconf("SC_CLK_TCK")
THREAD_LINE = re.compile(
    r'^Thread (?P<tid>0x[0-9A-Fa-f]+|\d+) \((?:idle|active)[^)]*\): "(?P<name>[^"]*)"'
)


def spy(name: str, pid: int, folder: Path, seconds: float) -> None:
    raw = folder / f"{name}.txt"
    command = [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(round(seconds))]
    command += ["--rate", str(SAMPLE_RATE), "--nonblocking", "--format", "raw"]
    command += ["--output", str(raw), *(["--gil"] if os.environ.get("LONE_GIL") else [])]
    subprocess.run(command, capture_output=True, timeout=seconds + 60, check=False)
    if raw.exists():
        stacks = parse_collapsed(raw.read_text())
        sampled = GIL_ONLY if os.environ.get("LONE_GIL") else ON_CPU
        (folder / f"{name}-top.txt").write_text(top_text(name, seconds, stacks, sampled))


def strace(name: str, pid: int, folder: Path, seconds: float) -> None:
    output = folder / f"strace-{name}.txt"
    process = subprocess.Popen(
        ["strace", "-c", "-f", "-p", str(pid), "-o", str(output)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(seconds)
    process.send_signal(signal.SIGINT)
    process.wait(timeout=30)


TOOLS = {"py-spy": spy, "strace": strace, "none": None}


def thread_ticks(pid: int) -> dict[int, int]:
    """utime + stime (clock ticks) of every thread of ``pid``."""
    ticks = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks[int(task.name)] = int(fields[11]) + int(fields[12])
    return ticks


def thread_names(pid: int) -> dict[int, str]:
    """OS thread id -> Python thread name and its innermost frame now (``py-spy dump``)."""
    dump = subprocess.run(
        [str(PY_SPY), "dump", "--pid", str(pid), "--nonblocking"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    names: dict[int, str] = {}
    current = None
    for line in dump.splitlines():
        found = THREAD_LINE.match(line)
        if found:
            current = int(found["tid"], 0)
            names[current] = found["name"]
        elif current in names and line.startswith("    ") and "@" not in names[current]:
            names[current] += " @ " + line.strip().split(" (")[0]  # the innermost frame
    return names


def per_thread(pids: dict[str, int], before: dict[str, dict[int, int]], signups: int) -> str:
    lines = []
    for name, pid in pids.items():
        after = thread_ticks(pid)
        names = thread_names(pid)
        rows = sorted(((after[t] - before[name].get(t, 0), t) for t in after), reverse=True)
        lines.append(f"{name}:")
        for ticks, tid in rows:
            if ticks:
                ms = 1000 * ticks / TICKS / signups
                lines.append(f"  {ms:6.3f} ms/signup  {tid}  {names.get(tid, '?')}")
    return "\n".join(lines)


def main() -> None:
    configure_logging("bench", "WARNING", "json")
    rate = int(os.environ.get("LONE_RATE", "20"))
    seconds = float(os.environ.get("LONE_SECONDS", "30"))
    path = os.environ.get("LONE_PYTHONPATH", "")
    folder = REPO / "var" / "bench" / f"lone-{rate}-{int(time.time())}"
    folder.mkdir(parents=True, exist_ok=True)
    env = dict(PRODUCTION_ENV) | ({"PYTHONPATH": path} if path else {})
    stack = Stack(name=unique("lone"), extra_env=env)
    stack.start()
    reader = EffectReader(stack)
    try:
        measure = Measure(stack, reader, folder, print)
        offer(measure.url, "warmup", 20, 3.0)
        measure.quiet()
        tool = TOOLS[os.environ.get("LONE_TOOL", "py-spy")]
        threads = [
            threading.Thread(target=tool, args=(name, pid, folder, seconds - 2))
            for name, pid in measure.platform_pids().items()
            if tool is not None
        ]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        pids = measure.platform_pids()
        before = {name: thread_ticks(pid) for name, pid in pids.items()}
        result = measure.phase(f"lone{rate}", Phase(rate, round(rate * seconds), cpu=True))
        for thread in threads:
            thread.join()
        assert result.cpu is not None
        figures = {name: round(ms, 3) for name, ms in result.cpu.per_signup_ms.items()}
        figures["total"] = round(result.cpu.total_ms, 2)
        threads_text = per_thread(pids, before, result.signups)
        (folder / "threads.txt").write_text(threads_text)
        print(threads_text)
        (folder / "cpu.json").write_text(json.dumps(figures, indent=1))
        print(json.dumps(figures, indent=1))
        print(f"profiles in {folder}")
    finally:
        reader.close()
        stack.close()


if __name__ == "__main__":
    main()
