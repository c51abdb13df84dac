"""The deployable definitions file says exactly what the services declare in code."""

import importlib.util
import json
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
    services = [name for name, q in queues.items()
                if q["arguments"].get("x-queue-type") == "quorum" and not name.endswith(".dlq")]
    assert sorted(services) == [
        "accounts.space_provisioned", "notifications.user_signed_up",
        "provisioning.user_signed_up", "stats.space_provisioned", "stats.user_signed_up",
    ]
    for name in services:
        assert f"{name}.dlq" in queues
        assert f"{name}.retry.1s" in queues
