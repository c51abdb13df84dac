"""Signup Platform event contracts: the public API other services subscribe to.

A contract never changes incompatibly: add a new version (``version=2``) beside the old one.
"""

from signup_contracts.amqp import (
    CONTENT_TYPE,
    EVENT_VERSION_HEADER,
    EVENTS_EXCHANGE,
    EVENTS_EXCHANGE_TYPE,
    TRACEPARENT_HEADER,
    published_routing_key,
    routing_key,
    topic_matches,
)
from signup_contracts.envelope import (
    Envelope,
    EventData,
    UnknownEventError,
    event_name,
    parse_envelope,
    publishers,
    register,
    registered_events,
)
from signup_contracts.events import (
    E164,
    ERASED_EMAIL_DOMAIN,
    ERASURE_HOLDERS,
    PLANS,
    Plan,
    SpaceProvisioned,
    UserErased,
    UserErasureRequested,
    UserSignedUp,
    UserSignedUpV2,
    is_redacted,
    redact_user_signed_up,
    upcast,
)

__all__ = [
    "CONTENT_TYPE",
    "E164",
    "ERASED_EMAIL_DOMAIN",
    "ERASURE_HOLDERS",
    "EVENTS_EXCHANGE",
    "EVENTS_EXCHANGE_TYPE",
    "EVENT_VERSION_HEADER",
    "PLANS",
    "TRACEPARENT_HEADER",
    "Envelope",
    "EventData",
    "Plan",
    "SpaceProvisioned",
    "UnknownEventError",
    "UserErased",
    "UserErasureRequested",
    "UserSignedUp",
    "UserSignedUpV2",
    "event_name",
    "is_redacted",
    "parse_envelope",
    "published_routing_key",
    "publishers",
    "redact_user_signed_up",
    "register",
    "registered_events",
    "routing_key",
    "topic_matches",
    "upcast",
]
