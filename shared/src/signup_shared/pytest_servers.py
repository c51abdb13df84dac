"""pytest plugin: choose the servers once per session, say which, skip clearly when none.

Enabled for the whole repository with ``-p signup_shared.pytest_servers`` (pyproject addopts).
"""

import os

import pytest

from signup_shared import testservers

SERVER_MARKERS = ("integration", "e2e", "faults")
CONTAINERS_PLUGIN = "signup_shared.containers"
_state: dict[str, str] = {}


def needs_servers(item: pytest.Item) -> bool:
    return any(item.get_closest_marker(marker) for marker in SERVER_MARKERS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(needs_servers(item) for item in items):
        return
    choices = testservers.choose_both()
    _state["summary"] = "; ".join(choice.describe() for choice in choices)
    missing = [choice for choice in choices if choice.source == testservers.MISSING]
    if missing:
        reason = "skipped: " + "; ".join(choice.reason for choice in missing)
        _state["summary"] += f" -> {reason}"
        for item in items:
            if needs_servers(item):
                item.add_marker(pytest.mark.skip(reason=reason))
        return
    containers = None
    if any(choice.source == testservers.CONTAINER for choice in choices):
        config.pluginmanager.import_plugin(CONTAINERS_PLUGIN)
        containers = getattr(config.pluginmanager.get_plugin(CONTAINERS_PLUGIN), "SESSION", None)
    os.environ.update(testservers.resolve(choices, containers))


def pytest_report_collectionfinish(config: pytest.Config) -> str | None:
    summary = _state.get("summary")
    return f"integration servers: {summary}" if summary else None


def server_summary() -> str:
    """What this session uses (also for code outside pytest's hooks)."""
    return _state.get("summary", "not chosen (no test needing servers was collected)")
