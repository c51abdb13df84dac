"""The AsyncAPI document: generated from the contracts and the topology, valid, and checked in."""

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from signup_contracts import (
    EVENT_VERSION_HEADER,
    EVENTS_EXCHANGE,
    TRACEPARENT_HEADER,
    registered_events,
)
from signup_contracts.asyncapi import (
    COMMAND,
    ConsumerQueue,
    consumer_queues,
    document,
    generate,
    main,
    message_key,
)
from signup_contracts.schemas import message_schema

ROOT = Path(__file__).resolve().parents[2]
CHECKED_IN = ROOT / "docs" / "asyncapi" / "asyncapi.json"
DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "definitions.json"
SPEC = Path(__file__).with_name("vendor") / "asyncapi" / "asyncapi-3.0.0-without-id.json"


@cache
def validator() -> jsonschema_rs.Draft7Validator:
    """Built once (~20 ms); a validation then takes under 1 ms, where the pure-Python jsonschema
    takes ~80 ms over the AsyncAPI 3 schema's references."""
    return jsonschema_rs.Draft7Validator(json.loads(SPEC.read_text()))


def errors(data: dict[str, Any]) -> list[str]:
    return [error.message for error in validator().iter_errors(data)]


def definitions(*bindings: tuple[str, str], extra_queues: tuple[str, ...] = ()) -> dict[str, Any]:
    queues = [name for name, _ in bindings] + list(extra_queues)
    return {
        "queues": [{"name": name} for name in queues],
        "bindings": [
            {
                "source": EVENTS_EXCHANGE,
                "destination": name,
                "destination_type": "queue",
                "routing_key": key,
            }
            for name, key in bindings
        ],
    }


def test_the_checked_in_document_is_up_to_date() -> None:
    assert CHECKED_IN.read_text() == generate(DEFINITIONS), (
        f"docs/asyncapi/asyncapi.json is out of date: run .venv/bin/{COMMAND} from the "
        "repository root"
    )


def test_the_checked_in_document_validates_against_the_asyncapi_3_schema() -> None:
    assert errors(json.loads(CHECKED_IN.read_text())) == []


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.pop("info"),
        lambda d: d["channels"]["accounts.user_signed_up"]["bindings"]["amqp"].update(
            {"is": "exchange"}
        ),
        lambda d: d["operations"]["stats.user_signed_up"].update({"action": "consume"}),
        lambda d: d["components"]["messages"]["UserSignedUp.v1"].update({"payload": 42}),
    ],
    ids=["no info", "bad amqp binding", "bad action", "payload not a schema"],
)
def test_the_validation_catches_a_broken_document(breakage: Any) -> None:
    broken = copy.deepcopy(json.loads(CHECKED_IN.read_text()))
    breakage(broken)
    assert errors(broken)


def test_queues_come_from_the_bindings_of_the_events_exchange() -> None:
    found = consumer_queues(
        {
            **definitions(
                ("stats.user_signed_up", "accounts.user_signed_up"),
                extra_queues=(
                    "stats.user_signed_up.dlq",
                    "stats.user_signed_up.retry.1s",
                    "stats.user_signed_up.retry.10s",
                ),
            ),
            "exchanges": [],
        }
        | {
            "bindings": [
                *definitions(("stats.user_signed_up", "accounts.user_signed_up"))["bindings"],
                {
                    "source": "events.dlx",
                    "destination": "stats.user_signed_up.dlq",
                    "destination_type": "queue",
                    "routing_key": "stats.user_signed_up.dlq",
                },
            ]
        }
    )
    assert found == [
        ConsumerQueue(
            "stats.user_signed_up",
            "accounts.user_signed_up",
            "stats.user_signed_up.dlq",
            ("stats.user_signed_up.retry.1s", "stats.user_signed_up.retry.10s"),
        )
    ]
    assert found[0].service == "stats"


