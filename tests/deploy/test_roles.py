"""deploy/roles.toml, the one table of process roles, and what is generated from or checked by it.

The supervisord file is read by supervisord's own parser (``ServerOptions``), with the
environment deploy/run.sh exports: the instance counts and ports are supervisord's expansions.
"""

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from pydantic_settings import BaseSettings
from supervisor.options import ServerOptions

from accounts.settings import AccountsSettings
from notifications.settings import NotificationsSettings
from provisioning.settings import ProvisioningSettings
from stats.settings import StatsSettings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
SETTINGS: dict[str, type[BaseSettings]] = {
    "accounts": AccountsSettings,
    "notifications": NotificationsSettings,
    "provisioning": ProvisioningSettings,
    "stats": StatsSettings,
}


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


generate = load(DEPLOY / "generate.py", "deploy_generate")
roles = generate.roles  # deploy/roles.py, as deploy/generate.py imports it
TABLE = roles.load()


def supervisord(monkeypatch: pytest.MonkeyPatch, consumers: int, instances: int) -> ServerOptions:
    for name, value in (
        ("CONSUMER_PROCESSES", str(consumers)),
        ("INSTANCES", str(instances)),
        ("SUPERVISOR_USER", "nobody"),
    ):
        monkeypatch.setenv(name, value)
    # supervisord checks that its directories exist; `make run` creates them, a fresh clone not.
    for directory in ("log", "run"):
        (DEPLOY.parent / "var" / directory).mkdir(parents=True, exist_ok=True)
    options = ServerOptions()
    options.configfile = str(DEPLOY / "supervisor" / "supervisord.conf")
    options.process_config(do_usage=False)
    return options


def programs(options: ServerOptions) -> dict[str, dict[str, str]]:
    """supervisord's process name -> its environment, as supervisord expanded them."""
    return {
        process.name: dict(process.environment or {})
        for group in options.process_group_configs
        for process in group.process_configs
    }


@pytest.fixture(scope="module")
def generated() -> dict[Path, str]:
    """Path -> text of every file generated from the table as it is (rendered once)."""
    return generate.generated()


def test_every_generated_file_matches_the_table(generated: dict[Path, str]) -> None:
    stale = generate.drifted(generated)
    assert not stale, f"{stale}: run .venv/bin/python deploy/generate.py"


def test_a_changed_port_shows_up_as_drift() -> None:
    changed = [
        r if r.name != "stats" else roles.Role(**{**r.__dict__, "port": 8014}) for r in TABLE
    ]
    drift = {
        p.relative_to(DEPLOY).as_posix() for p in generate.drifted(generate.generated(changed))
    }
    assert {"supervisor/supervisord.conf", "prometheus/prometheus.yml"} <= drift
    assert "k8s/base/stats.yaml" in drift


def test_supervisord_expands_instances_and_ports_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    single = programs(supervisord(monkeypatch, consumers=1, instances=1))
    assert len(single) == len(TABLE)
    assert single["stats-0"] == {"STATS_CONSUMER_HEALTH_PORT": "8013", "SIGNUP_INSTANCE": "0"}
    several = programs(supervisord(monkeypatch, consumers=3, instances=2))
    assert [several[f"stats-{i}"]["STATS_CONSUMER_HEALTH_PORT"] for i in range(3)] == [
        "8013",
        "8113",
        "8213",
    ]
    assert [several[f"accounts-web-{i}"]["ACCOUNTS_WEB_PORT"] for i in range(2)] == [
        "8000",
        "8100",
    ]
    assert "notifications-3" not in several and "smtp-sink" in several


def test_supervisord_runs_the_tables_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    options = supervisord(monkeypatch, consumers=1, instances=1)
    commands = {
        group.name: group.process_configs[0].command for group in options.process_group_configs
    }
    for role in TABLE:
        assert commands[role.name] == " ".join(role.argv()), role.name


