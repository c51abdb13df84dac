"""Cluster fault scenarios: the whole platform on the three-node cluster, two instances of every
consumer and relay, 1,000 signups while a broker node (or a service instance) fails.

Each scenario then waits for the system to settle and checks every effect of every signup
against the accounts database (platform_harness.checks.settle: one email, one SMS when a phone
was given, one space, an active subscription, stats equal to the truth, every service and retry
queue empty, no dead letter), and prints the same figures line as tests/faults.

    make faults-cluster            (starts the cluster: deploy/cluster/cluster.sh start)
"""

import os
import time
from collections.abc import Callable

import pytest

from platform_harness import stack as stack_module
from platform_harness.checks import settle
from platform_harness.load import Load
from platform_harness.stack import Stack

from .conftest import RELAYS, Cluster

SIGNUPS = int(os.environ.get("CLUSTER_SIGNUPS", "1000"))
RATE = float(os.environ.get("CLUSTER_RATE", "40"))
# A rolling restart takes about a minute here: a slower load spans all three restarts.
RATES = {"cluster_rolling_restart": 12.0}
# The first instance of each consumer (the second is "<role>-2") and relay ("<role>#2").
FIRST_INSTANCES = ("accounts-consumer-1", "notifications-1", "provisioning-1", "stats-1", *RELAYS)


def kill_busiest_leader(cluster: Cluster, stack: Stack, load: Load) -> str:
    """SIGKILL the node that leads the most quorum queues of the platform, mid-load; restart it."""
    time.sleep(5.0)
    node, leads = cluster.busiest_leader(stack.name)
    cluster.kill(node)
    time.sleep(10.0)
    cluster.start_node(node)
    return f"killed {node} (leader of {leads} queues) for 10 s"


def stop_app_30s(cluster: Cluster, stack: Stack, load: Load) -> str:
    """``rabbitmqctl stop_app`` on one node for 30 s (the Erlang VM stays up)."""
    time.sleep(5.0)
    node, _ = cluster.busiest_leader(stack.name)
    cluster.ctl(node, "stop_app")
    time.sleep(30.0)
    cluster.ctl(node, "start_app")
    cluster.ctl(node, "await_startup")
    return f"stop_app on {node} for 30 s"


def rolling_restart(cluster: Cluster, stack: Stack, load: Load) -> str:
    """Stop and start each node in turn, the next once the cluster is whole again."""
    time.sleep(3.0)
    for node in cluster.nodes:
        cluster.stop_node(node)
        time.sleep(2.0)
        cluster.start_node(node)
        cluster.wait_healthy(stack.name, timeout=120)
    return "restarted rabbit-1, -2, -3 one at a time"


def kill_one_instance_each(cluster: Cluster, stack: Stack, load: Load) -> str:
    """SIGKILL the first instance of every consumer and relay; the second carries on alone."""
    time.sleep(5.0)
    for name in FIRST_INSTANCES:
        stack.signal(name)
        del stack.processes[name]
    return f"killed {', '.join(FIRST_INSTANCES)}"


SCENARIOS: dict[str, Callable[[Cluster, Stack, Load], str]] = {
    "cluster_leader_killed": kill_busiest_leader,
    "cluster_node_stopped_30s": stop_app_30s,
    "cluster_rolling_restart": rolling_restart,
    "cluster_instance_killed": kill_one_instance_each,
}


@pytest.mark.timeout(900)  # start, load, fault and settle: several minutes on this machine
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_nothing_lost_nothing_twice_on_the_cluster(
    cluster: Cluster, cluster_stack: Stack, scenario: str
) -> None:
    stack = cluster_stack
    load = Load(
        stack.url("accounts", "/signups"),
        tag=stack.name,
        count=SIGNUPS,
        rate=RATES.get(scenario, RATE),
    )
    started = time.monotonic()
    load.start()
    what = SCENARIOS[scenario](cluster, stack, load)
    fault_seconds = time.monotonic() - started
    load.join()
    done = time.monotonic()
    load_seconds = done - started
    cluster.wait_healthy(stack.name, timeout=180)
    stack_module.MANAGEMENT = cluster.management_url()
    print(
        f"\n{scenario}: {what}; load {load_seconds:.0f} s, fault {fault_seconds:.0f} s, "
        f"retries={load.retries}"
    )
    figures = settle(stack, scenario, done, timeout=420)
    assert figures.signups == SIGNUPS
    assert (figures.lost, figures.duplicated, figures.dlq) == (0, 0, 0)
