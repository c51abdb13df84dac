"""The Kubernetes manifests (deploy/k8s), validated offline.

No kustomize binary is installable from PyPI, so ``build`` below renders a kustomization itself:
``resources`` (files and directories), ``namespace``, ``labels``, ``images`` and strategic-merge
``patches`` (matched by kind and name; maps merged, lists of named items merged by name). It
refuses any other field, so an overlay cannot silently use a feature this renderer ignores.
Built-in kinds are validated with kubernetes-validate (the Kubernetes OpenAPI schemas, strict:
unknown fields fail). KEDA's kinds are not in those schemas: they are checked against the
required fields and types of KEDA's CRDs (keda.sh/v1alpha1), written out below as a JSON Schema.
"""

import copy
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAY = K8S / "overlays" / "production"
KUBERNETES_VERSION = "1.30.0"
KUSTOMIZE_FIELDS = {"apiVersion", "kind", "namespace", "resources", "labels", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}

# Required fields and types of keda.sh/v1alpha1 (from KEDA's CRDs, config/crd/bases).
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
KEDA_SCHEMAS: dict[str, dict[str, Any]] = {
    "ScaledObject": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "metadata": {"type": "object", "required": ["name"]},
            "spec": {
                "type": "object",
                "required": ["scaleTargetRef", "triggers"],
                "properties": {
                    "scaleTargetRef": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "kind": {"type": "string"},
                            "apiVersion": {"type": "string"},
                        },
                    },
                    "minReplicaCount": {"type": "integer", "minimum": 0},
                    "maxReplicaCount": {"type": "integer", "minimum": 1},
                    "pollingInterval": {"type": "integer"},
                    "cooldownPeriod": {"type": "integer"},
                    "triggers": {
                        "type": "array",
                        "minItems": 1,
                        "items": {
                            "type": "object",
                            "required": ["type", "metadata"],
                            "properties": {
                                "type": {"type": "string"},
                                "metadata": _STRING_MAP,
                                "authenticationRef": {"type": "object", "required": ["name"]},
                            },
                        },
                    },
                },
            },
        },
    },
    "TriggerAuthentication": {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {
            "apiVersion": {"const": "keda.sh/v1alpha1"},
            "spec": {
                "type": "object",
                "properties": {
                    "secretTargetRef": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["parameter", "name", "key"],
                            "properties": {
                                "parameter": {"type": "string"},
                                "name": {"type": "string"},
                                "key": {"type": "string"},
                            },
                        },
                    },
                },
            },
        },
    },
}


