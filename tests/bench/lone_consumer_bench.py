"""The consumer runtime's own CPU per lone message: one ``ConsumerRuntime`` (a handler that does
nothing, production logging) fed one message at a time at a steady low rate, per variant.

    P=$(ls -d /tmp/a/shared/src /tmp/a/contracts/src | paste -sd:)
    .venv/bin/python tests/bench/lone_consumer_bench.py before=$P after=

Each variant is ``label=PYTHONPATH`` as in ``ab_bench`` (empty: this working tree). Every run
starts a consumer process of its own on a private vhost, sends ``LONE_MESSAGES`` (default 400)
``UserSignedUp`` messages at ``LONE_RATE`` per second (default 20) and reads the process's CPU
(``time.process_time``: every thread) from the 20th message handled to the last, divided by the
messages in between: the main thread's wake-ups, reading the frames, the hand-off to the
handler thread and back, decoding, logging, metrics and the ack, with no database in the way.
Variants alternate (A B, B A, ...) for ``LONE_ROUNDS`` rounds (default 3).
``LONE_PROFILE=<file>`` records each consumer with ``py-spy record`` (threads on a CPU) into
that file (the last run's stays).
"""

# ruff: noqa: E402  (the harness lives in tests/, which must be on sys.path first)
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
for folder in (BENCH.parent, BENCH):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

import dataclasses
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from typing import Any

from pyspy import PY_SPY
from resources import private_vhost

from signup_shared.events import Envelope, UserSignedUp
from signup_shared.logging import configure_logging
from signup_shared.messaging.consumer import ConsumerRuntime, Subscription
from signup_shared.messaging.publisher import ConfirmingPublisher
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.messaging.wire import OutgoingMessage
from signup_shared.testing import user_signed_up

WARM_UP = 20
QUEUE = ConsumerQueue("lone", "accounts.user_signed_up")


def consume(url: str, count: int, result: Path) -> None:
    """The child: consume ``count`` messages, write the CPU per message to ``result``."""
    configure_logging("lone", "INFO", "json")
    marks: dict[str, tuple[float, float]] = {}
    handled = 0
    done = threading.Event()

    def handle(_envelope: Envelope[Any]) -> None:
        nonlocal handled
        handled += 1
        if handled == WARM_UP:
            marks["start"] = os.times()[:2]
        if handled == count:
            marks["end"] = os.times()[:2]
            done.set()

    runtime = ConsumerRuntime("lone", url, [Subscription(QUEUE, (UserSignedUp,), handle)])
    stop = threading.Event()
    thread = threading.Thread(target=runtime.run, args=(stop,), name="runtime")
    thread.start()
    while not runtime.connected:
        time.sleep(0.01)
    result.write_text("ready")
    done.wait(timeout=600)
    stop.set()
    thread.join(timeout=30)
    (user_0, system_0), (user_1, system_1) = marks["start"], marks["end"]
    user, system = (
        1000 * (b - a) / (count - WARM_UP) for a, b in ((user_0, user_1), (system_0, system_1))
    )
    figures = {"cpu_ms_per_message": round(user + system, 4), "user": round(user, 4)}
    result.write_text(json.dumps(figures | {"system": round(system, 4)}))


def profile(pid: int, seconds: float) -> "subprocess.Popen[bytes] | None":
    """With ``LONE_PROFILE=<file>``: ``py-spy record`` of the consumer into that file."""
    output = os.environ.get("LONE_PROFILE")
    if not output:
        return None
    command = [str(PY_SPY), "record", "--pid", str(pid), "--duration", str(round(seconds))]
    command += ["--rate", "200", "--nonblocking", "--format", "raw", "--output", output]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_once(url: str, python_path: str, count: int, rate: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder) / "result"
        env = dict(os.environ) | ({"PYTHONPATH": python_path} if python_path else {})
        child = subprocess.Popen(
            [sys.executable, __file__, "--consume", url, str(count), str(result)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 60
            while not (result.exists() and result.read_text() == "ready"):
                if time.monotonic() > deadline or child.poll() is not None:
                    raise RuntimeError("the consumer did not start")
                time.sleep(0.05)
            spy = profile(child.pid, count / rate)
            publisher = ConfirmingPublisher(url)
            try:
                start = time.perf_counter()
                for index in range(count):
                    delay = start + index / rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    message = OutgoingMessage.from_envelope(user_signed_up("accounts"))
                    publisher.publish_batch(
                        [dataclasses.replace(message, exchange="", routing_key=QUEUE.name)]
                    )
            finally:
                publisher.close()
            child.wait(timeout=120)
            if spy is not None:
                spy.wait(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        figures: dict[str, float] = json.loads(result.read_text())
        return figures


def main() -> None:
    configure_logging("bench", "WARNING", "json")
    variants = dict(arg.split("=", 1) for arg in sys.argv[1:] if "=" in arg)
    if not variants:
        raise SystemExit(__doc__)
    count = int(os.environ.get("LONE_MESSAGES", "400"))
    rate = float(os.environ.get("LONE_RATE", "20"))
    rounds = int(os.environ.get("LONE_ROUNDS", "3"))
    results: dict[str, list[float]] = {label: [] for label in variants}
    system: dict[str, list[float]] = {label: [] for label in variants}
    with private_vhost("lone") as url:
        for number in range(rounds):
            order = list(variants) if number % 2 == 0 else list(reversed(variants))
            for label in order:
                figures = run_once(url, variants[label], count, rate)
                results[label].append(figures["cpu_ms_per_message"])
                system[label].append(figures["system"])
                print(f"{label} round {number}: {json.dumps(figures)} ms/message", flush=True)
    for label, figures in results.items():
        print(
            f"{label}: median {statistics.median(figures):.3f} ms of CPU per message "
            f"({', '.join(f'{f:.3f}' for f in figures)}), of it in the kernel "
            f"{statistics.median(system[label]):.3f}"
        )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--consume":
        consume(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
    else:
        main()
