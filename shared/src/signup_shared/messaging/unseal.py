"""Sealed signups in, clear ones out: the runtime's step between decoding and the handler.

A ``UserSignedUp`` v3 (sealed, ``signup_contracts.sealed``) reaches a service from the event
history: a catch-up (``<service> catch-up``), or a replay into its queue (``signup-events
replay``). Handlers keep reading v2 (or v1): before the handler runs, ``Unsealer.open`` turns
each v3 of a batch into the clear version the subscription reads, with the users' keys from
accounts (one lookup for the batch, ``signup_shared.keys``): unsealed when the key exists,
redacted when it is gone (the user was erased: ``is_redacted`` holds and no handler sends or
creates anything for them). A lookup that fails raises ``KeyLookupError``, a transient error
(the runtime retries the event later); a key that does not open the block raises
``UnsealError`` (the message was altered: dead-lettered with the reason).
"""

from collections.abc import Sequence
from typing import Any

from signup_contracts import UserSignedUp, UserSignedUpV2, UserSignedUpV3, unseal_envelope
from signup_contracts.sealed import rewrap
from signup_shared.events import Envelope, EventData
from signup_shared.keys import KeyResolver


def reads_sealed(events: tuple[type[EventData], ...]) -> bool:
    """A subscription that reads a clear ``UserSignedUp`` takes the sealed one too."""
    return UserSignedUpV2 in events or UserSignedUp in events


def is_sealed(envelope: Envelope[Any]) -> bool:
    return isinstance(envelope.data, UserSignedUpV3)


class Unsealer:
    """Opens sealed signups with the keys ``resolver`` answers."""

    def __init__(self, resolver: KeyResolver) -> None:
        self.resolver = resolver

    def close(self) -> None:
        self.resolver.close()

    def open(
        self, events: tuple[type[EventData], ...], envelopes: Sequence[Envelope[Any]]
    ) -> list[Envelope[Any]]:
        """``envelopes`` with each sealed one replaced by the clear version ``events`` reads
        (v2, else v1). Raises ``KeyLookupError`` (transient) or ``UnsealError``."""
        sealed = [envelope.data.user_id for envelope in envelopes if is_sealed(envelope)]
        if not sealed:
            return list(envelopes)
        keys = self.resolver.lookup(sealed)
        return [
            _as_read(events, unseal_envelope(e, keys.get(e.data.user_id))) if is_sealed(e) else e
            for e in envelopes
        ]


def _as_read(events: tuple[type[EventData], ...], clear: Envelope[Any]) -> Envelope[Any]:
    if UserSignedUpV2 in events:
        return clear
    v1 = UserSignedUp.model_validate(clear.data.model_dump())  # v1 has no locale
    return rewrap(clear, v1)