# A small kustomize ------------------------------------------------------------------------------
def build(directory: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - KUSTOMIZE_FIELDS
    assert not unsupported, f"{directory}: this test's renderer does not support {unsupported}"
    documents: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            documents.extend(build(path))
        else:
            documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    for patch in kustomization.get("patches", []):
        assert set(patch) == {"path"}, f"only file patches are supported: {patch}"
        for change in yaml.safe_load_all((directory / patch["path"]).read_text()):
            [target] = [d for d in documents if key(d) == key(change)]
            merge(target, change)
    for image in kustomization.get("images", []):
        for container in containers(documents):
            if container["image"].split(":")[0] == image["name"]:
                container["image"] = f"{image.get('newName', image['name'])}:{image['newTag']}"
    if "namespace" in kustomization:
        for document in documents:
            if document["kind"] not in CLUSTER_SCOPED:
                document["metadata"]["namespace"] = kustomization["namespace"]
    for label in kustomization.get("labels", []):
        for document in documents:
            document["metadata"].setdefault("labels", {}).update(label["pairs"])
    return documents


def key(document: dict[str, Any]) -> tuple[str, str]:
    return document["kind"], document["metadata"]["name"]


def merge(target: dict[str, Any], change: dict[str, Any]) -> None:
    """Strategic merge, the part we use: maps merge, lists of named maps merge by name."""
    for field, value in change.items():
        current = target.get(field)
        if isinstance(value, dict) and isinstance(current, dict):
            merge(current, value)
        elif (
            isinstance(value, list)
            and isinstance(current, list)
            and all(isinstance(v, dict) and "name" in v for v in value + current)
        ):
            by_name = {item["name"]: item for item in current}
            for item in value:
                if item["name"] in by_name:
                    merge(by_name[item["name"]], item)
                else:
                    current.append(copy.deepcopy(item))
        else:
            target[field] = copy.deepcopy(value)


def containers(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for document in documents:
        spec = document.get("spec", {}).get("template", {}).get("spec", {})
        found.extend(spec.get("containers", []))
    return found


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("k8s_generate", K8S / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    return build(OVERLAY)


def of_kind(documents: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in documents if d["kind"] == kind}


# The tests ---------------------------------------------------------------------------------------
def test_committed_base_matches_the_generator() -> None:
    module = generator()
    rendered = module.render()
    committed = {path.name: path.read_text() for path in (K8S / "base").glob("*.yaml")}
    assert committed == rendered, "deploy/k8s changed: run .venv/bin/python deploy/k8s/generate.py"


def test_every_builtin_resource_is_valid_for_kubernetes(rendered: list[dict[str, Any]]) -> None:
    builtin = [d for d in rendered if d["kind"] not in KEDA_KINDS]
    assert len(builtin) > 20
    for document in builtin:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_a_typo_in_a_manifest_fails_validation(rendered: list[dict[str, Any]]) -> None:
    deployment = copy.deepcopy(of_kind(rendered, "Deployment")["notifications"])
    deployment["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_keda_resources_have_what_keda_requires(rendered: list[dict[str, Any]]) -> None:
    keda = [d for d in rendered if d["kind"] in KEDA_KINDS]
    assert {d["kind"] for d in keda} == KEDA_KINDS
    for document in keda:
        jsonschema.validate(document, KEDA_SCHEMAS[document["kind"]])
    broken = copy.deepcopy(of_kind(rendered, "ScaledObject")["stats"])
    broken["spec"]["triggers"][0]["metadata"]["value"] = 500  # KEDA wants strings here
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, KEDA_SCHEMAS["ScaledObject"])


def test_one_deployment_per_process_role_with_probes_on_its_health_port(
    rendered: list[dict[str, Any]],
) -> None:
    roles = {role.name: role for role in generator().ROLES}
    procfile = {
        line.split(":", 1)[0]
        for line in (REPO / "deploy" / "Procfile").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert set(roles) == procfile - {"smtp-sink", "sms-sink"}
    deployments = of_kind(rendered, "Deployment")
    assert set(deployments) == set(roles)
    for name, deployment in deployments.items():
        role = roles[name]
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        assert container["command"] == list(role.command)
        assert container["image"] == "registry.example.com/signup-platform:0.1.0"
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert container["securityContext"]["runAsNonRoot"] is True
        if role.port is None:  # the relays serve no health endpoint (yet)
            assert "livenessProbe" not in container
            continue
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env[role.port_variable] == str(role.port)
        assert env[f"{role.service.upper()}_HTTP_HOST"] == "0.0.0.0"
        assert container["ports"] == [
            {"name": "http", "containerPort": role.port, "protocol": "TCP"}
        ]
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_the_overlay_patch_and_namespace_apply(rendered: list[dict[str, Any]]) -> None:
    web = of_kind(rendered, "Deployment")["accounts-web"]
    assert web["spec"]["replicas"] == 3
    [container] = web["spec"]["template"]["spec"]["containers"]
    assert container["resources"]["limits"]["cpu"] == "2"
    assert container["livenessProbe"]  # merged, not replaced
    for document in rendered:
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == "signup-platform"


def test_every_role_has_a_disruption_budget_and_every_consumer_a_scaler(
    rendered: list[dict[str, Any]],
) -> None:
    deployments = of_kind(rendered, "Deployment")
    budgets = of_kind(rendered, "PodDisruptionBudget")
    assert set(budgets) == set(deployments)
    for name, budget in budgets.items():
        assert budget["spec"]["selector"] == deployments[name]["spec"]["selector"]
    consumers = {
        n
        for n, d in deployments.items()
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "consumer"
    }
    scalers = of_kind(rendered, "ScaledObject")
    assert set(scalers) == consumers
    queues = {
        q["name"]
        for q in yaml.safe_load((REPO / "deploy" / "rabbitmq" / "definitions.json").read_text())[
            "queues"
        ]
    }
    for name, scaler in scalers.items():
        assert scaler["spec"]["scaleTargetRef"]["name"] == name
        for trigger in scaler["spec"]["triggers"]:
            assert trigger["type"] == "rabbitmq"
            assert trigger["metadata"]["queueName"] in queues
            assert trigger["metadata"]["queueName"].startswith(
                deployments[name]["metadata"]["labels"]["signup-platform/service"] + "."
            )


def test_network_policies_let_services_reach_only_postgres_rabbitmq_and_dns(
    rendered: list[dict[str, Any]],
) -> None:
    policies = of_kind(rendered, "NetworkPolicy")
    assert policies["default-deny"]["spec"]["policyTypes"] == ["Ingress", "Egress"]
    for service in ("accounts", "notifications", "provisioning", "stats"):
        spec = policies[service]["spec"]
        assert spec["podSelector"] == {"matchLabels": {"signup-platform/service": service}}
        reached = set()
        for rule in spec["egress"]:
            ports = {(p["protocol"], p["port"]) for p in rule["ports"]}
            for peer in rule["to"]:
                if "ipBlock" in peer:
                    reached.add(("internet", frozenset(ports)))
                else:
                    labels = peer["podSelector"]["matchLabels"]
                    reached.add(
                        (
                            labels.get("app.kubernetes.io/name") or labels.get("k8s-app"),
                            frozenset(ports),
                        )
                    )
        expected = {
            ("postgresql", frozenset({("TCP", 5432)})),
            ("rabbitmq", frozenset({("TCP", 5672)})),
            ("kube-dns", frozenset({("UDP", 53), ("TCP", 53)})),
        }
        if service == "notifications":
            expected.add(
                ("internet", frozenset({("TCP", 25), ("TCP", 465), ("TCP", 587), ("TCP", 443)}))
            )
        assert reached == expected, service


def test_credentials_are_per_service_secrets_with_placeholders_only(
    rendered: list[dict[str, Any]],
) -> None:
    secrets = of_kind(rendered, "Secret")
    for service in ("accounts", "notifications", "provisioning", "stats"):
        data = secrets[f"{service}-credentials"]["stringData"]
        prefix = service.upper()
        assert f"//{service}:CHANGE-ME@" in data[f"{prefix}_DATABASE_URL"]
        assert data[f"{prefix}_AMQP_URL"].count(f"amqp://{service}:CHANGE-ME@") == 3
    for secret in secrets.values():
        for name, value in secret["stringData"].items():
            if any(word in name for word in ("PASSWORD", "TOKEN")):
                assert value == "CHANGE-ME", f"{secret['metadata']['name']}: {name}"
    for deployment in of_kind(rendered, "Deployment").values():
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        service = deployment["metadata"]["labels"]["signup-platform/service"]
        assert container["envFrom"] == [{"secretRef": {"name": f"{service}-credentials"}}]
