"""Writes the Kubernetes base (deploy/k8s/base) from one table of the platform's process roles.

One Deployment per process role (probes on its health port, resource requests and limits, a
non-root read-only container), a PodDisruptionBudget per role, a KEDA ScaledObject per consumer
on its queue depth, a NetworkPolicy per service (egress only to PostgreSQL, RabbitMQ and DNS;
notifications also to SMTP and the SMS gateway), per-service Secrets with placeholder values
and a migration Job per service. The overlays (deploy/k8s/overlays/*) set the namespace, the
image and what differs per environment. A test checks that the committed files match this
script and validates the rendered overlay against the Kubernetes schemas.

    .venv/bin/python deploy/k8s/generate.py
"""

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

BASE = Path(__file__).resolve().parent / "base"
IMAGE = "signup-platform"
PART_OF = "signup-platform"
SERVICE_LABEL = "signup-platform/service"
ROLE_LABEL = "app.kubernetes.io/name"
BROKER = "rabbitmq"  # the RabbitMQ cluster's client Service (e.g. RabbitMQ Cluster Operator)
BROKER_NODES = (
    "rabbitmq-server-0.rabbitmq-nodes",
    "rabbitmq-server-1.rabbitmq-nodes",
    "rabbitmq-server-2.rabbitmq-nodes",
)
DATABASE = "postgresql"
SERVICES = ("accounts", "notifications", "provisioning", "stats")


@dataclass(frozen=True)
class Role:
    name: str
    service: str
    component: str  # web | relay | consumer
    command: tuple[str, ...]
    port_variable: str | None = None  # the setting that holds its HTTP/health port
    port: int | None = None
    queues: tuple[str, ...] = ()  # what KEDA scales a consumer on
    replicas: int = 2
    cpu: tuple[str, str] = ("100m", "1")
    memory: tuple[str, str] = ("192Mi", "512Mi")


ROLES = (
    Role(
        "accounts-web",
        "accounts",
        "web",
        ("accounts-web",),
        "ACCOUNTS_HTTP_PORT",
        8000,
        cpu=("250m", "1"),
    ),
    Role(
        "accounts-relay",
        "accounts",
        "relay",
        ("accounts", "relay"),
        "ACCOUNTS_RELAY_HTTP_PORT",
        8020,
    ),
    Role(
        "accounts-consumer",
        "accounts",
        "consumer",
        ("accounts", "consume"),
        "ACCOUNTS_CONSUMER_HTTP_PORT",
        8010,
        ("accounts.space_provisioned",),
    ),
    Role(
        "notifications",
        "notifications",
        "consumer",
        ("notifications", "consume"),
        "NOTIFICATIONS_HTTP_PORT",
        8001,
        ("notifications.user_signed_up",),
    ),
    Role(
        "provisioning",
        "provisioning",
        "consumer",
        ("provisioning", "consume"),
        "PROVISIONING_HTTP_PORT",
        8002,
        ("provisioning.user_signed_up",),
    ),
    Role(
        "provisioning-relay",
        "provisioning",
        "relay",
        ("provisioning", "relay"),
        "PROVISIONING_RELAY_HTTP_PORT",
        8022,
    ),
    Role(
        "stats",
        "stats",
        "consumer",
        ("stats", "consume"),
        "STATS_CONSUMER_HTTP_PORT",
        8013,
        ("stats.user_signed_up", "stats.space_provisioned"),
    ),
    Role("stats-web", "stats", "web", ("stats-web",), "STATS_HTTP_PORT", 8003),
)
# Pods meet the "restricted" Pod Security Standard (with the container settings below).
POD_SECURITY = {
    "runAsNonRoot": True,
    "fsGroup": 10001,
    "seccompProfile": {"type": "RuntimeDefault"},
}
# Outside the cluster: the SMTP relay (submission and legacy ports) and the SMS gateway (HTTPS).
NOTIFICATIONS_EGRESS_PORTS = (25, 465, 587, 443)


def labels(role: Role) -> dict[str, str]:
    return {
        ROLE_LABEL: role.name,
        "app.kubernetes.io/component": role.component,
        "app.kubernetes.io/part-of": PART_OF,
        SERVICE_LABEL: role.service,
    }


def secret_name(service: str) -> str:
    return f"{service}-credentials"


