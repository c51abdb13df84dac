"""The history stream's bindings come from the contracts registry: every registered version
without personal data in clear is bound, no version with personal data is."""

from signup_contracts import publishers, registered_events, routing_key
from signup_shared.messaging.history_stream import history_routing_keys, history_stream
from signup_shared.settings import HistorySettings


def keys_of(event: type) -> set[str]:
    return {routing_key(p, event.event_type, event.version) for p in publishers(event)}


def test_every_non_personal_version_is_bound_and_no_personal_one() -> None:
    bound = set(history_routing_keys())
    personal = [event for event in registered_events().values() if event.personal_data]
    assert {(e.event_type, e.version) for e in personal} == {
        ("UserSignedUp", 1),
        ("UserSignedUp", 2),
    }
    for event in registered_events().values():
        if event.personal_data:
            assert not keys_of(event) & bound, event
        else:
            assert keys_of(event) <= bound, event
    assert "#" not in bound and "accounts.user_signed_up.v3" in bound


def test_the_stream_queue_carries_one_binding_per_key_and_no_catch_all() -> None:
    stream = history_stream(HistorySettings.model_construct())
    assert stream.exchange is None or not stream.exchange.name
    assert sorted(b.routing_key for b in stream.bindings) == list(history_routing_keys())
    assert {b.exchange.name for b in stream.bindings} == {"events"}
