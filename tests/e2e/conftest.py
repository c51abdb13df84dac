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


@pytest.fixture(scope="session")
def stack(trace_file: Path) -> Iterator[Stack]:
    with running_stack(SIGNUP_TRACE_FILE=str(trace_file)) as running:
        yield running
