"""The quiet-period soak (``make soak``): 10 minutes on a private stack, with default settings.

Signups at 5/s for 4 minutes, a pause of 2 minutes with no traffic at all, 5/s for 4 more
minutes; then the platform must settle (every effect of every signup, once), and the RabbitMQ
log must show no connection of the stack closed for missed heartbeats, the relay logs no
``relay.retrying``. Prints what it found; exits 1 if anything was.

    SOAK_LOAD_SECONDS=240 SOAK_PAUSE_SECONDS=120 SOAK_RATE=5   (the defaults)
"""

import os
import sys
import time

from platform_harness.brokerlog import BrokerLog
from platform_harness.checks import settle
from platform_harness.load import Load
from platform_harness.scenarios import RELAY_PROGRAMS, LogMark
from platform_harness.stack import running_stack

LOAD_SECONDS = float(os.environ.get("SOAK_LOAD_SECONDS", "240"))
PAUSE_SECONDS = float(os.environ.get("SOAK_PAUSE_SECONDS", "120"))
RATE = float(os.environ.get("SOAK_RATE", "5"))


def main() -> int:
    with running_stack(
        NOTIFICATIONS_SWEEP_INTERVAL_SECONDS="5", NOTIFICATIONS_SWEEP_GRACE_SECONDS="10"
    ) as stack:
        broker = BrokerLog(stack.name).mark()
        logs = LogMark(stack, RELAY_PROGRAMS)
        started = time.monotonic()
        count = int(LOAD_SECONDS * RATE)
        url = stack.url("accounts", "/signups")
        for offset, phase in enumerate(("before", "after")):
            print(f"soak: {count} signups at {RATE:g}/s ({phase} the pause)", flush=True)
            load = Load(url, tag=f"{stack.name}-{phase}", count=count, rate=RATE)
            load.offset = offset * count
            load.start().join()
            if phase == "before":
                print(f"soak: quiet for {PAUSE_SECONDS:g}s", flush=True)
                time.sleep(PAUSE_SECONDS)
        figures = settle(stack, "soak", time.monotonic())
        stack.assert_running()
        missed = broker.missed_heartbeats()
        retrying = {
            name: [line for line in logs.since(name).splitlines() if "relay.retrying" in line]
            for name in RELAY_PROGRAMS
        }
        minutes = (time.monotonic() - started) / 60
        print(
            f"soak: {minutes:.1f} min, signups={figures.signups} lost={figures.lost} "
            f"duplicated={figures.duplicated} missed_heartbeat_closes={len(missed)} "
            + " ".join(f"{name}_retrying={len(lines)}" for name, lines in retrying.items())
        )
        for line in missed:
            print(f"  rabbitmq: {line}")
        for name, lines in retrying.items():
            for line in lines:
                print(f"  {name}: {line}")
        clean = not missed and not any(retrying.values())
        return 0 if clean and (figures.lost, figures.duplicated) == (0, 0) else 1


if __name__ == "__main__":
    sys.exit(main())
