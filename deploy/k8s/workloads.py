"""The workloads of the Kubernetes base (deploy/k8s/generate.py writes them): one Deployment per
role (probes on its port, requests and limits, non-root and read-only) and its
PodDisruptionBudget.

Migrations run in an init container of every pod of the service (``<service> migrate``: alembic,
idempotent, each migration in one transaction), so a pod starts only once its schema is current
and a new image migrates before it serves; re-applying needs no Job to delete.

A janitor role (the dlq janitor: ``signup-dlq drop-erased --all --every``) is a Deployment of one
replica, replaced with ``Recreate`` (never two passes at once), with no database (no migration),
no readiness (no Service sends it work: /healthz only) and no PodDisruptionBudget (one that keeps
its single pod would block every node drain; a pass stopped by SIGTERM resumes on the new pod).
Why a Deployment, not a CronJob: docs/erasure.md, "Dead letters of erased users".
"""

from typing import Any

from network import PART_OF, ROLE_LABEL, SERVICE_LABEL

IMAGE = "signup-platform"
WEB_REPLICAS = 2  # web and relay roles (KEDA scales consumers: generate.CONSUMER_REPLICAS)
RESOURCES = {  # role -> (cpu request, cpu limit, memory request, memory limit)
    "accounts-web": ("250m", "1", "192Mi", "512Mi"),
    "dlq-janitor": ("20m", "500m", "64Mi", "256Mi"),  # asleep but for a pass every 300 s
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
        {"name": f"{service.upper().replace('-', '_')}_HTTP_HOST", "value": "0.0.0.0"},
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
    if role.health == "ready":
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


def is_janitor(role: Any) -> bool:
    return bool(role.component == "janitor")


def deployment(role: Any) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [{"name": "var", "emptyDir": {}}]
    if _has_spaces(role):
        claim = {"claimName": "provisioning-spaces"}
        volumes.append({"name": "spaces", "persistentVolumeClaim": claim})
    spec: dict[str, Any] = {}
    if role.scaling != "consumer":  # KEDA owns the replica count of consumers
        spec["replicas"] = 1 if is_janitor(role) else WEB_REPLICAS
    rolling = {"maxUnavailable": 0, "maxSurge": 1}
    spec |= {
        "selector": {"matchLabels": {ROLE_LABEL: role.name}},
        "strategy": (
            {"type": "Recreate"}
            if is_janitor(role)
            else {"type": "RollingUpdate", "rollingUpdate": rolling}
        ),
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
                **(
                    {}
                    if is_janitor(role)
                    else {"initContainers": [migrate_container(role.service)]}
                ),
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