def test_the_local_programs_follow_the_table_and_the_environment() -> None:
    listed = roles.programs(
        TABLE, {"CONSUMER_PROCESSES": "2", "STATS_CONSUMER_HEALTH_PORT": "9013"}
    )
    stats = [p for p in listed if p.role == "stats"]
    assert [(p.name, p.env["STATS_CONSUMER_HEALTH_PORT"]) for p in stats] == [
        ("stats-0", "9013"),
        ("stats-1", "9113"),
    ]
    assert [p.name for p in listed if p.role == "accounts-web"] == ["accounts-web"]
    with pytest.raises(roles.RoleTableError, match="CONSUMER_PROCESSES"):
        roles.programs(TABLE, {"CONSUMER_PROCESSES": "11"})


def test_a_table_with_an_impossible_port_is_refused(tmp_path: Path) -> None:
    text = (DEPLOY / "roles.toml").read_text().replace("port = 8013", "port = 8113")
    (tmp_path / "roles.toml").write_text(text)
    with pytest.raises(roles.RoleTableError, match="hundreds digit"):
        roles.load(tmp_path / "roles.toml")


@pytest.mark.parametrize("role", [r for r in TABLE if r.service in SETTINGS], ids=str)
def test_each_services_settings_default_to_the_tables_port(
    role: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(role, roles.Role)
    monkeypatch.delenv(role.port_env, raising=False)
    prefix = f"{role.service.upper()}_"
    assert role.port_env.startswith(prefix), "a service's settings carry its prefix"
    settings = SETTINGS[role.service]()
    assert getattr(settings, role.port_env.removeprefix(prefix).lower()) == role.port


def test_compose_services_follow_the_table() -> None:
    compose = yaml.load((DEPLOY / "compose" / "compose.yaml").read_text(), Loader=yaml.CSafeLoader)[
        "services"
    ]
    for role in TABLE:
        service = compose[role.name]
        if role.component == "sink":
            assert str(role.port) in service["command"], role.name
            continue
        assert service["command"] == role.argv(), role.name
        environment = service["environment"]
        assert environment[role.port_env] == str(role.port), role.name
        assert environment["HEALTH_PORT"] == str(role.port), role.name  # the image's health check
        assert "healthcheck" not in service, f"{role.name}: the image's HEALTHCHECK applies"
        if role.scaling == "consumer":
            assert service["deploy"]["replicas"] == 2


def test_no_port_of_the_table_is_written_elsewhere_in_deploy(generated: dict[Path, str]) -> None:
    """Ports live in the table (the public API ports of web roles may be quoted in docs)."""
    checked = {
        *(path.resolve() for path in generated),
        (DEPLOY / "compose" / "compose.yaml").resolve(),
        (DEPLOY / "roles.toml").resolve(),
    }
    pattern = re.compile(
        r"\b(" + "|".join(str(r.port) for r in TABLE if r.component != "web") + r")\b"
    )
    offenders = [
        str(path.relative_to(REPO))
        for path in DEPLOY.rglob("*")
        if path.is_file()
        and path.resolve() not in checked
        and path.suffix in {".sh", ".py", ".yaml", ".yml", ".toml", ".conf", ""}
        and "crds" not in path.parts
        and pattern.search(path.read_text(errors="replace"))
    ]
    assert not offenders


def test_the_harness_adapter_numbers_instances_from_one() -> None:
    """deploy/supervisor/config.py, which tests/platform_harness still reads."""
    config = load(DEPLOY / "supervisor" / "config.py", "deploy_supervisor_config")
    listed = config.programs({}, {"NOTIFICATIONS_CONSUMER_HEALTH_PORT": "9001"}, 2)
    names = {p.name: p.env for p in listed if p.role == "notifications"}
    assert names == {
        "notifications-1": {"NOTIFICATIONS_CONSUMER_HEALTH_PORT": "9001", "SIGNUP_INSTANCE": "1"},
        "notifications-2": {"NOTIFICATIONS_CONSUMER_HEALTH_PORT": "9101", "SIGNUP_INSTANCE": "2"},
    }
    assert config.CONSUMERS["stats"] == ("STATS_CONSUMER_HEALTH_PORT", 8013)
