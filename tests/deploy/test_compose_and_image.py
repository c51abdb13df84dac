"""The compose file and the Dockerfile, checked offline (this machine has no Docker engine).

The compose file is validated against the compose specification's JSON Schema as shipped by
check-jsonschema (``--builtin-schema vendor.compose-spec``); the rest checks what the schema
cannot: every bind-mounted file exists, every service command is an entry point the image
installs, the cluster and the instance counts are what the README promises. The Dockerfile is
read, not built: its stages, the locked uv sync, the non-root user and the health check.
"""

import json
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "deploy" / "compose" / "compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
RUN_SH = REPO / "deploy" / "run.sh"
CONSUMERS = ("accounts-consumer", "notifications", "provisioning", "stats")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.load(COMPOSE.read_text(), Loader=yaml.CSafeLoader))


def entry_points() -> set[str]:
    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    names: set[str] = set()
    for pattern in root["tool"]["uv"]["workspace"]["members"]:
        for member in REPO.glob(pattern):
            project = tomllib.loads((member / "pyproject.toml").read_text())["project"]
            names.update(project.get("scripts", {}))
    return names


def check_jsonschema(path: Path) -> subprocess.CompletedProcess[str]:
    program = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    assert program, "check-jsonschema is a dev dependency: make install"
    return subprocess.run(
        [program, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.external
def test_compose_file_follows_the_compose_specification() -> None:
    result = check_jsonschema(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.external
def test_the_schema_catches_a_mistake(compose: dict[str, Any]) -> None:
    """The same schema, in process: a misspelt key fails, the file as it is passes."""
    schema = json.loads(
        resources.files("check_jsonschema.builtin_schemas.vendor")
        .joinpath("compose-spec.json")
        .read_text()
    )
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors(compose))
    broken = {
        **compose,
        "services": {
            **compose["services"],
            "stats": {**compose["services"]["stats"], "restart_policy": "always"},
        },
    }
    assert list(validator.iter_errors(broken))


def test_every_mounted_file_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source} is missing"


def test_every_command_is_an_entry_point_of_the_image(compose: dict[str, Any]) -> None:
    installed = entry_points() | {"sh"}
    for name, service in compose["services"].items():
        if "command" in service and "image" in service and "signup" in service["image"]:
            assert service["command"][0] in installed, name
    migrate = " ".join(compose["services"]["migrate"]["command"])
    assert all(s in migrate for s in ("accounts", "notifications", "provisioning", "stats"))


def test_three_clustered_rabbitmq_nodes_with_one_cookie_and_the_definitions(
    compose: dict[str, Any],
) -> None:
    nodes = {n: s for n, s in compose["services"].items() if re.fullmatch(r"rabbitmq-\d", n)}
    assert sorted(nodes) == ["rabbitmq-1", "rabbitmq-2", "rabbitmq-3"]
    conf = (COMPOSE.parent / "rabbitmq" / "rabbitmq.conf").read_text()
    for name, node in nodes.items():
        assert node["hostname"] == name
        assert node["environment"]["RABBITMQ_NODENAME"] == f"rabbit@{name}"
        assert f"rabbit@{name}" in conf
        erl_args = node["environment"]["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"]
        assert "-setcookie ${RABBITMQ_ERLANG_COOKIE:?" in erl_args
        assert any("definitions.json" in v for v in node["volumes"])


def test_every_consumer_runs_twice_and_every_service_has_its_own_credentials(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name in CONSUMERS:
        assert services[name]["deploy"]["replicas"] == 2, name
    for name, service in services.items():
        environment = service.get("environment") or {}
        for variable, value in environment.items():
            match = re.fullmatch(r"([A-Z]+)_AMQP_URL", variable)
            if match:
                user = match.group(1).lower()
                urls = value.split(";")
                assert len(urls) == 3, f"{name}: {variable} lists every node"
                assert all(url.startswith(f"amqp://{user}:") for url in urls), name


def test_every_consuming_service_reads_users_data_keys_from_accounts_web(
    compose: dict[str, Any],
) -> None:
    """The readers of the sealed history (docs/erasure.md) get accounts-web's URL and a keys:read
    key file that the data-keys one-shot writes before they start: the same services as
    `make run` (deploy/run.sh) and the Kubernetes Secrets give keys to."""
    services = compose["services"]
    readers = {
        name
        for name, service in services.items()
        if service.get("command", [None, None])[1:2] == ["consume"] and name != "accounts-consumer"
    }
    k8s = {
        path.name.split(".")[0]
        for path in (REPO / "deploy" / "k8s" / "overlays" / "production" / "secrets").iterdir()
        if "_KEYS_URL=http://accounts-web" in path.read_text()
    }
    run_sh = re.search(r"for service in ([a-z ]+); do\n  file=var/keys/", RUN_SH.read_text())
    assert run_sh, "deploy/run.sh makes one key per consuming service"
    assert (
        readers
        == k8s
        == set(run_sh.group(1).split())
        == {"notifications", "provisioning", "stats", "audit"}
    )
    one_shot = services["data-keys"]
    assert one_shot["command"][:2] == ["sh", "-c"]
    script = one_shot["command"][2]
    assert f"for s in {run_sh.group(1)} signup-dlq-janitor; do" in script
    assert 'scope=keys:read; [ "$$s" = signup-dlq-janitor ] && scope=users:read;' in script
    assert 'accounts keys create --client "$$s" --scope "$$scope"' in script
    assert one_shot["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "data-keys:/app/var/keys" in one_shot["volumes"]
    web_port = services["accounts-web"]["environment"]["ACCOUNTS_WEB_PORT"]
    for name in sorted(readers):
        prefix = name.upper()
        environment = services[name]["environment"]
        assert environment[f"{prefix}_KEYS_URL"] == f"http://accounts-web:{web_port}", name
        assert environment[f"{prefix}_KEYS_API_KEY_FILE"] == f"/app/var/keys/{name}.key", name
        assert f"{prefix}_KEYS_API_KEY" not in environment, name  # the file, not a literal
        assert "data-keys:/app/var/keys:ro" in services[name]["volumes"], name
        depends = services[name]["depends_on"]
        assert depends["data-keys"]["condition"] == "service_completed_successfully", name
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
    assert "data-keys" in compose["volumes"]
    assert_the_dlq_janitor_gets_its_own_user_and_key(services, web_port)
    runtime = DOCKERFILE.read_text().split("AS runtime", 1)[1]
    assert "mkdir -p /app/var/keys" in runtime  # a new volume there is the service user's


def test_there_is_one_compose_file() -> None:
    found = sorted(p.relative_to(REPO).as_posix() for p in REPO.glob("deploy/**/*compose*.y*ml"))
    assert found == ["deploy/compose/compose.yaml"]


def test_the_dashboard_administrator_comes_from_a_secret(compose: dict[str, Any]) -> None:
    assert compose["secrets"]["rabbitmq_admin_password"] == {
        "environment": "RABBITMQ_ADMIN_PASSWORD"
    }
    admin = compose["services"]["rabbitmq-admin"]
    assert admin["secrets"] == ["rabbitmq_admin_password"]
    script = " ".join(admin["command"])
    assert "/run/secrets/rabbitmq_admin_password" in script
    assert "set_user_tags admin administrator" in script
    assert admin["depends_on"]["rabbitmq-1"]["condition"] == "service_healthy"


def test_no_policy_that_rabbitmq_4_refuses() -> None:
    """Classic queue mirroring (ha-mode) is gone in RabbitMQ 4: no file may ask for it."""
    for path in (REPO / "deploy").rglob("*"):
        if path.is_file() and path.suffix in {".json", ".yaml", ".yml", ".conf"}:
            assert "ha-mode" not in path.read_text(), path


def test_prometheus_and_grafana_only_with_their_configuration(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for tool, config in (("prometheus", "prometheus"), ("grafana", "grafana")):
        assert (tool in services) == (REPO / "deploy" / config).is_dir()


# The Dockerfile --------------------------------------------------------------------------------
def test_the_image_is_multi_stage_built_with_uv_from_the_lock_file() -> None:
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\w+)", text, flags=re.MULTILINE)
    assert stages == ["uv", "builder", "runtime"]
    builder = text.split("AS builder", 1)[1].split("AS runtime", 1)[0]
    runtime = text.split("AS runtime", 1)[1]
    assert "uv sync --frozen --no-dev --all-packages --no-install-workspace" in builder
    assert "uv sync --frozen --no-dev --all-packages --no-editable" in builder
    assert "uv " not in runtime and "COPY --from=builder /app/.venv /app/.venv" in runtime
    assert re.search(r"^USER 10001", runtime, flags=re.MULTILINE)
    assert "HEALTHCHECK" in runtime and "/healthz" in runtime


def test_the_build_context_leaves_out_local_state() -> None:
    ignored = (REPO / ".dockerignore").read_text().split()
    for pattern in (".git", "**/.venv", "var", "**/__pycache__"):
        assert pattern in ignored


def assert_the_dlq_janitor_gets_its_own_user_and_key(services: dict[str, Any], web: str) -> None:
    """dlq-janitor (drop-erased --all --every): its own broker user on every node, the same user
    for the management API, accounts-web and the users:read key data-keys writes; in `make run`
    (deploy/run.sh) and the Kubernetes Secret alike."""
    janitor = services["dlq-janitor"]
    environment = janitor["environment"]
    urls = environment["SIGNUP_DLQ_AMQP_URL"].split(";")
    assert len(urls) == 3 and all(u.startswith("amqp://signup-dlq-janitor:") for u in urls)
    assert environment["SIGNUP_DLQ_MANAGEMENT_URL"].startswith("http://signup-dlq-janitor:")
    assert environment["SIGNUP_DLQ_ACCOUNTS_URL"] == f"http://accounts-web:{web}"
    key_file = "/app/var/keys/signup-dlq-janitor.key"
    assert environment["SIGNUP_DLQ_ACCOUNTS_API_KEY_FILE"] == key_file
    assert "SIGNUP_DLQ_ACCOUNTS_API_KEY" not in environment
    assert "data-keys:/app/var/keys:ro" in janitor["volumes"]
    assert janitor["depends_on"]["data-keys"]["condition"] == "service_completed_successfully"
    run_sh = RUN_SH.read_text()
    assert "new_key signup-dlq-janitor users:read" in run_sh
    assert "export SIGNUP_DLQ_AMQP_URL=$janitor_url" in run_sh
    secret = REPO / "deploy" / "k8s" / "overlays" / "production" / "secrets"
    example = (secret / "signup-dlq.env.example").read_text()
    assert "SIGNUP_DLQ_AMQP_URL=amqp://signup-dlq-janitor:" in example
    assert "--client signup-dlq-janitor --scope users:read" in example
