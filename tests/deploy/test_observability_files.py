"""The Prometheus scrape configuration, alert rules and Grafana dashboard under deploy/.

Every platform metric they name must exist in ``signup_shared.metrics`` or the dlq janitor's
``signup_dlq.janitor_metrics`` (a renamed metric
breaks dashboards and alerts silently otherwise). ``promtool`` (Debian package ``prometheus``,
which .ci/run installs) checks both scrape configurations and the rules, and runs the rules'
unit tests (``alerts_test.yml``), which cover every alert.
"""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from notifications.bootstrap import PendingDeliveries
from signup_dlq.janitor_metrics import JanitorMetrics
from signup_shared import metrics
from signup_shared.outbox.parking import ParkedCollector

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "signup-flow.json"
SIGNUP_METRIC = re.compile(r"\bsignup_[a-z_]+")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def defined_metric_names() -> set[str]:
    names = set()
    for family in metrics.REGISTRY.collect():
        names.update(sample.name for sample in family.samples)
        names.add(family.name + ("_total" if family.type == "counter" else ""))
    collectors = [
        metrics.OutboxCollector("x", lambda: (0, 0.0)),
        ParkedCollector("x", lambda: 0),
        PendingDeliveries(FakeDelivery()),  # type: ignore[arg-type]
    ]
    for collector in collectors:
        names.update(family.name for family in collector.collect())
    # the dlq janitor's own exposition (signup_dlq depends on the contracts only)
    janitor = JanitorMetrics().render().splitlines()
    names.update(re.split(r"[{ ]", line)[0] for line in janitor if not line.startswith("#"))
    return names


class FakeDelivery:
    """What the notifications collector reads: owed notifications by channel."""

    def pending_by_channel(self) -> dict[object, tuple[int, float]]:
        return {}


def referenced(text: str) -> set[str]:
    return set(SIGNUP_METRIC.findall(text))


def alert_expressions() -> list[str]:
    rules = yaml.load((PROMETHEUS / "alerts.yml").read_text(), Loader=yaml.CSafeLoader)
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_platform_metric_named_exists(source: str) -> None:
    expressions = alert_expressions() if source == "alerts" else dashboard_expressions()
    names = set().union(*(referenced(expr) for expr in expressions))
    assert names, "no platform metric referenced at all"
    defined = defined_metric_names()
    missing = {
        name
        for name in names
        if name not in defined and not any(name.endswith(s) for s in HISTOGRAM_SUFFIXES)
    }
    unknown_series = {
        name
        for name in names - missing
        if name.endswith(HISTOGRAM_SUFFIXES) and name.rsplit("_", 1)[0] not in defined
    }
    assert not missing and not unknown_series, (missing, unknown_series)


def test_the_issue_alerts_are_all_there() -> None:
    rules = yaml.load((PROMETHEUS / "alerts.yml").read_text(), Loader=yaml.CSafeLoader)
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {
        "DeadLettersWaiting",
        "OutboxStuck",
        "QueueWithoutConsumer",
        "ConsumerRestarting",
    } <= names


def test_scrape_configuration_reaches_rabbitmq_per_queue_metrics() -> None:
    config = yaml.load((PROMETHEUS / "prometheus.yml").read_text(), Loader=yaml.CSafeLoader)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["rabbitmq-queues"]["metrics_path"] == "/metrics/detailed"
    assert "queue_consumer_count" in jobs["rabbitmq-queues"]["params"]["family"]


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess[str]:
    program = shutil.which("promtool")
    assert program, "promtool is required (apt-get install prometheus; .ci/run installs it)"
    return subprocess.run(
        [program, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )


@pytest.mark.external
def test_promtool_accepts_the_configuration() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.external
def test_promtool_accepts_the_compose_configuration(tmp_path: Path) -> None:
    """As compose mounts it: alerts.yml beside it."""
    shutil.copy(DEPLOY / "compose" / "prometheus" / "prometheus.yml", tmp_path)
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path)
    result = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.external
def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_rule_test() -> None:
    rules = yaml.load((PROMETHEUS / "alerts.yml").read_text(), Loader=yaml.CSafeLoader)
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.load((PROMETHEUS / "alerts_test.yml").read_text(), Loader=yaml.CSafeLoader)[
        "tests"
    ]
    tested = {case["alertname"] for test in tests for case in test["alert_rule_test"]}
    assert alerts == tested


def test_every_platform_process_is_scraped_where_it_runs() -> None:
    """Relays too: the outbox alerts read their metrics."""
    local = yaml.load((PROMETHEUS / "prometheus.yml").read_text(), Loader=yaml.CSafeLoader)
    [job] = [j for j in local["scrape_configs"] if j["job_name"] == "signup-platform"]
    roles = {tuple(sorted(c["labels"].items())) for c in job["static_configs"]}
    assert (("role", "relay"), ("service", "accounts")) in roles
    assert (("role", "relay"), ("service", "provisioning")) in roles
    compose = yaml.load(
        (DEPLOY / "compose" / "prometheus" / "prometheus.yml").read_text(), Loader=yaml.CSafeLoader
    )
    [job] = [j for j in compose["scrape_configs"] if j["job_name"] == "signup-platform"]
    names = {name for config in job["dns_sd_configs"] for name in config["names"]}
    assert {"accounts-relay", "provisioning-relay"} <= names


@pytest.mark.external
def test_alert_rules_pass_their_unit_tests() -> None:
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr
