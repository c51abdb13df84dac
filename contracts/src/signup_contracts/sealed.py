"""``UserSignedUp`` v3, "sealed": the signup without personal data in clear (crypto-shredding).

v3 carries what v2 carries except ``email``, ``full_name`` and ``phone``: those travel in
``personal`` = ``{key_id, nonce, ciphertext}``, AES-256-GCM over the compact JSON of the three
fields, with ``<user_id>:<event_id>`` as associated data (a sealed block moved to another user
or another event does not open). The key is the user's data key, which accounts keeps and
deletes when the user is erased: from then on every v3 copy anywhere (the history stream, a
retry queue, a dead letter) is unreadable, without rewriting any of them.

- ``seal(v2, key, event_id=...)`` -> v3; ``unseal(v3, key, event_id=...)`` -> v2 (raises
  ``UnsealError`` for a wrong key or a tampered block); ``redacted(v3)`` -> v2 in the redacted
  form (``redact_user_signed_up``: ``is_redacted`` holds), what a reader makes of a v3 whose
  key is gone. ``seal_envelope`` / ``unseal_envelope`` do the same for a whole envelope (same id,
  times and correlation).
- v3 is published for the history (the stream is bound to it); live consumers keep reading v2.
"""

import base64
import json
import os
import uuid
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from signup_contracts.envelope import Envelope, EventData, register
from signup_contracts.events import Plan, UserSignedUpV2, redact_user_signed_up
from signup_contracts.text_rules import LOCALE, LOCALE_MAX_LENGTH

KEY_BYTES: Final = 32
"""AES-256: a data key is 32 random bytes (``new_key``)."""
NONCE_BYTES: Final = 12
"""The GCM nonce: 96 random bits, new for every seal."""
PERSONAL_FIELDS: Final = ("email", "full_name", "phone")
BASE64 = r"^[A-Za-z0-9_-]+$"
"""URL-safe base64 without padding."""
SEALED: Final = "sealed"
"""What a reader without keys shows instead of the personal fields (``signup-events tail``)."""


class UnsealError(ValueError):
    """The sealed block does not open with this key (a wrong key, or the block was altered)."""


