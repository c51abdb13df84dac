"""The Kubernetes base (deploy/k8s/base), from the role table (deploy/roles.toml).

Written by ``.venv/bin/python deploy/generate.py`` with the platform's other generated files.
One Deployment per role (probes on its port, requests and limits, non-root and read-only), a
PodDisruptionBudget each, a KEDA ScaledObject per consumer (which then owns its replica count:
those Deployments carry no ``replicas``), one PodMonitor for every platform pod and a
PrometheusRule holding deploy/prometheus/alerts.yml (Prometheus Operator), the NetworkPolicies
(deploy/k8s/network.py) and the web Services. No Secret: the base only refers to
``<service>-credentials`` and ``rabbitmq-keda``, which an overlay generates from files kept out
of git (deploy/k8s/overlays/production/kustomization.yaml), so re-applying never overwrites them.

Migrations run in an init container of every pod of the service (``<service> migrate``: alembic,
idempotent, each migration in one transaction), so a pod starts only once its schema is current
and a new image migrates before it serves; re-applying needs no Job to delete.
"""

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

K8S = Path(__file__).resolve().parent
sys.path.insert(0, str(K8S))
import network  # noqa: E402  (deploy/k8s is a folder of scripts, not a package)

BASE = K8S / "base"
ALERTS = K8S.parent / "prometheus" / "alerts.yml"
IMAGE = "signup-platform"
PART_OF = network.PART_OF
SERVICE_LABEL = network.SERVICE_LABEL
ROLE_LABEL = network.ROLE_LABEL
KEDA_AUTH = "rabbitmq-keda"  # key "host": http://keda:<password>@rabbitmq:15672/%2F
WEB_REPLICAS = 2  # web and relay roles; KEDA scales consumers between these bounds:
CONSUMER_REPLICAS = (2, 10)
RESOURCES = {  # role -> (cpu request, cpu limit, memory request, memory limit)
    "accounts-web": ("250m", "1", "192Mi", "512Mi"),
}
DEFAULT_RESOURCES = ("100m", "1", "192Mi", "512Mi")
# Pods meet the "restricted" Pod Security Standard (with the container settings below).
POD_SECURITY = {
    "runAsNonRoot": True,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
CONTAINER_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}
PROBES = """\
# Probes (every role answers them on its port, named "http"):
# - startupProbe and livenessProbe ask /healthz: "this process is alive and not wedged". It
#   never depends on PostgreSQL or RabbitMQ, so an outage of either never restarts pods (a
#   restart would not fix it). Failing 3 times in a row (30 s) restarts the container.
# - readinessProbe asks /readyz: "send me work now". Web pods are ready without the broker
#   (signups go to the outbox while RabbitMQ is down, so the Service keeps them); consumers
#   and relays report not ready while they cannot reach what they work on.
"""


def labels(role: Any) -> dict[str, str]:
    return {
        ROLE_LABEL: role.name,
        "app.kubernetes.io/component": role.component,
        "app.kubernetes.io/part-of": PART_OF,
        SERVICE_LABEL: role.service,
    }


def _probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def _base_container(name: str, service: str, command: list[str]) -> dict[str, Any]:
    env = [
        {"name": "LOG_FORMAT", "value": "json"},
        {"name": f"{service.upper()}_HTTP_HOST", "value": "0.0.0.0"},
    ]
    if service == "provisioning":
        env.append({"name": "PROVISIONING_SPACES_ROOT", "value": "/app/var/spaces"})
    return {
        "name": name,
        "image": IMAGE,
        "command": command,
        "envFrom": [{"secretRef": {"name": f"{service}-credentials"}}],
        "env": env,
    }


def container(role: Any) -> dict[str, Any]:
    spec = _base_container(role.name, role.service, list(role.argv()))
    spec["env"] += [
        {"name": role.port_env, "value": str(role.port)},
        {"name": "HEALTH_PORT", "value": str(role.port)},  # the image's HEALTHCHECK
    ]
    spec["ports"] = [{"name": "http", "containerPort": role.port, "protocol": "TCP"}]
    spec["startupProbe"] = _probe("/healthz", period=2, failures=30)
    spec["livenessProbe"] = _probe("/healthz", period=10, failures=3)
    spec["readinessProbe"] = _probe("/readyz", period=5, failures=2)
    cpu, cpu_limit, memory, memory_limit = RESOURCES.get(role.name, DEFAULT_RESOURCES)
    spec["resources"] = {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit, "memory": memory_limit},
    }
    spec["securityContext"] = CONTAINER_SECURITY
    spec["volumeMounts"] = [{"name": "var", "mountPath": "/app/var"}]
    if _has_spaces(role):
        spec["volumeMounts"].append({"name": "spaces", "mountPath": "/app/var/spaces"})
    return spec


