"""The built wheel, installed into an empty venv, is all a consuming team needs.

Builds the wheel of this distribution, installs it (with its dependencies and pytest) into a fresh
venv under ``var/``, and from a folder outside the repository: reads the catalog and the frozen
schemas from the installed copy, runs ``python -m signup_contracts.asyncapi --show`` and
``python -m signup_contracts.compat``, and runs a consumer's pytest file with an ``async def``
handler through the installed plugin's fixtures and the redelivery helper.
"""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONTRACTS = ROOT / "contracts"
WORK = ROOT / "var" / "contracts-wheel"

CONSUMER_TEST = """
import asyncio

from signup_contracts import Envelope, UserSignedUp
from signup_contracts.testing import assert_effect_once

welcomed = []


async def welcome(event: Envelope[UserSignedUp]) -> None:
    await asyncio.sleep(0)
    if event.data.email not in welcomed:
        welcomed.append(event.data.email)


def test_an_async_handler_through_the_plugin(event_broker, event_factory):
    event_broker.subscribe("accounts.user_signed_up", welcome)
    event_broker.publish(event_factory.user_signed_up(email="grace@example.com"))
    assert welcomed == ["grace@example.com"]


def test_redelivery(event_factory):
    assert_effect_once(welcome, event_factory.user_signed_up(), lambda: len(welcomed))
"""

READ_CATALOG = """
import json, signup_contracts
from signup_contracts import catalog
document = catalog.asyncapi_document()
schema = catalog.frozen_schema("UserSignedUp", 1)
print(json.dumps({"file": signup_contracts.__file__, "asyncapi": document["asyncapi"],
                  "channels": sorted(document["channels"]), "title": schema["title"]}))
"""


def _run(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed() -> Path:
    """The venv's python, with the freshly built wheel installed."""
    uv = shutil.which("uv")
    if uv is None:
        pytest.fail("uv is needed to build and install the wheel (make install installs it)")
    shutil.rmtree(WORK, ignore_errors=True)
    dist, venv, outside = WORK / "dist", WORK / "venv", WORK / "consumer"
    outside.mkdir(parents=True)
    _run(uv, "build", "--wheel", "--out-dir", dist, CONTRACTS, cwd=ROOT)
    [wheel] = dist.glob("signup_contracts-*.whl")
    _run(uv, "venv", "--quiet", "--python", sys.executable, venv, cwd=outside)
    python = venv / "bin" / "python"
    _run(uv, "pip", "install", "--quiet", "--python", python, wheel, "pytest", cwd=outside)
    return python


@pytest.mark.integration
def test_the_wheel_carries_the_catalog_and_the_frozen_schemas(installed: Path) -> None:
    [wheel] = (WORK / "dist").glob("signup_contracts-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "signup_contracts/data/asyncapi.json" in names
    frozen = {n for n in names if n.startswith("signup_contracts/data/schemas/")}
    shipped = {p.name for p in (CONTRACTS / "src/signup_contracts/data/schemas").glob("*.json")}
    assert {Path(n).name for n in frozen} == shipped and shipped


@pytest.mark.integration
def test_the_installed_copy_reads_its_catalog_outside_the_repository(installed: Path) -> None:
    outside = WORK / "consumer"
    found = json.loads(_run(installed, "-c", READ_CATALOG, cwd=outside))
    assert str(WORK / "venv") in found["file"]  # the installed copy, not the checkout
    assert found["asyncapi"] == "3.0.0"
    assert "accounts.user_signed_up" in found["channels"]
    assert found["title"] == "UserSignedUp v1"
    shown = _run(installed, "-m", "signup_contracts.asyncapi", "--show", cwd=outside)
    assert json.loads(shown) == json.loads(
        (CONTRACTS / "src/signup_contracts/data/asyncapi.json").read_text()
    )
    _run(installed, "-m", "signup_contracts.compat", cwd=outside)  # exit 0: frozen == models


@pytest.mark.integration
def test_a_consumer_test_with_an_async_handler_passes_against_the_installed_wheel(
    installed: Path,
) -> None:
    outside = WORK / "consumer"
    (outside / "test_consumer.py").write_text(CONSUMER_TEST)
    (outside / "pytest.ini").write_text("[pytest]\n")  # its own project, not this repository
    output = _run(installed, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=outside)
    assert "2 passed" in output