class SealedPersonal(BaseModel):
    """The personal fields of a signup, encrypted with the user's data key."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    key_id: str = Field(min_length=1, max_length=100)
    """Which key seals it: the user id today (one key per user; a rotation would name another)."""
    nonce: str = Field(min_length=16, max_length=16, pattern=BASE64)
    ciphertext: str = Field(min_length=22, max_length=4_000, pattern=BASE64)
    """The AES-GCM output (the JSON of the personal fields, then the 16-byte tag)."""


@register
class UserSignedUpV3(EventData):
    """A user signed up (v3, sealed): v2 with ``email``, ``full_name`` and ``phone`` encrypted.

    Published beside v2 with the same envelope ``id``, on ``accounts.user_signed_up.v3``, for
    the event history: a reader turns it back into v2 with the user's key from accounts
    (``unseal``), or into the redacted v2 once the user is erased and the key deleted.
    """

    event_type = "UserSignedUp"
    version = 3
    producer = "accounts"

    user_id: uuid.UUID
    subscription_id: uuid.UUID
    plan: Plan
    signed_up_at: AwareDatetime
    locale: str = Field(min_length=2, max_length=LOCALE_MAX_LENGTH, pattern=LOCALE)
    personal: SealedPersonal


def new_key() -> bytes:
    """A fresh data key (32 random bytes from the operating system)."""
    return AESGCM.generate_key(bit_length=KEY_BYTES * 8)


def key_id_of(user_id: uuid.UUID) -> str:
    return str(user_id)


def _associated(user_id: uuid.UUID, event_id: uuid.UUID) -> bytes:
    return f"{user_id}:{event_id}".encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(
    data: UserSignedUpV2, key: bytes, *, event_id: uuid.UUID, nonce: bytes | None = None
) -> UserSignedUpV3:
    """The v3 form of a v2 signup: its personal fields sealed with ``key`` (32 bytes)."""
    if len(key) != KEY_BYTES:
        raise ValueError(f"a data key has {KEY_BYTES} bytes, not {len(key)}")
    nonce = nonce if nonce is not None else os.urandom(NONCE_BYTES)
    personal = {name: getattr(data, name) for name in PERSONAL_FIELDS}
    plain = json.dumps(personal, separators=(",", ":"), ensure_ascii=False).encode()
    sealed = AESGCM(key).encrypt(nonce, plain, _associated(data.user_id, event_id))
    return UserSignedUpV3(
        user_id=data.user_id,
        subscription_id=data.subscription_id,
        plan=data.plan,
        signed_up_at=data.signed_up_at,
        locale=data.locale,
        personal=SealedPersonal(
            key_id=key_id_of(data.user_id), nonce=_b64(nonce), ciphertext=_b64(sealed)
        ),
    )


def _clear_fields(data: UserSignedUpV3) -> dict[str, Any]:
    return {
        "user_id": data.user_id,
        "subscription_id": data.subscription_id,
        "plan": data.plan,
        "signed_up_at": data.signed_up_at,
        "locale": data.locale,
    }


def unseal(data: UserSignedUpV3, key: bytes, *, event_id: uuid.UUID) -> UserSignedUpV2:
    """The v2 form of a sealed signup; ``UnsealError`` if ``key`` does not open it."""
    try:
        nonce = _unb64(data.personal.nonce)
        plain = AESGCM(key).decrypt(
            nonce, _unb64(data.personal.ciphertext), _associated(data.user_id, event_id)
        )
        personal = json.loads(plain)
    except (InvalidTag, ValueError, TypeError) as exc:
        raise UnsealError(
            f"UserSignedUp v3 of user {data.user_id}: the personal fields do not open with the "
            f"key {data.personal.key_id} (wrong key, or the sealed block was altered)"
        ) from exc
    if not isinstance(personal, dict):
        raise UnsealError(f"UserSignedUp v3 of user {data.user_id}: sealed block is not an object")
    return UserSignedUpV2.model_validate(
        {**_clear_fields(data), **{name: personal.get(name) for name in PERSONAL_FIELDS}}
    )


def redacted(data: UserSignedUpV3) -> UserSignedUpV2:
    """The v2 a reader makes of a sealed signup whose key is gone (the user was erased): the
    redacted form (placeholder address, name ``erased``, no phone; ``is_redacted`` holds). The
    locale travels in clear in v3 and is kept."""
    envelope = {"data": {**_clear_fields(data), "locale": data.locale}}
    fields = redact_user_signed_up(envelope)["data"]
    fields["locale"] = data.locale
    return UserSignedUpV2.model_validate(fields)


def seal_envelope(envelope: Envelope[UserSignedUpV2], key: bytes) -> Envelope[UserSignedUpV3]:
    """The v3 copy of a v2 event: same id, times, producer and correlation."""
    return rewrap(envelope, seal(envelope.data, key, event_id=envelope.id))


def unseal_envelope(
    envelope: Envelope[UserSignedUpV3], key: bytes | None
) -> Envelope[UserSignedUpV2]:
    """The v2 reading of a v3 event: unsealed with ``key``, redacted when ``key`` is None
    (erased). Raises ``UnsealError`` when a key is given and does not open it."""
    data = envelope.data
    v2 = unseal(data, key, event_id=envelope.id) if key is not None else redacted(data)
    return rewrap(envelope, v2)


def rewrap(envelope: Envelope[Any], data: EventData) -> Envelope[Any]:
    """The same event (id, producer, correlation, causation, time) carrying ``data``."""
    return Envelope.wrap(
        data,
        producer=envelope.producer,
        correlation_id=envelope.correlation_id,
        causation_id=envelope.causation_id,
        event_id=envelope.id,
        occurred_at=envelope.occurred_at,
    )


def is_sealed(envelope: Envelope[Any]) -> bool:
    return isinstance(envelope.data, UserSignedUpV3)
