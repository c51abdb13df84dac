"""The Kubernetes manifests, rendered by ``kubectl kustomize`` and validated offline.

Built-in kinds: kubernetes-validate (the Kubernetes OpenAPI schemas, strict: unknown fields fail).
KEDA and Prometheus Operator kinds: the ``openAPIV3Schema`` of their own CRDs, vendored in
deploy/k8s/crds from their releases, read the way the API server reads them with strict field
validation (``kubectl apply --validate=strict``): an unknown field is an error, not pruned.
The overlay's secret files are git-ignored; the render uses copies of their examples.
"""

import copy
import json
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
KUBERNETES_VERSION = "1.32.0"  # the kubectl this repository renders with
CRDS = K8S / "crds"
# Rendering runs kubectl (and one test git): these tests run in `make test`, not `make unit`.
external = pytest.mark.external


def kubectl() -> str:
    found = shutil.which("kubectl")
    assert found, "kubectl (1.32, kustomize built in) is required: .ci/run installs it"
    return found


def render(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.load_all(result.stdout, Loader=yaml.CSafeLoader) if d]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The production overlay, with its secret files written from their examples."""
    copy_root = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, copy_root, ignore=shutil.ignore_patterns("*.env", "crds"))
    for example in (copy_root / "overlays" / "production" / "secrets").glob("*.env.example"):
        text = example.read_text().replace("<password>", "pw").replace("<token>", "t")
        example.with_suffix("").write_text(text.replace("<user>", "u"))
    return render(copy_root / "overlays" / "production")


def of_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


def strict(schema: Any) -> Any:
    """The CRD schema with unknown fields refused (what strict field validation does)."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> its strict openAPIV3Schema, from every vendored CRD."""
    schemas = {}
    for path in CRDS.glob("*.yaml"):
        crd = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)
        for version in crd["spec"]["versions"]:
            schema = strict(version["schema"]["openAPIV3Schema"])
            schema["properties"]["metadata"] = {"type": "object"}
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            schemas[key] = schema
    return schemas


SCHEMAS = crd_schemas()


def crd_errors(document: dict[str, Any]) -> list[str]:
    schema = SCHEMAS[(document["apiVersion"], document["kind"])]
    validator = jsonschema.Draft7Validator(schema)
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]


# The tests ---------------------------------------------------------------------------------------
@external
def test_every_builtin_resource_is_valid_for_kubernetes(rendered: list[dict[str, Any]]) -> None:
    builtin = [d for d in rendered if (d["apiVersion"], d["kind"]) not in SCHEMAS]
    assert len(builtin) > 20
    for document in builtin:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


@external
def test_a_typo_in_a_builtin_resource_fails(rendered: list[dict[str, Any]]) -> None:
    deployment = copy.deepcopy(of_kind(rendered, "Deployment")["notifications"])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


@external
def test_every_custom_resource_is_valid_for_its_crd(rendered: list[dict[str, Any]]) -> None:
    custom = [d for d in rendered if (d["apiVersion"], d["kind"]) in SCHEMAS]
    kinds = {d["kind"] for d in custom}
    assert kinds == {"ScaledObject", "TriggerAuthentication", "PodMonitor", "PrometheusRule"}
    for document in custom:
        assert not crd_errors(document), (document["metadata"]["name"], crd_errors(document))


@external
@pytest.mark.parametrize(
    ("kind", "name", "change"),
    [
        ("ScaledObject", "stats", lambda d: d["spec"].update(minReplicas=1)),
        ("ScaledObject", "stats", lambda d: d["spec"]["triggers"][0].update(authRef={"name": "x"})),
        ("ScaledObject", "stats", lambda d: d["spec"]["triggers"][0]["metadata"].update(value=5)),
        ("ScaledObject", "stats", lambda d: d["spec"].pop("scaleTargetRef")),
        ("TriggerAuthentication", "rabbitmq-keda", lambda d: d["spec"].update(secretRef=[])),
        ("PodMonitor", "signup-platform", lambda d: d["spec"].update(podMetricEndpoints=[])),
        ("PrometheusRule", "signup-platform", lambda d: d["spec"]["groups"][0].update(rule=[])),
    ],
)
def test_the_crd_schemas_catch_mistakes(
    rendered: list[dict[str, Any]], kind: str, name: str, change: Any
) -> None:
    document = copy.deepcopy(of_kind(rendered, kind)[name])
    change(document)
    assert crd_errors(document)


