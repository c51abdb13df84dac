"""Event contracts: the public API other services subscribe to.

A contract never changes incompatibly: add a new version (``version=2``) beside the old one.
"""

from signup_shared.events.contracts import SpaceProvisioned, UserSignedUp
from signup_shared.events.envelope import (
    Envelope,
    EventData,
    UnknownEventError,
    event_name,
    parse_envelope,
    registered_events,
)

__all__ = [
    "Envelope",
    "EventData",
    "SpaceProvisioned",
    "UnknownEventError",
    "UserSignedUp",
    "event_name",
    "parse_envelope",
    "registered_events",
]