def test_one_channel_per_routing_key_one_key_per_version() -> None:
    data = document([], "1.0")
    assert set(data["channels"]) == {
        "accounts.user_signed_up",
        "accounts.user_signed_up.v2",
        "accounts.user_erasure_requested",
        "accounts.user_signed_up.v3",
        "provisioning.space_provisioned",
        # UserErased: one channel per holder that publishes it
        "notifications.user_erased",
        "provisioning.user_erased",
        "stats.user_erased",
    }
    summary = data["channels"]["stats.user_erased"]["summary"]
    assert summary == "UserErased events published by stats."
    assert list(data["channels"]["accounts.user_signed_up.v2"]["messages"]) == ["UserSignedUp.v2"]
    channel = data["channels"]["accounts.user_signed_up"]
    assert channel["bindings"]["amqp"]["exchange"]["name"] == EVENTS_EXCHANGE
    assert channel["bindings"]["amqp"]["exchange"]["type"] == "topic"
    assert set(data["components"]["messages"]) == {
        message_key(event) for event in registered_events().values()
    }
    assert {op["action"] for op in data["operations"].values()} == {"send"}


def test_a_message_carries_the_payload_schema_the_version_header_and_the_properties() -> None:
    for event in registered_events().values():
        message = document([], "1.0")["components"]["messages"][message_key(event)]
        assert message["payload"] == message_schema(event)
        assert message["headers"]["properties"][EVENT_VERSION_HEADER]["const"] == event.version
        assert message["headers"]["required"] == [EVENT_VERSION_HEADER]
        assert TRACEPARENT_HEADER in message["headers"]["properties"]
        assert set(message["x-amqp-properties"]) >= {"message_id", "correlation_id", "app_id"}
        assert message["correlationId"]["location"] == "$message.payload#/correlation_id"


def test_each_consumer_queue_is_a_receive_operation_on_every_channel_it_matches() -> None:
    queues = consumer_queues(
        definitions(
            ("notifications.user_signed_up", "accounts.user_signed_up"),
            ("audit.everything", "#"),
            ("orphan.nothing", "billing.invoice_paid"),
        )
    )
    operations = document(queues, "1.0")["operations"]
    receive = {name: op for name, op in operations.items() if op["action"] == "receive"}
    assert set(receive) == {
        "notifications.user_signed_up",
        "audit.everything.from.accounts.user_signed_up",
        "audit.everything.from.accounts.user_signed_up.v2",
        "audit.everything.from.accounts.user_signed_up.v3",
        "audit.everything.from.provisioning.space_provisioned",
        "audit.everything.from.accounts.user_erasure_requested",
        "audit.everything.from.notifications.user_erased",
        "audit.everything.from.provisioning.user_erased",
        "audit.everything.from.stats.user_erased",
    }
    operation = receive["notifications.user_signed_up"]
    assert operation["channel"] == {"$ref": "#/channels/accounts.user_signed_up"}
    assert operation["messages"] == [  # a queue bound to the v1 key receives v1 only
        {"$ref": "#/channels/accounts.user_signed_up/messages/UserSignedUp.v1"},
    ]
    assert operation["x-queue"]["service"] == "notifications"
    assert errors(document(queues, "1.0")) == []


def test_the_checked_in_document_names_the_queues_of_every_consuming_service() -> None:
    operations = json.loads(CHECKED_IN.read_text())["operations"]
    assert {name for name, op in operations.items() if op["action"] == "receive"} == {
        "accounts.space_provisioned",
        "audit.user_signed_up",
        "notifications.user_signed_up",
        "provisioning.user_signed_up",
        "stats.space_provisioned",
        "stats.user_signed_up",
        # erasure: every holder takes the request; accounts takes each holder's confirmation
        "notifications.user_erasure_requested",
        "provisioning.user_erasure_requested",
        "stats.user_erasure_requested",
        "accounts.user_erased.from.notifications.user_erased",
        "accounts.user_erased.from.provisioning.user_erased",
        "accounts.user_erased.from.stats.user_erased",
    }  # not events.history: it keeps every event, it consumes none


def test_the_command_writes_and_checks(tmp_path: Path) -> None:
    output = tmp_path / "asyncapi.json"
    args = ["--definitions", str(DEFINITIONS), "--output", str(output)]
    assert main([*args, "--check"]) == 1
    assert main(args) == 0
    assert main([*args, "--check"]) == 0
    assert output.read_text() == CHECKED_IN.read_text()
