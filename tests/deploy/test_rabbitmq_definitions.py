"""The deployable definitions file says exactly what the services declare in code."""

import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

GENERATOR = Path(__file__).resolve().parents[2] / "deploy" / "rabbitmq" / "generate.py"


def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rabbitmq_definitions", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_definitions_match_the_code() -> None:
    module = generator()
    assert module.OUTPUT.read_text() == module.render(), (
        "topology changed: run .venv/bin/python deploy/rabbitmq/generate.py"
    )


def test_every_service_queue_has_its_dead_letter_queue_and_retries() -> None:
    queues = {q["name"]: q for q in json.loads(generator().render())["queues"]}
    services = [
        name
        for name, q in queues.items()
        if q["arguments"].get("x-queue-type") == "quorum"
        and not name.endswith(".dlq")
        and ".retry." not in name
        and name != "events.unrouted"
    ]
    assert sorted(services) == [
        "accounts.space_provisioned",
        "accounts.user_erased",
        "audit.user_signed_up",
        "notifications.user_erasure_requested",
        "notifications.user_signed_up",
        "provisioning.user_erasure_requested",
        "provisioning.user_signed_up",
        "stats.space_provisioned",
        "stats.user_erasure_requested",
        "stats.user_signed_up",
    ]
    for name in services:
        assert f"{name}.dlq" in queues
        assert f"{name}.retry.1s" in queues


def test_the_history_stream_keeps_every_event_and_nobody_may_write_to_it() -> None:
    definitions = json.loads(generator().render())
    [stream] = [q for q in definitions["queues"] if q["name"] == "events.history"]
    assert stream["arguments"] == {
        "x-queue-type": "stream",
        "x-max-age": "30D",
        "x-max-length-bytes": 20_000_000_000,
        "x-stream-max-segment-size-bytes": 100_000_000,
        "x-initial-cluster-size": 3,
    }
    bindings = [b for b in definitions["bindings"] if b["destination"] == "events.history"]
    assert {b["source"] for b in bindings} == {"events"}
    assert [b["routing_key"] for b in bindings] == [
        "accounts.user_erasure_requested",
        "accounts.user_signed_up.v3",  # a signup is kept sealed, never as v1/v2 (clear data)
        "notifications.user_erased",
        "provisioning.space_provisioned",
        "provisioning.user_erased",
        "stats.user_erased",
    ]
    permissions = {p["user"]: p for p in definitions["permissions"]}
    for user, permission in permissions.items():
        assert not re.search(permission["write"], "events.history"), user
        assert not re.search(permission["configure"], "events.history"), user
    readers = {u for u, p in permissions.items() if re.search(p["read"], "events.history")}
    services = {"accounts", "notifications", "provisioning", "stats", "audit"}
    assert readers == {*services, "events-reader"}
    assert permissions["events-reader"]["read"] == r"^events\.history$"


def test_sealed_signups_reach_the_history_only_and_clear_ones_never_reach_it() -> None:
    definitions = json.loads(generator().render())
    events = [b for b in definitions["bindings"] if b["source"] == "events"]
    sealed = {b["destination"] for b in events if b["routing_key"] == "accounts.user_signed_up.v3"}
    assert sealed == {"events.history"}  # no service queue reads v3 on the live path
    clear = {"accounts.user_signed_up", "accounts.user_signed_up.v2"}
    readers = {b["destination"] for b in events if b["routing_key"] in clear}
    assert "events.history" not in readers
    assert {"notifications.user_signed_up", "stats.user_signed_up"} <= readers
    assert not any(b["routing_key"] == "#" for b in events)


def test_retries_and_dead_letters_route_through_topic_exchanges_by_queue_name() -> None:
    definitions = json.loads(generator().render())
    exchanges = {e["name"]: e["type"] for e in definitions["exchanges"]}
    assert exchanges["events.retry"] == exchanges["events.dlx"] == "topic"
    queues = {q["name"]: q for q in definitions["queues"]}
    bindings = {(b["source"], b["destination"], b["routing_key"]) for b in definitions["bindings"]}
    for name, queue in queues.items():
        if ".retry." in name:
            main = name.split(".retry.")[0]
            assert queue["arguments"]["x-dead-letter-exchange"] == "events.retry"
            assert queue["arguments"]["x-dead-letter-routing-key"] == main
            assert ("events.retry", name, name) in bindings
            assert ("events.retry", main, main) in bindings
        if name.endswith(".dlq"):
            assert ("events.dlx", name, name) in bindings
        assert queue["arguments"].get("x-dead-letter-exchange") != ""  # never the default one
    writers = {
        p["user"] for p in definitions["permissions"] if re.search(p["write"], "amq.default")
    }
    # the operator's replay and the dlq janitor's kept dead letters, nobody else
    assert writers == {"signup-dlq", "signup-dlq-janitor"}
