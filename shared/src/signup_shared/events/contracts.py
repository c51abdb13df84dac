"""Versioned payloads. Field names and meanings are a public API: change only by adding versions."""

import uuid
from typing import Literal

from pydantic import AwareDatetime, EmailStr, Field

from signup_shared.events.envelope import EventData, register

Plan = Literal["free", "pro", "team"]
E164 = r"^\+[1-9]\d{1,14}$"


@register
class UserSignedUp(EventData):
    event_type = "UserSignedUp"
    version = 1

    user_id: uuid.UUID
    subscription_id: uuid.UUID
    email: EmailStr
    full_name: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, pattern=E164)
    plan: Plan
    signed_up_at: AwareDatetime


@register
class SpaceProvisioned(EventData):
    event_type = "SpaceProvisioned"
    version = 1

    user_id: uuid.UUID
    space_id: uuid.UUID
    quota_bytes: int = Field(ge=0)
