"""A py-spy profile of the busiest platform process while a load phase runs.

``BusiestProfiler`` is started together with the load: it watches the CPU ticks of the stack's
platform processes for ``pick_after`` seconds, then attaches ``py-spy record`` to the one that
used the most and records for ``seconds``:

- ``--nonblocking``: reads the target's memory without pausing it, so the target's own CPU
  figures are not disturbed (py-spy's CPU is reported apart);
- ``--gil``: only the thread holding the GIL is sampled, so threads waiting on a socket or a
  condition do not show up as busy (without it they do, on a loaded machine).

The raw output (collapsed stacks, one ``frame;frame;... count`` line per stack: open it in
speedscope.app or feed it to flamegraph.pl) is kept, and ``top_functions`` turns it into a short
text of where the time goes (self time and inclusive time per function).
"""

import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cpu import ticks_of

PY_SPY = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "py-spy"
RATE = 100  # samples per second
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
NOISE = re.compile(r"^.*/(?:site-packages|src|lib/python3\.\d+)/")


@dataclass(frozen=True)
class Profile:
    name: str  # the stack process profiled
    pid: int
    seconds: float
    raw: Path | None
    top: Path | None
    samples: int
    error: str | None = None


# pure: reading collapsed stacks ---------------------------------------------------------------
def short_frame(frame: str) -> str:
    """``handle (/x/site-packages/pkg/mod.py:12)`` -> ``handle (pkg/mod.py)``."""
    found = FRAME.match(frame.strip())
    if found is None:
        return frame.strip()
    return f"{found['function']} ({NOISE.sub('', found['file'])})"


def parse_collapsed(text: str) -> list[tuple[list[str], int]]:
    """``a;b;c 12`` lines -> ([a, b, c], 12), frames shortened; malformed lines are skipped."""
    stacks = []
    for line in text.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if stack and count.isdigit():
            stacks.append(([short_frame(f) for f in stack.split(";") if f], int(count)))
    return stacks


def top_functions(
    stacks: list[tuple[list[str], int]], limit: int = 15
) -> tuple[int, list[tuple[str, int]], list[tuple[str, int]]]:
    """(total samples, busiest functions by self samples, by inclusive samples).

    Self: samples where the function is the innermost frame. Inclusive: samples where it is
    anywhere on the stack (counted once per stack even when it recurses). py-spy puts a thread
    or process frame first when asked to; a frame without a file is counted like any other.
    """
    total = sum(count for _, count in stacks)
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    for frames, count in stacks:
        if frames:
            own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    return total, own.most_common(limit), inclusive.most_common(limit)


GIL_ONLY = "the thread holding the GIL only: Python CPU time"
ON_CPU = "every thread on a CPU, idle threads left out"


def top_text(
    name: str, seconds: float, stacks: list[tuple[list[str], int]], sampled: str = GIL_ONLY
) -> str:
    total, own, inclusive = top_functions(stacks)
    lines = [
        f"py-spy profile of {name}: {total} samples over {seconds:.0f} s at {RATE}/s ({sampled})",
        "",
    ]
    for title, rows in (("self", own), ("inclusive", inclusive)):
        lines.append(f"top functions by {title} time:")
        lines.extend(f"  {100 * n / max(total, 1):5.1f}%  {frame}" for frame, n in rows)
        lines.append("")
    return "\n".join(lines)


def self_lines(text: str, count: int = 4, width: int = 48) -> list[str]:
    """The first ``count`` lines of the self-time block of ``top_text``, cut to ``width``."""
    lines = text.splitlines()
    start = next(
        (i for i, line in enumerate(lines) if line.startswith("top functions by self")), None
    )
    if start is None:
        return []
    block = lines[start + 1 :]
    block = block[: block.index("")] if "" in block else block
    found = [f"self {line.strip()}" for line in block[:count]]
    return [line if len(line) <= width else line[: width - 3] + "..." for line in found]


def busiest(before: Mapping[int, int], after: Mapping[int, int]) -> int | None:
    """The pid whose ticks grew the most (None when nothing ran)."""
    grown = {pid: after[pid] - before.get(pid, 0) for pid in after}
    return max(grown, key=lambda pid: (grown[pid], -pid)) if grown else None


# impure: running py-spy -------------------------------------------------------------------------
class BusiestProfiler:
    """Profiles the busiest of ``candidates`` (name -> pid) on a thread of its own."""

    def __init__(
        self, candidates: Mapping[str, int], folder: Path, seconds: float, pick_after: float = 2.0
    ) -> None:
        self.candidates = dict(candidates)
        self.folder, self.seconds, self.pick_after = folder, seconds, pick_after
        self.result: Profile | None = None
        self.spy_pid: int | None = None
        self._thread = threading.Thread(target=self._run, name="profiler", daemon=True)

    def start(self) -> "BusiestProfiler":
        self._thread.start()
        return self

    def join(self) -> Profile | None:
        self._thread.join(timeout=self.seconds + self.pick_after + 60)
        return self.result

    def _run(self) -> None:
        pids = list(self.candidates.values())
        before = ticks_of(pids)
        time.sleep(self.pick_after)
        pid = busiest(before, ticks_of(pids))
        if pid is None:
            return
        name = next(n for n, p in self.candidates.items() if p == pid)
        self.result = record(name, pid, self.folder, self.seconds, self)


def record(
    name: str,
    pid: int,
    folder: Path,
    seconds: float,
    owner: BusiestProfiler | None = None,
    gil: bool = True,
    subprocesses: bool = False,
) -> Profile:
    """``py-spy record`` for ``seconds``; ``gil``: only the GIL holder is sampled (Python CPU
    time); without it every thread that is on a CPU (py-spy leaves idle threads out)."""
    folder.mkdir(parents=True, exist_ok=True)
    raw, top = folder / f"profile-{name}.txt", folder / f"profile-{name}-top.txt"
    command = [
        str(PY_SPY),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(round(seconds)),
        "--rate",
        str(RATE),
        "--nonblocking",
        *(["--gil"] if gil else []),
        *(["--subprocesses"] if subprocesses else []),
        "--format",
        "raw",
        "--output",
        str(raw),
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if owner is not None:
        owner.spy_pid = process.pid
    output, _ = process.communicate(timeout=seconds + 60)
    if process.returncode != 0 or not raw.exists():
        message = output.decode(errors="replace").strip().splitlines()
        return Profile(name, pid, seconds, None, None, 0, message[0] if message else "failed")
    stacks = parse_collapsed(raw.read_text())
    top.write_text(top_text(name, seconds, stacks, GIL_ONLY if gil else ON_CPU))
    return Profile(name, pid, seconds, raw, top, sum(c for _, c in stacks))
