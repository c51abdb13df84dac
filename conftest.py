"""Root conftest: property-test budgets and tiers that are skipped whole, not imported.

Hypothesis profiles (``HYPOTHESIS_PROFILE``):

- ``unit`` (default): a small example budget, so ``make unit`` stays fast.
- ``ci``: ``make test`` (and so CI): no test gets fewer examples than CI ran before the profiles
  (Hypothesis' default of 100, the containment properties 200).
- ``properties``: a large budget, ``make properties``.

Tiers by directory: every test under a ``tests/integration`` folder carries the ``integration``
marker (added here if its module forgot it), ``tests/e2e`` is ``e2e`` and ``tests/faults`` and
``tests/cluster`` are ``faults`` (their conftests mark them). When the ``-m`` expression
deselects a tier (``make unit``), its folders are not even imported: importing them costs
seconds (schemathesis loads the applications' schemas at import) for tests never run.

Garbage collection: a session imports every service and builds ~250k long-lived objects
(modules, classes, SQLAlchemy and pydantic models, the collected tests). Python's collector
would walk them all again at every full collection and twice when pytest ends; they are frozen
once collected (``gc.freeze``), and young collections run less often. Cycles made by the tests
themselves are still collected.

Logging: structlog, unless a test configures it, renders exceptions as plain tracebacks (rich's
rendering costs tens of ms per logged exception).
"""

import gc
import os
from pathlib import Path

import pytest
import structlog
from _pytest.mark.expression import Expression
from hypothesis import HealthCheck, settings

settings.register_profile("unit", max_examples=10)
settings.register_profile("ci", max_examples=200, print_blob=True)
settings.register_profile(
    "properties",
    max_examples=2000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "unit"))

# Python's default is (700, 10, 10): a young collection every 700 allocations.
gc.set_threshold(20_000, 20, 20)

# Unconfigured, structlog renders a logged exception with rich (a syntax-highlighted panel per
# frame: ~60 ms each, and the unit tests log dozens); in tests, the plain traceback instead.
structlog.configure(
    processors=[
        *structlog.get_config()["processors"][:-1],
        structlog.dev.ConsoleRenderer(exception_formatter=structlog.dev.plain_traceback),
    ]
)

# Top-level folders whose every test carries the marker; any `tests/integration` folder, at any
# depth, is the integration tier.
TIER_FOLDERS = {
    ("tests", "e2e"): "e2e",
    ("tests", "faults"): "faults",
    ("tests", "cluster"): "faults",
}
INTEGRATION_FOLDER = ("tests", "integration")


def folder_tier(path: Path, root: Path) -> str | None:
    """The marker every test under ``path`` carries, or None when its tests are mixed."""
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return None
    for depth in range(len(parts) - 1):
        pair = (parts[depth], parts[depth + 1])
        if pair == INTEGRATION_FOLDER:
            return "integration"
        if depth == 0 and pair in TIER_FOLDERS:
            return TIER_FOLDERS[pair]
    return None


def deselects(markexpr: str, marker: str) -> bool:
    """Whether ``-m markexpr`` deselects a test that carries exactly ``marker``."""
    if not markexpr:
        return False

    def carried(name: str, /, **_: str | int | bool | None) -> bool:
        return name == marker

    return not Expression.compile(markexpr).evaluate(carried)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if not collection_path.is_dir():
        return None
    tier = folder_tier(collection_path, config.rootpath)
    if tier is not None and deselects(config.option.markexpr, tier):
        return True
    return None


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """What exists once the tests are collected lives until the end: no collection walks it."""
    gc.freeze()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        in_folder = folder_tier(item.path, config.rootpath) == "integration"
        if in_folder and item.get_closest_marker("integration") is None:
            item.add_marker(pytest.mark.integration)