def container(role: Role) -> dict[str, Any]:
    prefix = role.service.upper()
    env = [
        {"name": "LOG_FORMAT", "value": "json"},
        {"name": f"{prefix}_HTTP_HOST", "value": "0.0.0.0"},
    ]
    spec: dict[str, Any] = {
        "name": role.name,
        "image": IMAGE,
        "command": list(role.command),
        "envFrom": [{"secretRef": {"name": secret_name(role.service)}}],
        "env": env,
    }
    if role.service == "provisioning":
        env.append({"name": "PROVISIONING_SPACES_ROOT", "value": "/app/var/spaces"})
    if role.port is not None and role.port_variable is not None:
        env.append({"name": role.port_variable, "value": str(role.port)})
        env.append({"name": "HEALTH_PORT", "value": str(role.port)})
        spec["ports"] = [{"name": "http", "containerPort": role.port, "protocol": "TCP"}]
        spec["startupProbe"] = probe("/healthz", period=2, failures=30)
        spec["livenessProbe"] = probe("/healthz", period=10, failures=3)
        spec["readinessProbe"] = probe("/readyz", period=5, failures=2)
    spec["resources"] = {
        "requests": {"cpu": role.cpu[0], "memory": role.memory[0]},
        "limits": {"cpu": role.cpu[1], "memory": role.memory[1]},
    }
    spec["securityContext"] = {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    mounts = [{"name": "var", "mountPath": "/app/var"}]
    if role.service == "provisioning" and role.component == "consumer":
        mounts.append({"name": "spaces", "mountPath": "/app/var/spaces"})
    spec["volumeMounts"] = mounts
    return spec


def probe(path: str, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def deployment(role: Role) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [{"name": "var", "emptyDir": {}}]
    if role.service == "provisioning" and role.component == "consumer":
        volumes.append(
            {"name": "spaces", "persistentVolumeClaim": {"claimName": "provisioning-spaces"}}
        )
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": role.name, "labels": labels(role)},
        "spec": {
            "replicas": role.replicas,
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
                    "containers": [container(role)],
                    "volumes": volumes,
                },
            },
        },
    }


def disruption_budget(role: Role) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": role.name, "labels": labels(role)},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {ROLE_LABEL: role.name}}},
    }


def scaled_object(role: Role) -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": {"name": role.name, "labels": labels(role)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": role.name},
            "minReplicaCount": role.replicas,
            "maxReplicaCount": 10,
            "pollingInterval": 15,
            "cooldownPeriod": 300,
            "triggers": [
                {
                    "type": "rabbitmq",
                    "metadata": {
                        "protocol": "amqp",
                        "mode": "QueueLength",
                        "value": "500",
                        "queueName": queue,
                        "vhostName": "/",
                    },
                    "authenticationRef": {"name": "rabbitmq-keda"},
                }
                for queue in role.queues
            ],
        },
    }


def trigger_authentication() -> dict[str, Any]:
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "TriggerAuthentication",
        "metadata": {"name": "rabbitmq-keda", "labels": {"app.kubernetes.io/part-of": PART_OF}},
        "spec": {
            "secretTargetRef": [{"parameter": "host", "name": "rabbitmq-keda", "key": "host"}]
        },
    }


def amqp_url(service: str) -> str:
    return ";".join(f"amqp://{service}:CHANGE-ME@{node}:5672/%2F" for node in BROKER_NODES)


def secrets() -> list[dict[str, Any]]:
    """Placeholders only: replace them (sealed-secrets, external-secrets, or the overlay)."""
    found = []
    for service in SERVICES:
        prefix = service.upper()
        data = {
            f"{prefix}_DATABASE_URL": f"postgresql+psycopg://{service}:CHANGE-ME@{DATABASE}:5432/{service}",
            f"{prefix}_AMQP_URL": amqp_url(service),
        }
        if service == "notifications":
            data |= {
                "NOTIFICATIONS_SMTP_HOST": "smtp.example.com",
                "NOTIFICATIONS_SMTP_PORT": "587",
                "NOTIFICATIONS_SMTP_STARTTLS": "true",
                "NOTIFICATIONS_SMTP_USERNAME": "CHANGE-ME",
                "NOTIFICATIONS_SMTP_PASSWORD": "CHANGE-ME",
                "NOTIFICATIONS_SMS_BASE_URL": "https://sms.example.com",
                "NOTIFICATIONS_SMS_TOKEN": "CHANGE-ME",
            }
        found.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {
                    "name": secret_name(service),
                    "labels": {"app.kubernetes.io/part-of": PART_OF, SERVICE_LABEL: service},
                },
                "stringData": data,
            }
        )
    found.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {"name": "rabbitmq-keda", "labels": {"app.kubernetes.io/part-of": PART_OF}},
            "stringData": {"host": f"amqp://keda:CHANGE-ME@{BROKER}:5672/%2F"},
        }
    )
    return found


