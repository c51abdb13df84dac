"""After N signups, every process's ``/metrics`` counts exactly what happened.

On the session's stack: once it is quiet (every queue empty, the counters still), each process
is scraped on its health port (web, relays, consumers); then N signups through the API, every
effect waited for, and each counter must have grown by exactly the flow: N requests answered
201; accounts' relay published N x the UserSignedUp versions it publishes (one outbox row per
version, each on its version's routing key, the sealed v3 included), provisioning's N; N
messages received and handled on each consumer queue (bound to one version's key: one copy a
signup); nothing retried or dead-lettered; and no outbox backlog is left.
"""

import contextlib
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from platform_harness.stack import Stack, wait_until

pytestmark = pytest.mark.e2e

N = 40
# Signup indexes of this module (emails and phones derive from them); the other e2e modules use
# 0..299 and 900_001+ on the same stack.
FIRST_INDEX = 700_000
PLANS = ("free", "pro", "team")
# Program (its name in deploy/Procfile) -> the queues it consumes; each gets one event a signup.
CONSUMER_QUEUES = {
    "accounts-consumer": ("accounts.space_provisioned",),
    "notifications": ("notifications.user_signed_up",),
    "provisioning": ("provisioning.user_signed_up",),
    "stats": ("stats.user_signed_up", "stats.space_provisioned"),
}
RELAYS = ("accounts-relay", "provisioning-relay")
WEB = ("accounts-web", "stats-web")

Samples = dict[str, list[tuple[dict[str, str], float]]]


def scrape(port: int) -> Samples:
    answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    answer.raise_for_status()
    found: Samples = defaultdict(list)
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[sample.name].append((sample.labels, sample.value))
    return found


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for found, value in samples.get(name, [])
        if all(found.get(key) == wanted for key, wanted in labels.items())
    )


def observed(stack: Stack) -> dict[str, float]:
    """The figures this test checks, read from every process's /metrics."""
    ports = stack.health_ports()
    assert set(ports) >= {*CONSUMER_QUEUES, *RELAYS, *WEB}, ports
    figures: dict[str, float] = {}
    accounts_web = scrape(ports["accounts-web"])
    figures["accounts-web 201"] = total(
        accounts_web, "signup_http_requests_total", method="POST", status="201"
    )
    figures["stats-web serves its metrics"] = float(
        "process_start_time_seconds" in scrape(ports["stats-web"])
    )
    for relay in RELAYS:
        samples = scrape(ports[relay])
        figures[f"{relay} published"] = total(samples, "signup_relay_published_total")
        figures[f"{relay} pending"] = total(samples, "signup_outbox_pending_rows")
        figures[f"{relay} has a backlog gauge"] = float("signup_outbox_pending_rows" in samples)
    for program, queues in CONSUMER_QUEUES.items():
        samples = scrape(ports[program])
        for queue in queues:
            figures[f"{queue} received"] = total(
                samples, "signup_messages_received_total", queue=queue
            )
            figures[f"{queue} handled"] = total(
                samples, "signup_messages_handled_total", queue=queue
            )
            figures[f"{queue} batch sizes sum"] = total(
                samples, "signup_batch_size_sum", queue=queue
            )
        figures[f"{program} retried"] = total(samples, "signup_messages_retried_total")
        figures[f"{program} dead-lettered"] = total(samples, "signup_messages_dead_lettered_total")
    return figures


def is_gauge(figure: str) -> bool:
    """Figures read as they are; every other one is a counter, compared by how much it grew."""
    return figure.endswith(("pending", "gauge", "serves its metrics"))


def growth(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {
        figure: value if is_gauge(figure) else value - before.get(figure, 0.0)
        for figure, value in after.items()
    }


def published_versions(stack: Stack) -> int:
    """How many UserSignedUp copies accounts publishes per signup on this stack: the clear
    versions of its setting (else 2), and the sealed v3 for the history."""
    setting = stack.env.get("ACCOUNTS_PUBLISH_USER_SIGNED_UP_VERSIONS", "2")
    return len({part for part in setting.strip("[] ").split(",") if part.strip()}) + 1


def expected(versions: int) -> dict[str, float]:
    figures = {"accounts-web 201": float(N), "stats-web serves its metrics": 1.0}
    for relay in RELAYS:
        figures[f"{relay} published"] = float(N * versions if relay == "accounts-relay" else N)
        figures[f"{relay} pending"] = 0.0
        figures[f"{relay} has a backlog gauge"] = 1.0
    for program, queues in CONSUMER_QUEUES.items():
        for queue in queues:
            figures[f"{queue} received"] = float(N)
            figures[f"{queue} handled"] = float(N)
            figures[f"{queue} batch sizes sum"] = float(N)
        figures[f"{program} retried"] = 0.0
        figures[f"{program} dead-lettered"] = 0.0
    return figures


def quiet(stack: Stack) -> dict[str, float]:
    """The figures once the stack is quiet: main and retry queues empty, two scrapes equal."""
    last: list[dict[str, float]] = [observed(stack)]

    def still() -> bool:
        queues_empty = all(
            count == 0 for queue, count in stack.queues().items() if not queue.endswith(".dlq")
        )
        now = observed(stack)
        unchanged = now == last[0]
        last[0] = now
        return queues_empty and unchanged

    wait_until(still, timeout=60, interval=1.0, message="the stack to be quiet")
    return last[0]


def test_every_process_counts_what_the_signups_did(stack: Stack) -> None:
    before = quiet(stack)
    with httpx.Client(timeout=10) as client, ThreadPoolExecutor(4) as pool:
        users = list(
            pool.map(
                lambda i: stack.signup(client, i, phone=i % 2 == 0, plan=PLANS[i % 3]),
                range(FIRST_INDEX, FIRST_INDEX + N),
            )
        )
    user_ids = {user["user_id"] for user in users}
    emails = {user["email"] for user in users}

    def effects_done() -> bool:
        mailed = {m["To"] for m in stack.mail()} & emails
        spaces = set(stack.spaces()) & user_ids
        active = stack.query(
            "accounts",
            "SELECT count(*) FROM subscriptions"
            " WHERE status = 'active' AND user_id::text = ANY(:ids)",
            ids=sorted(user_ids),
        )
        return len(mailed) == N and len(spaces) == N and active[0][0] == N

    wait_until(effects_done, timeout=120, interval=0.5, message="every signup's effects")
    versions = published_versions(stack)
    [(rows, keys)] = stack.query(
        "accounts",
        "SELECT count(*), count(DISTINCT routing_key) FROM outbox"
        " WHERE event_type = 'UserSignedUp'"
        " AND CAST(payload AS jsonb) -> 'data' ->> 'user_id' = ANY(:ids)",
        ids=sorted(user_ids),
    )
    assert (rows, keys) == (N * versions, versions)  # a row, on its own key, per version
    # The last acks (and the relays' marking rows sent) may trail the visible effects briefly.
    with contextlib.suppress(TimeoutError):
        wait_until(
            lambda: growth(before, observed(stack)) == expected(versions),
            timeout=30,
            interval=0.5,
            message="the metrics to settle",
        )
    assert growth(before, observed(stack)) == expected(versions)
