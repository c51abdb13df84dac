"""deploy/supervisor/config.py: the programs `make run` runs and the supervisord file for them."""

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
from supervisor.options import ServerOptions

GENERATOR = Path(__file__).resolve().parents[2] / "deploy" / "supervisor" / "config.py"
WRAPPER = ("/usr/bin/setpriv", "--pdeathsig", "TERM", "--")
PROCFILE = {
    "smtp-sink": "devsinks-smtp --port ${SMTP_SINK_PORT:-1025} --maildir var/mail",
    "accounts-web": "accounts-web",
    "notifications": "notifications consume",
    "stats": "stats consume",
}


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("supervisor_config", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parsed(text: str, tmp_path: Path) -> ServerOptions:
    """The file as supervisord itself reads it."""
    path = tmp_path / "supervisord.conf"
    path.write_text(text)
    options = ServerOptions()
    options.configfile = str(path)
    options.process_config(do_usage=False)
    return options


def test_the_procfile_lists_every_consuming_role_the_generator_scales() -> None:
    config = generator()
    assert set(config.CONSUMERS) <= set(config.read_procfile())


def test_shell_variables_are_expanded_since_supervisord_runs_no_shell() -> None:
    expand = generator().expand
    assert expand("x ${P:-1025} ${Q} $R", {"Q": "q", "R": "r"}) == "x 1025 q r"
    assert expand("${P:-1025}", {"P": "9"}) == "9"


def test_one_process_per_role_keeps_the_procfile_names_and_base_ports() -> None:
    programs = generator().programs(PROCFILE, {"NOTIFICATIONS_HTTP_PORT": "9001"}, 1)
    assert [p.name for p in programs] == ["smtp-sink", "accounts-web", "notifications", "stats"]
    by_name = {p.name: p for p in programs}
    assert by_name["smtp-sink"].argv[-3:] == ("1025", "--maildir", "var/mail")
    assert by_name["notifications"].env["NOTIFICATIONS_HTTP_PORT"] == "9001"
    assert by_name["stats"].env["STATS_CONSUMER_HTTP_PORT"] == "8013"
    assert by_name["accounts-web"].env == {}


def test_n_processes_per_consuming_role_each_with_its_own_health_port() -> None:
    programs = generator().programs(PROCFILE, {}, 3)
    ports = {p.name: p.health_port for p in programs if p.role == "notifications"}
    assert ports == {"notifications-1": 8001, "notifications-2": 8101, "notifications-3": 8201}
    assert [p.name for p in programs if p.role == "accounts-web"] == ["accounts-web"]
    assert {p.env["SIGNUP_INSTANCE"] for p in programs if p.role == "stats"} == {"1", "2", "3"}


@pytest.mark.parametrize("value", ["0", "10", "two", "-1"])
def test_consumer_processes_outside_one_to_nine_is_refused(value: str) -> None:
    with pytest.raises(ValueError, match="CONSUMER_PROCESSES"):
        generator().consumer_processes({"CONSUMER_PROCESSES": value})


def test_supervisord_reads_the_file_every_program_execd_through_the_death_wrapper(
    tmp_path: Path,
) -> None:
    config = generator()
    programs = config.programs(PROCFILE, {"SMTP_SINK_PORT": "50%"}, 2)
    text = config.render(
        programs,
        root=tmp_path,
        run_dir=tmp_path,
        log_dir=tmp_path,
        wrapper=WRAPPER,
        password="pass%word",
    )
    options = parsed(text, tmp_path)
    processes = {p.name: p for g in options.process_group_configs for p in g.process_configs}
    assert sorted(processes) == [
        "accounts-web",
        "notifications-1",
        "notifications-2",
        "smtp-sink",
        "stats-1",
        "stats-2",
    ]
    for process in processes.values():
        assert process.command.startswith(" ".join(WRAPPER) + " ")  # no shell in between
        assert process.autorestart is not False
        assert process.startsecs == config.START_SECONDS
        assert process.stdout_logfile == "/dev/stdout"
        assert process.redirect_stderr
    assert "--port 50% " in processes["smtp-sink"].command  # '%' survives supervisord's expansion
    assert processes["notifications-2"].environment["NOTIFICATIONS_HTTP_PORT"] == "8101"
    assert options.nodaemon
    assert options.pidfile == str(tmp_path / "supervisord.pid")


def test_harness_mode_writes_one_log_file_per_program(tmp_path: Path) -> None:
    config = generator()
    programs = config.programs(PROCFILE, {}, 1)
    text = config.render(programs, root=tmp_path, run_dir=tmp_path, log_dir=tmp_path, console=False)
    processes = parsed(text, tmp_path).process_group_configs
    logs = {p.name: p.stdout_logfile for g in processes for p in g.process_configs}
    assert logs["stats"] == str(tmp_path / "stats.log")


def test_instances_scale_web_and_relays_each_on_its_own_port() -> None:
    procfile = {**PROCFILE, "provisioning-relay": "provisioning relay"}
    programs = generator().programs(procfile, {"INSTANCES": "2"}, 1)
    ports = {p.name: p.env.get("ACCOUNTS_HTTP_PORT") for p in programs if p.role == "accounts-web"}
    assert ports == {"accounts-web-1": "8000", "accounts-web-2": "8100"}
    relays = {p.name for p in programs if p.role == "provisioning-relay"}
    assert relays == {"provisioning-relay-1", "provisioning-relay-2"}
    assert [p.name for p in programs if p.role == "notifications"] == ["notifications"]