def network_policies() -> list[dict[str, Any]]:
    any_namespace: dict[str, Any] = {}
    dns = {
        "to": [
            {
                "namespaceSelector": {
                    "matchLabels": {"kubernetes.io/metadata.name": "kube-system"}
                },
                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
            }
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    postgres = {
        "to": [
            {
                "namespaceSelector": any_namespace,
                "podSelector": {"matchLabels": {ROLE_LABEL: DATABASE}},
            }
        ],
        "ports": [{"protocol": "TCP", "port": 5432}],
    }
    rabbitmq = {
        "to": [
            {
                "namespaceSelector": any_namespace,
                "podSelector": {"matchLabels": {ROLE_LABEL: BROKER}},
            }
        ],
        "ports": [{"protocol": "TCP", "port": 5672}],
    }
    policies: list[dict[str, Any]] = [
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "labels": {"app.kubernetes.io/part-of": PART_OF}},
            "spec": {
                "podSelector": {"matchLabels": {"app.kubernetes.io/part-of": PART_OF}},
                "policyTypes": ["Ingress", "Egress"],
            },
        }
    ]
    for service in SERVICES:
        roles = [role for role in ROLES if role.service == service]
        egress = [postgres, rabbitmq, dns]
        if service == "notifications":
            egress.append(
                {
                    "to": [
                        {
                            "ipBlock": {
                                "cidr": "0.0.0.0/0",
                                "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
                            }
                        }
                    ],
                    "ports": [
                        {"protocol": "TCP", "port": port} for port in NOTIFICATIONS_EGRESS_PORTS
                    ],
                }
            )
        ingress = []
        ports = sorted({role.port for role in roles if role.port is not None})
        web_ports = sorted(
            {role.port for role in roles if role.component == "web" and role.port is not None}
        )
        if ports:  # metrics scraping (and health checks from inside the cluster)
            ingress.append(
                {
                    "from": [
                        {
                            "namespaceSelector": any_namespace,
                            "podSelector": {"matchLabels": {ROLE_LABEL: "prometheus"}},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": port} for port in ports],
                }
            )
        if web_ports:  # the public API, through the ingress controller
            ingress.append({"ports": [{"protocol": "TCP", "port": port} for port in web_ports]})
        policies.append(
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {
                    "name": service,
                    "labels": {"app.kubernetes.io/part-of": PART_OF, SERVICE_LABEL: service},
                },
                "spec": {
                    "podSelector": {"matchLabels": {SERVICE_LABEL: service}},
                    "policyTypes": ["Ingress", "Egress"],
                    "ingress": ingress,
                    "egress": egress,
                },
            }
        )
    return policies


def web_services() -> list[dict[str, Any]]:
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
        for role in ROLES
        if role.component == "web"
    ]


def migration_jobs() -> list[dict[str, Any]]:
    jobs = []
    for service in SERVICES:
        role = Role(f"{service}-migrate", service, "migrate", ())
        spec = container(role)
        spec["command"] = ["sh", "-c", f"{service} migrate && {service} topology"]
        jobs.append(
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": role.name, "labels": labels(role)},
                "spec": {
                    "backoffLimit": 10,
                    "ttlSecondsAfterFinished": 3600,
                    "template": {
                        "metadata": {"labels": labels(role)},
                        "spec": {
                            "restartPolicy": "OnFailure",
                            "automountServiceAccountToken": False,
                            "securityContext": POD_SECURITY,
                            "containers": [spec],
                            "volumes": [{"name": "var", "emptyDir": {}}],
                        },
                    },
                },
            }
        )
    return jobs


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


def files() -> dict[str, list[dict[str, Any]]]:
    """File name (in base/) -> its documents."""
    out: dict[str, list[dict[str, Any]]] = {}
    for role in ROLES:
        documents = [deployment(role), disruption_budget(role)]
        if role.queues:
            documents.append(scaled_object(role))
        out[f"{role.name}.yaml"] = documents
    out["services.yaml"] = web_services()
    out["secrets.yaml"] = secrets()
    out["keda.yaml"] = [trigger_authentication()]
    out["network-policies.yaml"] = network_policies()
    out["migrations.yaml"] = migration_jobs()
    out["storage.yaml"] = [spaces_claim()]
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": sorted(out),
    }
    out["kustomization.yaml"] = [kustomization]
    return out


class _NoAliases(yaml.SafeDumper):
    """Writes a repeated object out in full each time (no YAML anchors in manifests)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


HEADER = "# Generated by deploy/k8s/generate.py from its table of roles: edit that, then run it.\n"


def render() -> dict[str, str]:
    return {
        name: HEADER + yaml.dump_all(documents, Dumper=_NoAliases, sort_keys=False, width=100)
        for name, documents in files().items()
    }


if __name__ == "__main__":
    BASE.mkdir(exist_ok=True)
    for name, text in render().items():
        (BASE / name).write_text(text)
    sys.stdout.write(f"wrote {len(render())} files to {BASE}\n")
