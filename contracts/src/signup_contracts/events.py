"""Versioned payloads. Field names and meanings are a public API: change only by adding versions.

A new version is a new class (``UserSignedUpV2`` with ``version = 2``) registered beside the old
one; its JSON Schema is frozen under ``contracts/schemas`` like every published version.
"""

import uuid
from typing import Any, ClassVar, Literal, get_args

from pydantic import AwareDatetime, Field

from signup_contracts.emails import EventEmail
from signup_contracts.envelope import EventData, register
from signup_contracts.text_rules import (
    DEFAULT_LOCALE,
    E164_ASCII,
    FULL_NAME_MAX_LENGTH,
    LOCALE,
    LOCALE_MAX_LENGTH,
    TRIMMED_PRINTABLE,
)

Plan = Literal["free", "pro", "team"]
PLANS: tuple[str, ...] = get_args(Plan)
E164 = r"^\+[1-9]\d{1,14}$"
"""A phone number in E.164 form: ``+``, country code, subscriber number; 15 digits at most."""


@register
class UserSignedUp(EventData):
    """A user signed up and has a subscription (pending until their space exists)."""

    event_type = "UserSignedUp"
    version = 1
    producer = "accounts"
    personal_data = True

    user_id: uuid.UUID
    subscription_id: uuid.UUID
    email: EventEmail
    full_name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, pattern=E164)
    plan: Plan
    signed_up_at: AwareDatetime


@register
class UserSignedUpV2(EventData):
    """A user signed up and has a subscription (pending until their space exists).

    Version 2 carries the API's own rules: ``full_name`` printable and trimmed, ``phone`` E.164
    in ASCII digits; and the user's ``locale``, negotiated from the signup request's
    ``Accept-Language``. During a migration window accounts publishes v1 and v2 of one signup
    with the same envelope ``id`` (the id names the event, not its representation): a consumer
    takes whichever copy arrives first and its inbox drops the other.
    """

    event_type = "UserSignedUp"
    version = 2
    producer = "accounts"
    personal_data = True

    user_id: uuid.UUID
    subscription_id: uuid.UUID
    email: EventEmail
    full_name: str = Field(min_length=1, max_length=FULL_NAME_MAX_LENGTH, pattern=TRIMMED_PRINTABLE)
    phone: str | None = Field(pattern=E164_ASCII)
    plan: Plan
    signed_up_at: AwareDatetime
    locale: str = Field(min_length=2, max_length=LOCALE_MAX_LENGTH, pattern=LOCALE)


def upcast(data: UserSignedUp | UserSignedUpV2) -> UserSignedUpV2:
    """The v2 reading of a ``UserSignedUp`` of either version (v1 has no locale: ``en``).

    Raises ``pydantic.ValidationError`` when a v1 payload breaks a v2 rule (a name with a
    control character or surrounding spaces, a phone with non-ASCII digits): v1 was looser.
    """
    if isinstance(data, UserSignedUpV2):
        return data
    return UserSignedUpV2.model_validate({**data.model_dump(), "locale": DEFAULT_LOCALE})


@register
class SpaceProvisioned(EventData):
    """The user's storage space exists, with its quota."""

    event_type = "SpaceProvisioned"
    version = 1
    producer = "provisioning"

    user_id: uuid.UUID
    space_id: uuid.UUID
    quota_bytes: int = Field(ge=0)


ERASED_EMAIL_DOMAIN = "erased.example"
"""The domain of the placeholder address a redacted ``UserSignedUp`` carries (RFC 2606)."""
ERASED_FULL_NAME = "erased"
ERASURE_HOLDERS: tuple[str, ...] = ("notifications", "provisioning", "stats")
"""The services besides accounts that hold a user's data and confirm its erasure."""


@register
class UserErasureRequested(EventData):
    """A user asked to be forgotten: every service holding their data erases it and confirms.

    Accounts has erased its own copy in the transaction that wrote this event. Each holder
    erases the user's personal data in its own transaction and publishes ``UserErased``; from
    then on it keeps no personal data of the user, and a ``UserSignedUp`` for them arriving
    later (a race, a replay) creates none.
    """

    event_type = "UserErasureRequested"
    version = 1
    producer = "accounts"

    user_id: uuid.UUID
    requested_at: AwareDatetime


@register
class UserErased(EventData):
    """A holder erased the user's personal data: its confirmation of ``UserErasureRequested``.

    Published by each holder on its own routing key (``notifications.user_erased``, ...); the
    envelope's ``producer`` and ``holder`` name the same service. Accounts counts them and shows
    the erasure complete once every holder has confirmed.
    """

    event_type = "UserErased"
    version = 1
    producer = "notifications"
    producers: ClassVar[tuple[str, ...]] = ERASURE_HOLDERS

    user_id: uuid.UUID
    holder: str = Field(min_length=1, max_length=100)
    erased_at: AwareDatetime


def redact_user_signed_up(envelope: dict[str, Any]) -> dict[str, Any]:
    """A ``UserSignedUp`` envelope (JSON data, any version) without the user's personal data.

    What erasure leaves of a signup that has not reached every consumer yet: still valid for its
    version (so it is counted, provisioned and activated like any signup), with a placeholder
    address on ``ERASED_EMAIL_DOMAIN``, the name ``ERASED_FULL_NAME``, no phone, the default
    locale. Consumers recognise it with ``is_redacted`` and send nothing to it.
    """
    data = dict(envelope.get("data") or {})
    user_id = str(data.get("user_id", ""))
    data.update(
        email=f"{user_id.replace('-', '') or 'user'}@{ERASED_EMAIL_DOMAIN}",
        full_name=ERASED_FULL_NAME,
        phone=None,
    )
    if "locale" in data:
        data["locale"] = DEFAULT_LOCALE
    return {**envelope, "data": data}


def is_redacted(data: UserSignedUp | UserSignedUpV2) -> bool:
    """True for a ``UserSignedUp`` whose personal data was erased before it was delivered."""
    return str(data.email).endswith(f"@{ERASED_EMAIL_DOMAIN}")
