"""The local three-node RabbitMQ cluster (deploy/cluster/cluster.sh) as test fixtures.

These tests need the cluster running and restart its nodes, so they run only in
``make faults-cluster`` (which starts it and sets ``CLUSTER_TESTS=1``); elsewhere they are
skipped with that reason.
"""

import contextlib
import os
import signal
import subprocess
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from platform_harness import stack as stack_module
from platform_harness.stack import REPO, Stack, free_port, wait_until

SCRIPT = REPO / "deploy" / "cluster" / "cluster.sh"
CLUSTER_DIR = Path(os.environ.get("CLUSTER_DIR", REPO / "var" / "cluster"))
INDEXES = (1, 2, 3)
# Mirror the classic queues (retry delays, unrouted) on every node, as cluster.sh does for "/".
CLASSIC_POLICY = {
    "pattern": r"(\.retry\.|^events\.unrouted$)",
    "apply-to": "queues",
    "definition": {"ha-mode": "all", "ha-sync-mode": "automatic"},
    "priority": 0,
}
# The harness runs two instances of each consuming role (Stack(consumer_processes=2), named
# ``<role>-1`` and ``<role>-2``); the second relay of each service is started here.
RELAYS = ("accounts-relay", "provisioning-relay")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    enabled = os.environ.get("CLUSTER_TESTS") == "1"
    for item in items:
        if "/tests/cluster/" not in str(item.path):
            continue
        item.add_marker(pytest.mark.faults)
        if not enabled:
            item.add_marker(
                pytest.mark.skip(
                    reason="needs the local three-node RabbitMQ cluster: make faults-cluster"
                )
            )


