"""Fault scenarios: the CI subset, the stacks they run on, and the one stack most of them share.

The CI scenarios that run on the default platform (``SHARED_SCENARIOS``) run one after the other
on one stack per module: starting a stack (four databases migrated, a vhost declared, eleven
processes started) costs about as much as a scenario. Each scenario counts from what the stack
held before it (``platform_harness.checks.Baseline``) and checks every effect of every signup
the stack ever took, its own and those of the scenarios before it. A failed scenario closes the
shared stack (its logs kept under var/test-logs); the next one starts a fresh one.
"""

import contextlib
import json
import os
from collections.abc import Callable, Generator, Iterator

import pytest

from platform_harness.scenarios import QUIET_HEARTBEAT_SECONDS, QUIET_RETRY_DELAYS_MS
from platform_harness.stack import REPO, Stack, running_stack

# The scenarios that run in `make test` (and so in CI); `make faults` runs all of them.
CI_SCENARIOS = {
    "consumers_killed",
    "relay_killed",
    "connections_closed",
    "poison",
    "duplicates",
    "hostile_headers",
}
# CI scenarios that share one running stack: the default shape and settings, and nothing left
# behind that a later scenario's checks would count (``sms_gateway_failing`` leaves a recipient
# the gateway refuses, so it keeps a stack of its own).
SHARED_SCENARIOS = frozenset(
    {"consumers_killed", "relay_killed", "connections_closed", "poison", "duplicates"}
    | {"hostile_headers"}
)
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


class SharedStack:
    """The stack the shared scenarios of one module run on, started by the first that needs it."""

    def __init__(self) -> None:
        self.running: Stack | None = None
        self._context: contextlib.ExitStack | None = None

    def get(self) -> Stack:
        if self.running is not None:
            self.running.assert_running()
            self.running.wait_ready(60)
            return self.running
        self._context = contextlib.ExitStack()
        self.running = self._context.enter_context(scenario_stack(""))
        return self.running

    def close(self, keep_logs: bool = False) -> None:
        if self.running is None or self._context is None:
            return
        running, context = self.running, self._context
        self.running = self._context = None
        if keep_logs:
            running.close(keep_logs_in=REPO / "var" / "test-logs")
            context.pop_all()  # closed already: the context must not close it again
        else:
            context.close()


FAILED = pytest.StashKey[bool]()  # on a test whose call (or setup) failed


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        item.stash[FAILED] = True
    return report


@pytest.fixture(scope="module")
def shared_stack() -> Iterator[SharedStack]:
    shared = SharedStack()
    try:
        yield shared
    finally:
        shared.close()


@pytest.fixture
def stack(request: pytest.FixtureRequest, shared_stack: SharedStack) -> Iterator[Stack]:
    callspec = getattr(request.node, "callspec", None)
    scenario = str(callspec.params.get("scenario")) if callspec else ""
    if scenario not in SHARED_SCENARIOS:
        with scenario_stack(scenario) as running:
            yield running
        return
    yield shared_stack.get()
    if request.node.stash.get(FAILED, False):
        shared_stack.close(keep_logs=True)


@pytest.fixture
def make_stack() -> Callable[..., contextlib.AbstractContextManager[Stack]]:
    """``with make_stack(scenario, **env) as stack``: for scenarios that prepare something the
    platform must be pointed at before it starts (a misbehaving server in the test process)."""
    return scenario_stack
