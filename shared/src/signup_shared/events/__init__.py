"""Event contracts: the public API other services subscribe to.

They live in the ``signup-contracts`` distribution (``signup_contracts``), which depends on
pydantic (email-validator, cryptography) only, so consuming teams can install them without this
library. These names stay importable from here for existing code.
"""

from signup_contracts import (
    Envelope,
    EventData,
    SpaceProvisioned,
    UnknownEventError,
    UserSignedUp,
    UserSignedUpV2,
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
    "UserSignedUpV2",
    "event_name",
    "parse_envelope",
    "registered_events",
]