class Cluster:
    """rabbit-1..3@localhost: AMQP 568i, management 1568i (see deploy/cluster/cluster.sh)."""

    nodes = tuple(f"rabbit-{i}@localhost" for i in INDEXES)

    @staticmethod
    def index(node: str) -> int:
        return int(node.split("@")[0].rsplit("-", 1)[1])

    def urls(self, vhost: str = "/") -> str:
        quoted = urllib.parse.quote(vhost, safe="")
        return ";".join(f"amqp://guest:guest@127.0.0.1:{5680 + i}/{quoted}" for i in INDEXES)

    def management_url(self) -> str:
        """A management API of a node that answers now."""
        for i in INDEXES:
            try:
                httpx.get(
                    f"http://127.0.0.1:{15680 + i}/api/overview", auth=("guest", "guest"), timeout=3
                ).raise_for_status()
            except httpx.HTTPError:
                continue
            return f"http://guest:guest@127.0.0.1:{15680 + i}"
        raise RuntimeError("no cluster node answers its management API")

    def api(self, method: str, path: str, body: Any = None) -> Any:
        response = httpx.request(
            method, self.management_url() + path, json=body, auth=("guest", "guest"), timeout=30
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def ctl(self, node: str, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            ["rabbitmqctl", "-n", node, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode:
            raise RuntimeError(f"rabbitmqctl -n {node} {' '.join(args)}: {done.stderr}")
        return done.stdout

    def script(self, *args: str) -> None:
        done = subprocess.run(
            [str(SCRIPT), *args], capture_output=True, text=True, timeout=300, check=False
        )
        if done.returncode:
            raise RuntimeError(f"cluster.sh {' '.join(args)}: {done.stdout}{done.stderr}")

    def running_nodes(self) -> list[str]:
        rows = self.api("GET", "/api/nodes?columns=name,running")
        return sorted(row["name"] for row in rows if row.get("running"))

    def consumers(self, vhost: str) -> dict[str, int]:
        quoted = urllib.parse.quote(vhost, safe="")
        rows = self.api("GET", f"/api/queues/{quoted}?columns=name,consumers")
        return {row["name"]: int(row.get("consumers") or 0) for row in rows}

    def quorum_queues(self, vhost: str) -> list[dict[str, Any]]:
        quoted = urllib.parse.quote(vhost, safe="")
        rows = self.api("GET", f"/api/queues/{quoted}?columns=name,type,leader,members,online")
        return [row for row in rows if row.get("type") == "quorum"]

    def busiest_leader(self, vhost: str) -> tuple[str, int]:
        leaders = Counter(str(row.get("leader")) for row in self.quorum_queues(vhost))
        node, count = leaders.most_common(1)[0]
        return node, count

    def kill(self, node: str) -> None:
        """SIGKILL the node's Erlang VM (no clean shutdown at all)."""
        pid = int((CLUSTER_DIR / node.split("@")[0] / "rabbit.pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not _alive(pid), 30, message=f"{node} dead")

    def start_node(self, node: str) -> None:
        self.script("start-node", str(self.index(node)))

    def stop_node(self, node: str) -> None:
        self.script("stop-node", str(self.index(node)))

    def wait_healthy(self, vhost: str, timeout: float = 180) -> None:
        """Every node runs and every quorum queue of ``vhost`` has a leader and 3 members online."""

        def healthy() -> bool:
            try:
                if self.running_nodes() != sorted(self.nodes):
                    return False
                return all(
                    row.get("leader") and len(row.get("online") or []) == 3
                    for row in self.quorum_queues(vhost)
                )
            except (httpx.HTTPError, RuntimeError):
                return False

        wait_until(healthy, timeout, 1.0, "the cluster healthy again")

    def add_vhost(self, vhost: str) -> None:
        quoted = urllib.parse.quote(vhost, safe="")
        self.api("PUT", f"/api/vhosts/{quoted}")
        self.api(
            "PUT",
            f"/api/permissions/{quoted}/guest",
            {"configure": ".*", "write": ".*", "read": ".*"},
        )
        self.api("PUT", f"/api/policies/{quoted}/classic-mirrored", CLASSIC_POLICY)

    def delete_vhost(self, vhost: str) -> None:
        with contextlib.suppress(httpx.HTTPStatusError):
            self.api("DELETE", f"/api/vhosts/{urllib.parse.quote(vhost, safe='')}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    cluster = Cluster()
    running = cluster.running_nodes()
    assert running == sorted(cluster.nodes), (
        f"the three-node cluster is not running (running: {running}): make cluster-up"
    )
    return cluster


@pytest.fixture
def cluster_vhost(cluster: Cluster) -> Iterator[str]:
    vhost = f"cl{uuid.uuid4().hex[:8]}"
    cluster.add_vhost(vhost)
    yield vhost
    cluster.delete_vhost(vhost)


def start_second_relay(stack: Stack, role: str) -> str:
    """Another relay of ``role`` beside the first, with a health port of its own."""
    name = f"{role}#2"
    program = stack.programs[role]
    port = {f"{role.split('-')[0].upper()}_RELAY_HEALTH_PORT": str(free_port())}
    log = (stack.root / "var" / "log" / f"{name}.log").open("ab")
    stack.processes[name] = subprocess.Popen(
        list(program.argv),
        cwd=stack.root,
        env={**stack.env, **program.env, **port},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return name


def wait_for_second_instances(cluster: Cluster, stack: Stack, timeout: float = 120) -> None:
    """Every service queue has two consumers and every second relay has started."""
    service_queues = [
        f"{s}.{e}"
        for s, e in (
            ("accounts", "space_provisioned"),
            ("notifications", "user_signed_up"),
            ("provisioning", "user_signed_up"),
            ("stats", "user_signed_up"),
            ("stats", "space_provisioned"),
        )
    ]

    # The management API's consumer counts lag a few seconds behind.
    def ready() -> bool:
        stack.assert_running()
        counts = cluster.consumers(stack.name)
        relays = all("relay.started" in stack.log(f"{role}#2") for role in RELAYS)
        return relays and all(counts.get(queue, 0) >= 2 for queue in service_queues)

    wait_until(ready, timeout, 1.0, "two consumers on every service queue, two relays")


@pytest.fixture
def cluster_stack(cluster: Cluster) -> Iterator[Stack]:
    """The whole platform on the cluster, two instances of every consumer and relay."""
    name = f"cl{uuid.uuid4().hex[:8]}"
    stack_module.MANAGEMENT = cluster.management_url()
    cluster.add_vhost(name)
    stack = Stack(
        name=name,
        consumer_processes=2,
        extra_env={
            "AMQP_URL": cluster.urls(name),
            "NOTIFICATIONS_SWEEP_INTERVAL": "5",
            "NOTIFICATIONS_SWEEP_GRACE": "10",
        },
    )
    stack.amqp_url = cluster.urls(name)
    try:
        stack.start(timeout=120)
        for role in RELAYS:
            start_second_relay(stack, role)
        wait_for_second_instances(cluster, stack)
        yield stack
    except BaseException:
        stack.close(keep_logs_in=REPO / "var" / "test-logs")
        raise
    with contextlib.suppress(RuntimeError):
        stack_module.MANAGEMENT = cluster.management_url()
    stack.close()
