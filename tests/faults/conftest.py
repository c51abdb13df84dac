import os
from collections.abc import Iterator

import pytest

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


@pytest.fixture
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    callspec = getattr(request.node, "callspec", None)
    scenario = str(callspec.params.get("scenario")) if callspec else ""
    processes, supervised = STACK_SHAPES.get(scenario, (1, False))
    with running_stack(
        consumer_processes=processes,
        supervised=supervised,
        start_timeout=60.0 * processes,
        NOTIFICATIONS_SWEEP_INTERVAL="5",
        NOTIFICATIONS_SWEEP_GRACE="10",
    ) as running:
        yield running
