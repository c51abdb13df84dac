from collections.abc import Iterator
from pathlib import Path

import pytest

from platform_harness.stack import Stack, running_stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def trace_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every process of the session's stack appends its finished spans here (JSON lines)."""
    return tmp_path_factory.mktemp("traces") / "spans.jsonl"


# Short broker retry delays and a quick notifications sweep, so that the failures
# test_e2e_privacy injects reach their dead-letter queue (or are delivered) within seconds.
FAST_RETRIES = "[300, 600]"
STACK_ENV = {
    **{f"{s}_RETRY_DELAYS": FAST_RETRIES for s in ("ACCOUNTS", "NOTIFICATIONS")},
    **{f"{s}_RETRY_DELAYS": FAST_RETRIES for s in ("PROVISIONING", "STATS")},
    "NOTIFICATIONS_SWEEP_INTERVAL_SECONDS": "2",
    "NOTIFICATIONS_SWEEP_GRACE_SECONDS": "3",
}


@pytest.fixture(scope="session")
def stack(trace_file: Path) -> Iterator[Stack]:
    """The one stack every end-to-end test runs on (each counts from what it finds there)."""
    with running_stack(SIGNUP_TRACE_FILE=str(trace_file), **STACK_ENV) as running:
        yield running
