"""The Kubernetes base (deploy/k8s/base), from the role table (deploy/roles.toml).

Written by ``.venv/bin/python deploy/generate.py`` with the platform's other generated files.
One Deployment per role and a PodDisruptionBudget each (deploy/k8s/workloads.py), a KEDA
ScaledObject per consumer (which then owns its replica count: those Deployments carry no
``replicas``), one PodMonitor for every platform pod and a PrometheusRule holding
deploy/prometheus/alerts.yml (Prometheus Operator), the NetworkPolicies (deploy/k8s/network.py)
and the web Services. No Secret: the base only refers to ``<service>-credentials`` and
``rabbitmq-keda``, which an overlay generates from files kept out of git
(deploy/k8s/overlays/production/kustomization.yaml), so re-applying never overwrites them.
"""

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

K8S = Path(__file__).resolve().parent
sys.path.insert(0, str(K8S))
import network  # noqa: E402  (deploy/k8s is a folder of scripts, not a package)
import workloads  # noqa: E402

BASE = K8S / "base"
ALERTS = K8S.parent / "prometheus" / "alerts.yml"
PART_OF = network.PART_OF
SERVICE_LABEL = network.SERVICE_LABEL
ROLE_LABEL = network.ROLE_LABEL
KEDA_AUTH = "rabbitmq-keda"  # key "host": http://keda:<password>@rabbitmq:15672/%2F
CONSUMER_REPLICAS = (2, 10)  # KEDA scales consumers between these bounds


def scaled_object(role: Any) -> dict[str, Any]:
    trigger = {"type": "rabbitmq", "authenticationRef": {"name": KEDA_AUTH}}
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": role.name, "labels": workloads.labels(role)},
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
            "metadata": {"name": role.name, "labels": workloads.labels(role)},
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
        documents = [workloads.deployment(role)]
        if not workloads.is_janitor(role):
            documents.append(workloads.disruption_budget(role))
        if role.scaling == "consumer":
            documents.append(scaled_object(role))
        out[f"{role.name}.yaml"] = (workloads.PROBES, documents)
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
