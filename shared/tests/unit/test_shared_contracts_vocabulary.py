"""The runtime speaks the contracts' vocabulary: what consumers read in docs/asyncapi is what
the relay publishes and the topology declares."""

import signup_contracts
from signup_contracts.testing import user_signed_up, wire_message
from signup_shared import events, tracing
from signup_shared.events import contracts
from signup_shared.messaging import topology, wire
from signup_shared.messaging.wire import OutgoingMessage


def test_the_old_import_paths_give_the_contracts_own_objects() -> None:
    assert events.UserSignedUp is signup_contracts.UserSignedUp
    assert events.Envelope is signup_contracts.Envelope
    assert events.parse_envelope is signup_contracts.parse_envelope
    assert contracts.Plan is signup_contracts.Plan


def test_the_topology_uses_the_exchanges_the_contracts_name() -> None:
    assert topology.events_exchange.name == signup_contracts.EVENTS_EXCHANGE
    assert topology.events_exchange.type == signup_contracts.EVENTS_EXCHANGE_TYPE
    assert topology.dead_letter_exchange.name == signup_contracts.amqp.DEAD_LETTER_EXCHANGE
    assert topology.retry_exchange.name == signup_contracts.amqp.RETRY_EXCHANGE
    assert topology.unrouted_exchange.name == signup_contracts.amqp.UNROUTED_EXCHANGE


def test_the_runtime_keeps_no_second_name_for_the_contracts_vocabulary() -> None:
    """Callers import the names from ``signup_contracts.amqp``: no alias to drift from it."""
    assert not hasattr(topology, "UNROUTED")
    assert not hasattr(tracing, "TRACEPARENT")
    assert not {"CONTENT_TYPE", "PERSISTENT"} & set(wire.__all__)


def test_the_relay_sends_what_the_contracts_document() -> None:
    event = user_signed_up()
    documented = wire_message(event)
    sent = OutgoingMessage.from_envelope(event)
    message = sent.to_amqp()
    assert (message.properties["content_type"], message.properties["delivery_mode"]) == (
        signup_contracts.CONTENT_TYPE,
        signup_contracts.amqp.PERSISTENT,
    )
    assert (sent.exchange, sent.routing_key, sent.body) == (
        documented.exchange,
        documented.routing_key,
        documented.body,
    )
    for name, value in documented.properties.items():
        if name != "timestamp":
            assert message.properties[name] == value, name
    headers = message.properties["application_headers"]
    for name, value in documented.headers.items():
        assert headers[name] == value, name