def migrate_container(service: str) -> dict[str, Any]:
    spec = _base_container("migrate", service, [service, "migrate"])
    spec["resources"] = {
        "requests": {"cpu": "50m", "memory": "128Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }
    spec["securityContext"] = CONTAINER_SECURITY
    spec["volumeMounts"] = [{"name": "var", "mountPath": "/app/var"}]
    return spec


def _has_spaces(role: Any) -> bool:
    return bool(role.service == "provisioning" and role.component == "consumer")


def deployment(role: Any) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [{"name": "var", "emptyDir": {}}]
    if _has_spaces(role):
        claim = {"claimName": "provisioning-spaces"}
        volumes.append({"name": "spaces", "persistentVolumeClaim": claim})
    spec: dict[str, Any] = {}
    if role.scaling != "consumer":  # KEDA owns the replica count of consumers
        spec["replicas"] = WEB_REPLICAS
    spec |= {
        "selector": {"matchLabels": {ROLE_LABEL: role.name}},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        },
        "template": {
            "metadata": {"labels": labels(role)},
            "spec": {
                "terminationGracePeriodSeconds": 30,
                "automountServiceAccountToken": False,
                "securityContext": POD_SECURITY,
                "topologySpreadConstraints": [
                    {
                        "maxSkew": 1,
                        "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": {ROLE_LABEL: role.name}},
                    }
                ],
                "initContainers": [migrate_container(role.service)],
                "containers": [container(role)],
                "volumes": volumes,
            },
        },
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": role.name, "labels": labels(role)},
        "spec": spec,
    }


def disruption_budget(role: Any) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": role.name, "labels": labels(role)},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {ROLE_LABEL: role.name}}},
    }


def scaled_object(role: Any) -> dict[str, Any]:
    trigger = {"type": "rabbitmq", "authenticationRef": {"name": KEDA_AUTH}}
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": role.name, "labels": labels(role)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": role.name},
            "minReplicaCount": CONSUMER_REPLICAS[0],
            "maxReplicaCount": CONSUMER_REPLICAS[1],
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "triggers": [
                trigger
                | {
                    "metadata": {
                        "protocol": "http",
                        "mode": "QueueLength",
                        "value": "500",
                        "queueName": queue,
                        "vhostName": "/",
                    }
                }
                for queue in role.queues
            ],
        },
    }


def trigger_authentication() -> dict[str, Any]:
    """KEDA reads queue depths as the read-only ``keda`` user (deploy/rabbitmq/definitions.json)."""
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": {"name": KEDA_AUTH, "labels": {"app.kubernetes.io/part-of": PART_OF}},
        "spec": {"secretTargetRef": [{"parameter": "host", "name": KEDA_AUTH, "key": "host"}]},
    }


def pod_monitor() -> dict[str, Any]:
    """Every platform pod's /metrics, labelled like the other scrape configurations."""
    relabel = [
        {"targetLabel": "job", "replacement": PART_OF, "action": "replace"},
        {
            "sourceLabels": ["__meta_kubernetes_pod_label_signup_platform_service"],
            "targetLabel": "service",
            "action": "replace",
        },
        {
            "sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_component"],
            "targetLabel": "role",
            "action": "replace",
        },
    ]
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": PART_OF, "labels": {"app.kubernetes.io/part-of": PART_OF}},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/part-of": PART_OF}},
            "podMetricsEndpoints": [
                {"port": "http", "path": "/metrics", "interval": "15s", "relabelings": relabel}
            ],
        },
    }


def prometheus_rule() -> dict[str, Any]:
    """deploy/prometheus/alerts.yml as it is: the same rules as compose and `make run`."""
    alerts = yaml.safe_load(ALERTS.read_text())
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": PART_OF, "labels": {"app.kubernetes.io/part-of": PART_OF}},
        "spec": {"groups": alerts["groups"]},
    }


def web_services(roles: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": role.name, "labels": labels(role)},
            "spec": {
                "selector": {ROLE_LABEL: role.name},
                "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
            },
        }
        for role in roles
        if role.component == "web"
    ]


def spaces_claim() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {
            "name": "provisioning-spaces",
            "labels": {"app.kubernetes.io/part-of": PART_OF, SERVICE_LABEL: "provisioning"},
        },
        "spec": {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "10Gi"}}},
    }


def files(table: Sequence[Any]) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """File name (in base/) -> (its comment, its documents)."""
    roles = [role for role in table if role.kubernetes]
    services = sorted({role.service for role in roles})
    out: dict[str, tuple[str, list[dict[str, Any]]]] = {}
    for role in roles:
        documents = [deployment(role), disruption_budget(role)]
        if role.scaling == "consumer":
            documents.append(scaled_object(role))
        out[f"{role.name}.yaml"] = (PROBES, documents)
    ports = {s: [(r.component, r.port) for r in roles if r.service == s] for s in services}
    out["services.yaml"] = ("", web_services(roles))
    out["keda.yaml"] = ("", [trigger_authentication()])
    out["monitoring.yaml"] = ("", [pod_monitor(), prometheus_rule()])
    out["network-policies.yaml"] = ("", network.network_policies(services, ports))
    out["storage.yaml"] = ("", [spaces_claim()])
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(out),
    }
    out["kustomization.yaml"] = ("", [kustomization])
    return out


class _NoAliases(yaml.CSafeDumper):
    """Writes a repeated object out in full each time (no YAML anchors in manifests). LibYAML's
    emitter writes the same text as PyYAML's own, four times faster."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


HEADER = "# Generated by deploy/generate.py from deploy/roles.toml: edit that, then run it.\n"


def render(table: Sequence[Any]) -> dict[str, str]:
    return {
        name: HEADER
        + comment
        + yaml.dump_all(documents, Dumper=_NoAliases, sort_keys=False, width=100)
        for name, (comment, documents) in files(table).items()
    }
