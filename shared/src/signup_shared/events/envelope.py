"""The envelope and the registry: re-exported from ``signup_contracts.envelope``."""

from pydantic import ValidationError

from signup_contracts.envelope import (
    Envelope,
    EventData,
    UnknownEventError,
    event_name,
    parse_envelope,
    register,
    registered_events,
)

__all__ = [
    "Envelope",
    "EventData",
    "UnknownEventError",
    "ValidationError",
    "event_name",
    "parse_envelope",
    "register",
    "registered_events",
]
