"""The test kit for consuming teams: factories, the in-memory broker, run_handler, the fixtures."""

import functools
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from signup_contracts import (
    CONTENT_TYPE,
    EVENT_VERSION_HEADER,
    Envelope,
    SpaceProvisioned,
    UserSignedUp,
    published_routing_key,
    registered_events,
)
from signup_contracts.testing import (
    DEFAULT_PAYLOADS,
    EventFactory,
    InMemoryBroker,
    build,
    run_handler,
    space_provisioned,
    user_signed_up,
    wire_message,
)


def test_every_published_version_has_a_factory() -> None:
    assert set(DEFAULT_PAYLOADS) == set(registered_events())
    for event in EventFactory.every_event():
        data_class = registered_events()[(event.type, event.version)]
        assert isinstance(event.data, data_class)
        assert event.routing_key == published_routing_key(data_class)


def test_factories_make_fresh_ids_every_time() -> None:
    first, second = user_signed_up(), user_signed_up()
    assert first.id != second.id
    assert first.data.user_id != second.data.user_id
    assert first.correlation_id != second.correlation_id


def test_payload_and_envelope_fields_can_be_overridden() -> None:
    user_id, event_id = uuid.uuid4(), uuid.uuid4()
    at = datetime(2026, 1, 2, tzinfo=UTC)
    event = user_signed_up(
        user_id=user_id,
        plan="team",
        phone="+14155550123",
        event_id=event_id,
        correlation_id="corr-9",
        causation_id="cause",
        producer="it-accounts",
        occurred_at=at,
    )
    assert (event.data.user_id, event.data.plan, event.data.phone) == (
        user_id,
        "team",
        "+14155550123",
    )
    assert (event.id, event.correlation_id, event.causation_id) == (event_id, "corr-9", "cause")
    assert (event.producer, event.occurred_at, event.routing_key) == (
        "it-accounts",
        at,
        "it-accounts.user_signed_up",
    )


def test_an_override_is_validated_against_the_contract() -> None:
    with pytest.raises(ValidationError):
        space_provisioned(quota_bytes=-1)


def test_build_refuses_an_event_without_a_factory() -> None:
    class Unpublished(SpaceProvisioned):
        version = 99

    with pytest.raises(LookupError, match="no factory for SpaceProvisioned v99"):
        build(Unpublished)


def test_wire_message_is_what_the_producer_publishes() -> None:
    event = user_signed_up()
    message = wire_message(event)
    assert (message.exchange, message.routing_key) == ("events", "accounts.user_signed_up")
    assert message.body == event.to_json()
    assert message.headers == {EVENT_VERSION_HEADER: 1}
    assert message.properties["content_type"] == CONTENT_TYPE
    assert message.properties["delivery_mode"] == 2
    assert message.properties["message_id"] == str(event.id)
    assert message.properties["app_id"] == "accounts"


def test_the_broker_routes_by_topic_pattern() -> None:
    broker = InMemoryBroker()
    exact = broker.subscribe("accounts.user_signed_up", lambda e: None, name="exact")
    any_accounts = broker.subscribe("accounts.*", lambda e: None, name="any-accounts")
    everything = broker.subscribe("#", lambda e: None, name="everything")
    provisioned = broker.subscribe("*.space_provisioned", lambda e: None, name="provisioned")
    signup, space = user_signed_up(), space_provisioned()
    broker.publish(signup)
    broker.publish(space)
    assert [e.id for e in exact.received] == [signup.id]
    assert [e.id for e in any_accounts.received] == [signup.id]
    assert [e.id for e in everything.received] == [signup.id, space.id]
    assert [e.id for e in provisioned.received] == [space.id]
    assert broker.unrouted == []


def test_handlers_get_the_decoded_typed_event_not_the_published_object() -> None:
    broker, seen = InMemoryBroker(), list[Envelope[Any]]()
    broker.subscribe("accounts.user_signed_up", seen.append)
    event = user_signed_up()
    broker.publish(event)
    assert seen == [event]
    assert seen[0] is not event
    assert isinstance(seen[0].data, UserSignedUp)


def test_an_event_nobody_subscribed_to_is_kept_as_unrouted() -> None:
    broker = InMemoryBroker()
    broker.subscribe("provisioning.*", lambda e: None)
    event = user_signed_up()
    broker.publish(event)
    assert [e.id for e in broker.unrouted] == [event.id]


def test_events_a_handler_publishes_are_routed_after_it_returns() -> None:
    broker, order = InMemoryBroker(), []

    @broker.subscriber("accounts.user_signed_up")
    def provision(event: Envelope[Any]) -> Envelope[Any]:
        order.append("provision")
        return event.caused(space_provisioned().data, producer="provisioning")

    @broker.subscriber("accounts.user_signed_up")
    def welcome(event: Envelope[Any]) -> None:
        order.append("welcome")

    @broker.subscriber("provisioning.space_provisioned")
    def activate(event: Envelope[Any]) -> None:
        order.append("activate")

    signup = user_signed_up()
    broker.publish(signup)
    assert order == ["provision", "welcome", "activate"]
    [caused] = broker.published_with("provisioning.*")
    assert caused.causation_id == str(signup.id)
    assert caused.correlation_id == signup.correlation_id


def test_a_handler_error_reaches_the_publisher_and_drops_pending_deliveries() -> None:
    broker, later = InMemoryBroker(), list[Envelope[Any]]()

    def fail(event: Envelope[Any]) -> None:
        raise RuntimeError("handler failed")

    broker.subscribe("#", fail)
    broker.subscribe("#", later.append)
    with pytest.raises(RuntimeError, match="handler failed"):
        broker.publish(user_signed_up())
    assert later == []
    broker.subscriptions.pop(0)
    broker.publish(space_provisioned())
    assert len(later) == 1


def test_run_handler_returns_what_the_handler_published_both_ways() -> None:
    broker = InMemoryBroker()

    def handler(event: Envelope[UserSignedUp], publish: Any) -> Envelope[Any]:
        publish(
            event.caused(
                space_provisioned(user_id=event.data.user_id).data, producer="provisioning"
            )
        )
        return event.caused(space_provisioned().data, producer="provisioning")

    signup = user_signed_up()
    published = run_handler(
        functools.partial(handler, publish=broker.publish), signup, broker=broker
    )
    assert [e.type for e in published] == ["SpaceProvisioned", "SpaceProvisioned"]
    assert published[0].data.user_id == signup.data.user_id
    assert all(e.causation_id == str(signup.id) for e in published)


def test_run_handler_with_a_handler_that_publishes_nothing() -> None:
    assert run_handler(lambda event: None, space_provisioned()) == []


def test_a_handler_returning_something_else_is_an_error() -> None:
    with pytest.raises(TypeError, match="returns None, an Envelope or Envelopes"):
        run_handler(lambda event: "done", space_provisioned())


def test_the_plugin_fixtures(event_broker: InMemoryBroker, event_factory: EventFactory) -> None:
    received: list[Envelope[Any]] = []
    event_broker.subscribe("accounts.#", received.append)
    event_broker.publish(event_factory.user_signed_up(plan="pro"))
    assert [e.data.plan for e in received] == ["pro"]
    assert isinstance(event_factory.build(SpaceProvisioned).data, SpaceProvisioned)


def test_the_readme_consumer_example_runs() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    [example] = [
        block
        for block in re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
        if "InMemoryBroker" in block
    ]
    namespace: dict[str, Any] = {}
    exec(compile(example, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["welcomed"] == ["grace@example.com"]
