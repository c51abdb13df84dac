"""A process that called die_with_parent() gets SIGTERM when its parent is SIGKILLed."""

import os
import signal
import subprocess
import sys
import time

import pytest

from signup_shared import lifecycle

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux"),
]

# The parent starts the child, prints the child's pid and sleeps; the child arms the
# parent-death signal, says so, and would sleep for a minute.
CHILD = (
    "import sys, time\n"
    "from signup_shared import lifecycle\n"
    "lifecycle.die_with_parent()\n"
    "print('armed', flush=True)\n"
    "time.sleep(60)\n"
)
# A child whose stop hangs (it ignores SIGTERM) and keeps writing to its dead parent's pipe.
STUBBORN_CHILD = (
    "import signal, sys, time\n"
    "from signup_shared import lifecycle\n"
    "lifecycle.die_with_parent(grace=0.5)\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('armed', flush=True)\n"
    "while True:\n"
    "    try:\n"
    "        print('still logging', flush=True)\n"
    "    except BrokenPipeError:\n"
    "        pass\n"
    "    time.sleep(0.01)\n"
)
PARENT = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', sys.argv[1]], stdout=subprocess.PIPE)\n"
    "assert child.stdout.readline().strip() == b'armed'\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(60)\n"
)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def seconds_to_die_after_parent_kill(child: str) -> float:
    parent = subprocess.Popen([sys.executable, "-c", PARENT, child], stdout=subprocess.PIPE)
    assert parent.stdout is not None
    child_pid = int(parent.stdout.readline())
    assert alive(child_pid)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    started = time.monotonic()
    while alive(child_pid) and time.monotonic() < started + 10:
        time.sleep(0.05)
    assert not alive(child_pid), "the child outlived its SIGKILLed parent"
    return time.monotonic() - started


def test_child_dies_within_a_second_of_its_parent_being_killed() -> None:
    assert seconds_to_die_after_parent_kill(CHILD) < 1.0


def test_a_child_whose_stop_hangs_is_killed_after_the_grace_period() -> None:
    assert 0.4 < seconds_to_die_after_parent_kill(STUBBORN_CHILD) < 2.0


def test_a_child_whose_expected_parent_is_gone_does_not_start() -> None:
    env = {**os.environ, lifecycle.PARENT_ENV: str(os.getpid() + 1_000_000)}
    result = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, timeout=60)
    assert result.returncode != 0
    assert b"is gone" in result.stderr
    assert b"armed" not in result.stdout
