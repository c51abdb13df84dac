import contextlib
import json
import os
from collections.abc import Callable, Iterator

import pytest

from platform_harness.scenarios import QUIET_HEARTBEAT_SECONDS, QUIET_RETRY_DELAYS_MS
from platform_harness.stack import Stack, running_stack

# The scenarios that run in `make test` (and so in CI); `make faults` runs all of them.
CI_SCENARIOS = {
    "consumers_killed",
    "relay_killed",
    "connections_closed",
    "poison",
    "duplicates",
    "hostile_headers",
}
# Scenarios on a platform shaped otherwise: (processes per consuming role, under supervisord).
STACK_SHAPES: dict[str, tuple[int, bool]] = {
    "supervisor_killed": (1, True),
    "consumers_killed_2_each": (2, True),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    everything = os.environ.get("FAULTS", "ci") == "all"
    for item in items:
        if "/tests/faults/" not in str(item.path):
            continue
        item.add_marker(pytest.mark.faults)
        scenario = item.callspec.params.get("scenario") if hasattr(item, "callspec") else None
        if not everything and scenario not in CI_SCENARIOS:
            item.add_marker(pytest.mark.skip(reason="full fault matrix only: make faults"))


# Settings every fault stack runs with, and those of scenarios that need others.
STACK_ENV = {
    "NOTIFICATIONS_SWEEP_INTERVAL_SECONDS": "5",
    "NOTIFICATIONS_SWEEP_GRACE_SECONDS": "10",
}
CONSUMING_SERVICES = ("ACCOUNTS", "NOTIFICATIONS", "PROVISIONING", "STATS")
SCENARIO_ENV: dict[str, dict[str, str]] = {
    # Heartbeats of 3 s: RabbitMQ closes a connection silent for two intervals (6 s).
    "quiet_then_retry": {
        **{f"{s}_AMQP_HEARTBEAT": str(QUIET_HEARTBEAT_SECONDS) for s in CONSUMING_SERVICES},
        **{
            f"{s}_RETRY_DELAYS": json.dumps(list(QUIET_RETRY_DELAYS_MS)) for s in CONSUMING_SERVICES
        },
    },
}


@contextlib.contextmanager
def scenario_stack(scenario: str, **more_env: str) -> Iterator[Stack]:
    """The platform shaped and configured for ``scenario`` (``more_env`` on top)."""
    processes, supervised = STACK_SHAPES.get(scenario, (1, False))
    with running_stack(
        consumer_processes=processes,
        supervised=supervised,
        start_timeout=60.0 * processes,
        **{**STACK_ENV, **SCENARIO_ENV.get(scenario, {}), **more_env},
    ) as running:
        yield running


@pytest.fixture
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    callspec = getattr(request.node, "callspec", None)
    scenario = str(callspec.params.get("scenario")) if callspec else ""
    with scenario_stack(scenario) as running:
        yield running


@pytest.fixture
def make_stack() -> Callable[..., contextlib.AbstractContextManager[Stack]]:
    """``with make_stack(scenario, **env) as stack``: for scenarios that prepare something the
    platform must be pointed at before it starts (a misbehaving server in the test process)."""
    return scenario_stack