@external
def test_the_base_holds_no_secret_and_no_placeholder() -> None:
    base = render(K8S / "base")
    assert not of_kind(base, "Secret")
    for path in K8S.rglob("*.yaml"):
        assert "CHANGE-ME" not in path.read_text(), path


@external
def test_secrets_are_generated_from_files_and_referenced_by_their_hashed_names(
    rendered: list[dict[str, Any]],
) -> None:
    secrets = of_kind(rendered, "Secret")
    names = {name.rsplit("-", 1)[0] if name != "rabbitmq-keda" else name for name in secrets}
    assert names == {
        "accounts-credentials",
        "notifications-credentials",
        "provisioning-credentials",
        "stats-credentials",
        "audit-credentials",
        "signup-dlq-credentials",  # the dlq janitor's
        "rabbitmq-keda",
    }
    for deployment in of_kind(rendered, "Deployment").values():
        pod = deployment["spec"]["template"]["spec"]
        service = deployment["metadata"]["labels"]["signup-platform/service"]
        for container in pod["containers"] + pod.get("initContainers", []):
            [reference] = container["envFrom"]
            assert reference["secretRef"]["name"] in secrets
            assert reference["secretRef"]["name"].startswith(f"{service}-credentials-")
    [auth] = of_kind(rendered, "TriggerAuthentication").values()
    assert auth["spec"]["secretTargetRef"][0]["name"] in secrets


