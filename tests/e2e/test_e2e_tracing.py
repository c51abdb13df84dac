"""One signup is one trace: from the HTTP request through the outbox, the broker and every
consumer of all four services, and on through the event provisioning publishes in turn."""

import json
import uuid
from pathlib import Path
from typing import Any

import httpx

from platform_harness.stack import Stack, wait_until

EXPECTED = {
    "accounts-web",
    "accounts-relay",
    "notifications-consume",
    "provisioning-consume",
    "provisioning-relay",
    "stats-consume",
    "accounts-consume",
}


def spans_of(trace_file: Path, trace_id: str) -> list[dict[str, Any]]:
    if not trace_file.exists():
        return []
    spans = [json.loads(line) for line in trace_file.read_text().splitlines() if line.strip()]
    return [span for span in spans if span["context"]["trace_id"] == f"0x{trace_id}"]


def test_one_signup_is_one_trace_across_all_four_services(stack: Stack, trace_file: Path) -> None:
    trace_id = uuid.uuid4().hex
    caller = f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"
    with httpx.Client(timeout=10) as client:
        response = client.post(
            stack.url("accounts", "/signups"),
            json={
                "email": f"traced-{trace_id[:8]}@example.com",
                "full_name": "Traced User",
                "plan": "pro",
                "phone": "+15550001234",
            },
            headers={"traceparent": caller},
        )
    assert response.status_code == 201, response.text

    def services() -> set[str]:
        return {
            span["resource"]["attributes"]["service.name"]
            for span in spans_of(trace_file, trace_id)
        }

    wait_until(
        lambda: services() >= EXPECTED,
        timeout=30,
        interval=0.25,
        message=f"spans of every process in the trace (seen: {sorted(services())})",
    )
    spans = spans_of(trace_file, trace_id)
    names = {span["name"] for span in spans}
    assert "POST /signups" in names
    assert {
        "consume notifications.user_signed_up",
        "consume provisioning.user_signed_up",
        "consume stats.user_signed_up",
        "consume accounts.space_provisioned",
        "consume stats.space_provisioned",
    } <= names
    ids = {span["context"]["span_id"] for span in spans}
    roots = [span for span in spans if span["parent_id"] not in ids]
    assert [root["name"] for root in roots] == ["POST /signups"], "one tree, rooted at the request"
