"""Every program in tools/ answers ``--help``: each console script its package declares, and
each package's ``python -m`` entry point (in-process, no I/O)."""

from __future__ import annotations

import importlib
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[1]


def _scripts() -> list[tuple[str, str]]:
    found = []
    for pyproject in sorted(TOOLS.glob("*/pyproject.toml")):
        project = tomllib.loads(pyproject.read_text())["project"]
        found += sorted(project.get("scripts", {}).items())
    return found


def _load(target: str) -> Callable[[], int]:
    module, _, function = target.partition(":")
    entry: Callable[[], int] = getattr(importlib.import_module(module), function)
    return entry


def _exit_code(entry: Callable[[], int]) -> int | str | None:
    try:
        return entry()
    except SystemExit as exc:
        return exc.code


def test_the_tools_declare_their_programs() -> None:
    assert {name for name, _ in _scripts()} >= {"signup-dlq", "devsinks-smtp", "devsinks-sms"}


@pytest.mark.parametrize(("name", "target"), _scripts())
def test_every_script_answers_help(
    name: str,
    target: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "argv", [f"/venv/bin/{name}", "--help"])
    assert _exit_code(_load(target)) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: {name} ")
    assert "--help" in out


@pytest.mark.parametrize("package", ["signup_dlq.cli", "devsinks.cli"])
def test_every_module_entry_point_answers_help(
    package: str, capsys: pytest.CaptureFixture[str]
) -> None:
    main = importlib.import_module(package).main
    try:
        code = main(["--help"])
    except SystemExit as exc:
        code = exc.code
    assert code == 0
    assert capsys.readouterr().out.startswith("usage: ")
