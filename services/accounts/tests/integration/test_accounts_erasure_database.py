"""Erasure and API keys against the real PostgreSQL, in a transaction rolled back after."""

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from accounts import actions, erasure, keys
from accounts.actions import NewSignup, Plan
from accounts.models import OutboxMessage, User, UserKey
from signup_contracts import UserErased, is_redacted, unseal_envelope
from signup_shared.errors import PermanentError
from signup_shared.events import Envelope, parse_envelope

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
HOLDERS = ("accounts", "notifications", "provisioning", "stats")


def signup(
    session: Session, email: str = "ada@example.com", name: str = "Ada Lovelace"
) -> uuid.UUID:
    receipt = actions.sign_up(
        session,
        NewSignup(email, name, Plan.PRO, "+14155550123", "de"),
        correlation_id="corr-1",
        now=NOW,
    )
    return receipt.user_id


def erased(user_id: uuid.UUID, holder: str) -> Envelope[Any]:
    return Envelope.wrap(
        UserErased(user_id=user_id, holder=holder, erased_at=NOW),
        producer=holder,
        correlation_id="corr-2",
    )


def test_erasure_blanks_the_user_redacts_the_outbox_and_writes_the_event(
    session: Session,
) -> None:
    user_id, other = signup(session), signup(session, "grace@example.com", "Grace Hopper")
    state, created = erasure.request_erasure(
        session, user_id, "crm", correlation_id="corr-2", now=NOW
    )
    assert created and state.status is erasure.ErasureStatus.PENDING
    assert state.confirmed == ("accounts",)
    assert state.waiting_for == ("notifications", "provisioning", "stats")
    user = session.get(User, user_id)
    assert user is not None
    session.refresh(user)
    assert (user.email, user.full_name, user.phone, user.locale) == (None, None, None, None)
    assert user.erased_at == NOW
    payloads = session.execute(select(OutboxMessage.event_type, OutboxMessage.payload)).all()
    everything = " ".join(payload for _, payload in payloads)
    assert "ada@example.com" not in everything and "Ada Lovelace" not in everything
    assert "+14155550123" in everything  # the other user's copies are untouched
    assert "grace@example.com" in everything
    signups = [parse_envelope(p) for t, p in payloads if t == "UserSignedUp"]
    mine = [e for e in signups if e.data.user_id == user_id]
    clear = [e for e in mine if e.version != 3]
    assert clear and all(is_redacted(e.data) for e in clear)  # one copy per published version
    [sealed] = [e for e in mine if e.version == 3]  # left sealed, and its key is gone:
    assert session.get(UserKey, user_id) is None
    assert erasure.data_keys(session, [user_id, other]).keys() == {other}
    assert is_redacted(unseal_envelope(sealed, None).data)
    requested = [parse_envelope(p) for t, p in payloads if t == "UserErasureRequested"]
    assert [e.data.user_id for e in requested] == [user_id]
    assert actions.get_user(session, other).email == "grace@example.com"
    with pytest.raises(actions.UserNotFoundError):
        actions.get_user(session, user_id)


def test_a_second_request_changes_nothing(session: Session) -> None:
    user_id = signup(session)
    erasure.request_erasure(session, user_id, "crm", correlation_id="c", now=NOW)
    state, created = erasure.request_erasure(session, user_id, "crm", correlation_id="c")
    assert not created and state.requested_at == NOW
    count = session.execute(
        text("SELECT count(*) FROM outbox WHERE event_type = 'UserErasureRequested'")
    ).scalar()
    assert count == 1


def test_unknown_user_is_refused(session: Session) -> None:
    with pytest.raises(erasure.UnknownUserError):
        erasure.request_erasure(session, uuid.uuid4(), "crm", correlation_id="c")


def test_every_holder_confirms_then_complete(session: Session) -> None:
    user_id = signup(session)
    erasure.request_erasure(session, user_id, "crm", correlation_id="c", now=NOW)
    assert not erasure.confirm_erasure(session, erased(user_id, "notifications"), HOLDERS)
    assert not erasure.confirm_erasure(session, erased(user_id, "notifications"), HOLDERS)
    assert not erasure.confirm_erasure(session, erased(user_id, "stats"), HOLDERS)
    assert [s.user_id for s in erasure.erasures(session, HOLDERS)] == [user_id]
    assert erasure.oldest_outstanding_age(session, NOW + timedelta(seconds=90)) == 90.0
    assert erasure.confirm_erasure(session, erased(user_id, "provisioning"), HOLDERS)
    state = erasure.erasure_state(session, user_id, HOLDERS)
    assert state is not None and state.status is erasure.ErasureStatus.COMPLETE
    assert state.waiting_for == ()
    assert erasure.erasures(session, HOLDERS) == []
    assert erasure.oldest_outstanding_age(session) == 0.0


def test_confirmations_that_cannot_count_are_permanent_failures(session: Session) -> None:
    user_id = signup(session)
    with pytest.raises(PermanentError, match="no erasure"):
        erasure.confirm_erasure(session, erased(user_id, "stats"), HOLDERS)
    erasure.request_erasure(session, user_id, "crm", correlation_id="c")
    with pytest.raises(PermanentError, match="not a holder"):
        erasure.confirm_erasure(session, erased(user_id, "billing"), HOLDERS)
    forged = Envelope.wrap(
        UserErased(user_id=user_id, holder="stats", erased_at=NOW),
        producer="notifications",
        correlation_id="c",
    )
    with pytest.raises(PermanentError, match="not a holder"):
        erasure.confirm_erasure(session, forged, HOLDERS)


def test_keys_are_stored_hashed_and_checked(session: Session) -> None:
    issued = keys.create_key(session, "crm", ["users:read"], valid_days=30, now=NOW)
    stored = session.execute(text("SELECT * FROM api_keys WHERE id = :i"), {"i": issued.key_id})
    row = stored.mappings().one()
    assert issued.token.split("_")[-1] not in str(dict(row))
    caller = keys.authenticate(session, issued.token, keys.Scope.USERS_READ, NOW)
    assert caller.client == "crm"
    with pytest.raises(keys.ForbiddenError):
        keys.authenticate(session, issued.token, keys.Scope.USERS_ERASE, NOW)
    with pytest.raises(keys.NotAuthenticatedError) as expired:
        keys.authenticate(session, issued.token, keys.Scope.USERS_READ, NOW + timedelta(days=31))
    assert expired.value.refusal is keys.Refusal.EXPIRED
    second = keys.create_key(session, "crm", ["users:read"], valid_days=None, now=NOW)
    with pytest.raises(keys.KeyRefusedError, match="revoke the old one"):
        keys.create_key(session, "crm", ["users:read"], valid_days=None, now=NOW)
    assert keys.revoke_key(session, issued.key_id, NOW)
    assert not keys.revoke_key(session, issued.key_id, NOW)
    with pytest.raises(keys.NotAuthenticatedError) as revoked:
        keys.authenticate(session, issued.token, keys.Scope.USERS_READ, NOW + timedelta(hours=1))
    assert revoked.value.refusal is keys.Refusal.REVOKED
    assert keys.authenticate(session, second.token, keys.Scope.USERS_READ, NOW).key_id
    assert {k.key_id for k in keys.list_keys(session)} >= {issued.key_id, second.key_id}
