"""The NetworkPolicies of the Kubernetes base (deploy/k8s/generate.py writes them).

Default deny; each service reaches only PostgreSQL, RabbitMQ and DNS (notifications also the SMTP
relay and the SMS gateway outside the cluster; the consuming services also accounts' web API,
for users' data keys); Prometheus may scrape every port; the web
ports take the public API through the ingress controller. The dlq janitor (``signup-dlq``)
reaches RabbitMQ (AMQP and the management API, which lists the DLQs), accounts' web API (is a
user erased?) and DNS: no database.
"""

from collections.abc import Sequence
from typing import Any

PART_OF = "signup-platform"
SERVICE_LABEL = "signup-platform/service"
ROLE_LABEL = "app.kubernetes.io/name"
BROKER = "rabbitmq"  # the RabbitMQ cluster's pods and client Service (e.g. its Cluster Operator)
DATABASE = "postgresql"
# Outside the cluster: the SMTP relay (submission and legacy ports) and the SMS gateway (HTTPS).
NOTIFICATIONS_EGRESS_PORTS = (25, 465, 587, 443)
PRIVATE_RANGES = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
KEY_READERS = ("notifications", "provisioning", "stats", "audit")
JANITOR_SERVICE = "signup-dlq"
MANAGEMENT_PORT = 15672
"""They open sealed signups of the event history with users' keys from accounts' web API."""


def _peer(labels: dict[str, str], namespace: dict[str, Any]) -> dict[str, Any]:
    return {"namespaceSelector": namespace, "podSelector": {"matchLabels": labels}}


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def network_policies(services: Sequence[str], ports: dict[str, list[tuple[str, int]]]) -> list[Any]:
    """``ports``: service -> (component, port) of each of its roles."""
    anywhere: dict[str, Any] = {}
    dns = {
        "to": [
            _peer(
                {"k8s-app": "kube-dns"},
                {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            )
        ],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    postgres = {"to": [_peer({ROLE_LABEL: DATABASE}, anywhere)], "ports": _tcp(5432)}
    rabbitmq = {"to": [_peer({ROLE_LABEL: BROKER}, anywhere)], "ports": _tcp(5672)}
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
    accounts_web = sorted({port for c, port in ports.get("accounts", []) if c == "web"})
    keys = {"to": [_peer({ROLE_LABEL: "accounts-web"}, anywhere)], "ports": _tcp(*accounts_web)}
    for service in services:
        egress = [postgres, rabbitmq, dns]
        if service in KEY_READERS and accounts_web:  # users' data keys: POST /keys/lookup
            egress.append(keys)
        if service == JANITOR_SERVICE:  # GET /users/{id}; the DLQ list; no database
            broker = {"to": rabbitmq["to"], "ports": _tcp(5672, MANAGEMENT_PORT)}
            egress = [broker, dns, keys]
        if service == "notifications":
            outside = {"ipBlock": {"cidr": "0.0.0.0/0", "except": PRIVATE_RANGES}}
            egress.append({"to": [outside], "ports": _tcp(*NOTIFICATIONS_EGRESS_PORTS)})
        every = sorted({port for _, port in ports[service]})
        web = sorted({port for component, port in ports[service] if component == "web"})
        ingress: list[dict[str, Any]] = [  # metrics scraping (and health checks in the cluster)
            {"from": [_peer({ROLE_LABEL: "prometheus"}, anywhere)], "ports": _tcp(*every)}
        ]
        if web:  # the public API, through the ingress controller
            ingress.append({"ports": _tcp(*web)})
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
