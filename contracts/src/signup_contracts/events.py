"""Versioned payloads. Field names and meanings are a public API: change only by adding versions.

A new version is a new class (``UserSignedUpV2`` with ``version = 2``) registered beside the old
one; its JSON Schema is frozen under ``contracts/schemas`` like every published version.
"""

import uuid
from typing import Literal, get_args

from pydantic import AwareDatetime, EmailStr, Field

from signup_contracts.envelope import EventData, register

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

    user_id: uuid.UUID
    subscription_id: uuid.UUID
    email: EmailStr
    full_name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, pattern=E164)
    plan: Plan
    signed_up_at: AwareDatetime


@register
class SpaceProvisioned(EventData):
    """The user's storage space exists, with its quota."""

    event_type = "SpaceProvisioned"
    version = 1
    producer = "provisioning"

    user_id: uuid.UUID
    space_id: uuid.UUID
    quota_bytes: int = Field(ge=0)
