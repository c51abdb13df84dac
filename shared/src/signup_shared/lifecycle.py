"""Every platform process dies with the process that started it.

A process manager (supervisord under ``make run``, the test harness in tests) starts each
platform process. If the manager itself dies (SIGKILL, the OOM killer, a closed terminal), its
children would otherwise live on: half a platform keeps serving, and the next ``make run`` finds
its ports busy. So each process asks the kernel, first thing, to send it SIGTERM when its parent
dies (Linux ``prctl(PR_SET_PDEATHSIG)``); SIGTERM runs the usual graceful stop.

The parent may already have died between the fork and the ``prctl`` call. A manager that wants
that race closed exports its own pid as ``SIGNUP_PARENT_PID`` (``deploy/run.sh`` does, since it
``exec``\\ s supervisord); if our parent is no longer that process we exit at once. The variable
is removed from our environment so that processes we start do not inherit a wrong expectation.

The kernel signals when the parent *thread* that forked us exits, so a manager must start its
children from a thread that lives as long as it does (supervisord is single-threaded).

A graceful stop after the parent's death is bounded: our output usually went into a pipe the
dead parent read, so every log line would now fail with EPIPE (in the middle of the stop), and
on a busy machine a consumer's stop plus interpreter teardown took over 10 s. A watcher thread
(blocked on a pidfd of the parent, no polling) therefore points stdout/stderr at /dev/null the
moment the parent is gone and has the kernel end the process (SIGALRM) if it is still there
``GRACE_SECONDS`` later.
That is safe: every process is built to survive SIGKILL (unacked messages are redelivered and
the inbox drops repeats; unmarked outbox rows are republished; a cut request is retried).
"""

import ctypes
import ctypes.util
import os
import select
import signal
import sys
import threading
from collections.abc import Callable, MutableMapping

PARENT_ENV = "SIGNUP_PARENT_PID"
PR_SET_PDEATHSIG = 1
GRACE_SECONDS = 3.0

Prctl = Callable[[int, int], int]
Watch = Callable[[int, float], object]


class ParentGoneError(SystemExit):
    """The process that started us died before we could ask to die with it."""


def _libc_prctl() -> Prctl | None:
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    function = libc.prctl
    function.argtypes = [ctypes.c_int, ctypes.c_ulong]
    function.restype = ctypes.c_int

    def prctl(option: int, value: int) -> int:
        return int(function(option, value))

    return prctl


def _silence_output() -> None:
    """Point stdout and stderr at /dev/null: whoever read them is gone."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)


def _after_parent_death(pidfd: int, grace: float) -> None:
    select.select([pidfd], [], [])  # a pidfd becomes readable when its process has exited
    # The kernel ends the process with SIGALRM (default action) when the timer expires: no
    # Python code has to run then, which matters because a slow stop is mostly interpreter
    # teardown, during which this thread could never take the GIL again.
    signal.setitimer(signal.ITIMER_REAL, grace)
    _silence_output()


def watch_parent(parent: int, grace: float) -> threading.Thread | None:
    """Bound the stop after ``parent`` dies (see the module's doc); None without pidfds."""
    try:
        pidfd = os.pidfd_open(parent)
    except (AttributeError, OSError):  # not Linux >= 5.3: the parent-death signal alone
        return None
    thread = threading.Thread(
        target=_after_parent_death, args=(pidfd, grace), name="parent-watch", daemon=True
    )
    thread.start()
    return thread


def die_with_parent(
    signum: int = signal.SIGTERM,
    *,
    grace: float = GRACE_SECONDS,
    environ: MutableMapping[str, str] | None = None,
    getppid: Callable[[], int] = os.getppid,
    prctl: Prctl | None = None,
    watch: Watch = watch_parent,
) -> bool:
    """Ask for ``signum`` when our parent dies; exit if the expected parent is already gone.

    Returns whether the parent-death signal is armed (False where the OS has no such thing).
    """
    environ = os.environ if environ is None else environ
    prctl = prctl or _libc_prctl()
    armed = False
    if prctl is not None:
        if prctl(PR_SET_PDEATHSIG, int(signum)) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        armed = True
    parent = getppid()
    expected = environ.pop(PARENT_ENV, "")
    if expected.isdigit() and parent != int(expected):
        raise ParentGoneError(
            f"parent process {expected} is gone (our parent is now {parent}): not starting"
        )
    if armed:
        watch(parent, grace)
    return armed