@external
def test_the_overlay_keeps_real_secret_files_out_of_git() -> None:
    ignore = (K8S / "overlays" / "production" / "secrets" / ".gitignore").read_text().split()
    assert ignore[:1] == ["*"] or "*" in ignore
    result = subprocess.run(
        ["git", "check-ignore", "-q", "deploy/k8s/overlays/production/secrets/stats.env"],
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0


@external
def test_one_deployment_per_role_with_its_port_probes_and_migration(
    rendered: list[dict[str, Any]],
) -> None:
    table = {r["name"]: r for r in _table() if r.get("kubernetes", True)}
    deployments = of_kind(rendered, "Deployment")
    assert set(deployments) == set(table)
    for name, deployment in deployments.items():
        role = table[name]
        pod = deployment["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert container["command"] == [
            c.replace("{port}", str(role["port"])) for c in role["command"]
        ]
        assert container["image"] == "registry.example.com/signup-platform:0.1.0"
        assert container["securityContext"]["runAsNonRoot"] is True
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env[role["port_env"]] == env["HEALTH_PORT"] == str(role["port"])
        assert container["ports"] == [
            {"name": "http", "containerPort": role["port"], "protocol": "TCP"}
        ]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        if role["component"] == "janitor":  # no Service sends it work; no database
            assert "readinessProbe" not in container and "initContainers" not in pod
            assert deployment["spec"]["replicas"] == 1
            assert deployment["spec"]["strategy"] == {"type": "Recreate"}  # one pass at a time
            continue
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        [migrate] = pod["initContainers"]
        assert migrate["command"] == [role["service"], "migrate"]


def _table() -> list[dict[str, Any]]:
    return list(tomllib.loads((REPO / "deploy" / "roles.toml").read_text())["role"])


@external
def test_keda_alone_sets_the_replicas_of_consumers(rendered: list[dict[str, Any]]) -> None:
    deployments = of_kind(rendered, "Deployment")
    scalers = of_kind(rendered, "ScaledObject")
    consumers = {
        n
        for n, d in deployments.items()
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "consumer"
    }
    assert set(scalers) == consumers
    for name, deployment in deployments.items():
        assert ("replicas" in deployment["spec"]) is (name not in scalers), name
    assert deployments["accounts-web"]["spec"]["replicas"] == 3  # the overlay's patch
    queues = {
        q["name"]
        for q in json.loads((REPO / "deploy" / "rabbitmq" / "definitions.json").read_text())[
            "queues"
        ]
    }
    for name, scaler in scalers.items():
        assert scaler["spec"]["scaleTargetRef"]["name"] == name
        for trigger in scaler["spec"]["triggers"]:
            assert trigger["metadata"]["queueName"] in queues
            assert trigger["authenticationRef"] == {"name": "rabbitmq-keda"}


def test_keda_logs_in_as_the_read_only_monitoring_user() -> None:
    definitions = json.loads((REPO / "deploy" / "rabbitmq" / "definitions.json").read_text())
    [keda] = [u for u in definitions["users"] if u["name"] == "keda"]
    assert keda["tags"] == ["monitoring"]
    [grant] = [p for p in definitions["permissions"] if p["user"] == "keda"]
    assert grant["configure"] == grant["write"] == grant["read"] == "^$"
    example = K8S / "overlays" / "production" / "secrets" / "rabbitmq-keda.env.example"
    assert "host=http://keda:<password>@rabbitmq:15672/" in example.read_text()


@external
def test_metrics_and_alerts_reach_the_prometheus_operator(rendered: list[dict[str, Any]]) -> None:
    [monitor] = of_kind(rendered, "PodMonitor").values()
    assert monitor["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/part-of": "signup-platform"
    }
    [endpoint] = monitor["spec"]["podMetricsEndpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    [rule] = of_kind(rendered, "PrometheusRule").values()
    alerts = yaml.load(
        (REPO / "deploy" / "prometheus" / "alerts.yml").read_text(), Loader=yaml.CSafeLoader
    )
    assert rule["spec"]["groups"] == alerts["groups"]


def test_the_base_documents_liveness_and_readiness() -> None:
    text = (K8S / "base" / "accounts-web.yaml").read_text()
    assert "livenessProbe" in text and "/healthz" in text and "without the broker" in text


@external
def test_every_role_has_a_disruption_budget(rendered: list[dict[str, Any]]) -> None:
    """But the dlq janitor: one replica, which a budget would keep from every node drain."""
    deployments = of_kind(rendered, "Deployment")
    budgets = of_kind(rendered, "PodDisruptionBudget")
    assert set(budgets) == set(deployments) - {"dlq-janitor"}
    for name, budget in budgets.items():
        assert budget["spec"]["selector"] == deployments[name]["spec"]["selector"]
    for document in rendered:
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == "signup-platform"


@external
def test_network_policies_let_services_reach_only_postgres_rabbitmq_dns_and_keys(
    rendered: list[dict[str, Any]],
) -> None:
    policies = of_kind(rendered, "NetworkPolicy")
    assert policies["default-deny"]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    for service in ("accounts", "notifications", "provisioning", "stats", "signup-dlq"):
        spec = policies[service]["spec"]
        assert spec["podSelector"] == {"matchLabels": {"signup-platform/service": service}}
        reached = set()
        for rule in spec["egress"]:
            ports = frozenset((p["protocol"], p["port"]) for p in rule["ports"])
            for peer in rule["to"]:
                if "ipBlock" in peer:
                    reached.add(("internet", ports))
                else:
                    labels = peer["podSelector"]["matchLabels"]
                    name = labels.get("app.kubernetes.io/name") or labels.get("k8s-app")
                    reached.add((name, ports))
        expected = {
            ("postgresql", frozenset({("TCP", 5432)})),
            ("rabbitmq", frozenset({("TCP", 5672)})),
            ("kube-dns", frozenset({("UDP", 53), ("TCP", 53)})),
        }
        if service == "notifications":
            expected.add(
                ("internet", frozenset({("TCP", 25), ("TCP", 465), ("TCP", 587), ("TCP", 443)}))
            )
        if service != "accounts":  # users' data keys, to open sealed events of the history
            expected.add(("accounts-web", frozenset({("TCP", 8000)})))
        if service == "signup-dlq":  # the dlq janitor: no database; the management API
            expected -= {("postgresql", frozenset({("TCP", 5432)}))}
            expected -= {("rabbitmq", frozenset({("TCP", 5672)}))}
            expected.add(("rabbitmq", frozenset({("TCP", 5672), ("TCP", 15672)})))
        assert reached == expected, service
