"""Versioned payloads: re-exported from ``signup_contracts.events``."""

from signup_contracts.events import E164, PLANS, Plan, SpaceProvisioned, UserSignedUp

__all__ = ["E164", "PLANS", "Plan", "SpaceProvisioned", "UserSignedUp"]
