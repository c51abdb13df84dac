import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DataError, IntegrityError

from accounts import actions
from accounts.actions import EmailAlreadyRegisteredError, NewSignup
from accounts.models import Plan, SubscriptionStatus
from signup_shared.events import Envelope, SpaceProvisioned, parse_envelope
from signup_shared.testing import FakeResult, FakeSession

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ADA = NewSignup(
    email="Ada@example.com", full_name="Ada Lovelace", plan=Plan.PRO, phone="+14155550123"
)


def test_sign_up_writes_user_pending_subscription_and_event_in_one_statement() -> None:
    session = FakeSession()
    receipt = actions.sign_up(session, ADA, correlation_id="corr-1", now=NOW)  # type: ignore[arg-type]
    assert session.executed == [actions.INSERT_SIGNUP]
    [row] = session.parameters
    assert (row["email"], row["full_name"], row["phone"]) == (
        "Ada@example.com",
        "Ada Lovelace",
        "+14155550123",
    )
    assert (row["user_id"], row["subscription_id"]) == (receipt.user_id, receipt.subscription_id)
    assert (row["plan"], row["status"], row["now"]) == ("pro", "pending", NOW)
    assert receipt.status is SubscriptionStatus.PENDING
    assert session.added == []
    assert session.commits == 0


def test_sign_up_records_user_signed_up_in_the_outbox() -> None:
    session = FakeSession()
    receipt = actions.sign_up(session, ADA, correlation_id="corr-1", now=NOW)  # type: ignore[arg-type]
    [row] = session.parameters
    event = parse_envelope(row["payload"])
    assert row["routing_key"] == "accounts.user_signed_up"
    assert (row["event_id"], row["event_type"], row["version"]) == (event.id, "UserSignedUp", 1)
    assert (row["producer"], row["correlation_id"]) == ("accounts", "corr-1")
    assert (event.producer, event.correlation_id) == ("accounts", "corr-1")
    assert event.data.model_dump() == {
        "user_id": receipt.user_id,
        "subscription_id": receipt.subscription_id,
        "email": "Ada@example.com",
        "full_name": "Ada Lovelace",
        "phone": "+14155550123",
        "plan": "pro",
        "signed_up_at": NOW,
    }


class Diag:
    constraint_name = actions.EMAIL_UNIQUE_INDEX


class UniqueViolation(Exception):
    diag = Diag()


class DuplicateOnInsert(FakeSession):
    def __init__(self, orig: Exception) -> None:
        super().__init__()
        self.orig = orig

    def execute(self, statement: Any, *_args: Any, **_kwargs: Any) -> Any:
        raise IntegrityError("INSERT", {}, self.orig)


def test_duplicate_email_becomes_a_domain_error() -> None:
    with pytest.raises(EmailAlreadyRegisteredError):
        actions.sign_up(
            DuplicateOnInsert(UniqueViolation()),
            ADA,  # type: ignore[arg-type]
            correlation_id="c",
        )


def test_other_integrity_errors_are_not_hidden() -> None:
    with pytest.raises(IntegrityError):
        actions.sign_up(
            DuplicateOnInsert(Exception("fk")),
            ADA,  # type: ignore[arg-type]
            correlation_id="c",
        )


class RefusedOnInsert(FakeSession):
    def execute(self, statement: Any, *_args: Any, **_kwargs: Any) -> Any:
        raise DataError("INSERT", {}, Exception("value refused"))


@pytest.mark.parametrize(
    ("full_name", "field", "reason"),
    [
        ("Ada\x00Lovelace", "full_name", "contains a NUL character"),
        ("Ada Lovelace", "body", "cannot be stored"),
    ],
)
def test_a_value_the_database_refuses_becomes_a_domain_error_naming_it(
    full_name: str, field: str, reason: str
) -> None:
    signup = NewSignup(email=ADA.email, full_name=full_name, plan=ADA.plan, phone=ADA.phone)
    with pytest.raises(actions.SignupRejectedError) as refused:
        actions.sign_up(RefusedOnInsert(), signup, correlation_id="c")  # type: ignore[arg-type]
    assert (refused.value.field, refused.value.reason) == (field, reason)
    assert isinstance(refused.value.__cause__, DataError)


@pytest.mark.parametrize(
    ("change", "field"),
    [({"full_name": "A" * 201}, "full_name"), ({"phone": "+1" + "5" * 15}, "phone")],
)
def test_values_longer_than_their_column_are_named(change: dict[str, str], field: str) -> None:
    assert actions._unstorable(dataclasses.replace(ADA, **change))[0] == field


def space_provisioned(user_id: uuid.UUID) -> Envelope[Any]:
    return Envelope.wrap(
        SpaceProvisioned(user_id=user_id, space_id=uuid.uuid4(), quota_bytes=1),
        producer="provisioning",
        correlation_id="c",
        occurred_at=NOW,
    )


class SubscriptionSession(FakeSession):
    """Answers the activation UPDATE and the existence SELECT as a database holding one
    subscription (``status`` None: no subscription at all) would."""

    def __init__(self, status: SubscriptionStatus | None) -> None:
        super().__init__()
        self.status = status

    def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        super().execute(statement, *args, **kwargs)
        exists = self.status is not None
        if statement is actions.ACTIVATE_PENDING:
            changed = self.status is SubscriptionStatus.PENDING
            self.status = SubscriptionStatus.ACTIVE if changed else self.status
            return FakeResult([(uuid.uuid4(),)] if changed else [], int(changed))
        return FakeResult([(uuid.uuid4(),)] if exists else [], int(exists))


def test_activate_subscription_marks_it_active_once() -> None:
    session = SubscriptionSession(SubscriptionStatus.PENDING)
    event = space_provisioned(uuid.uuid4())
    assert actions.activate_subscription(session, event) is True  # type: ignore[arg-type]
    assert session.executed == [actions.ACTIVATE_PENDING]
    assert session.parameters == [{"of_user": event.data.user_id, "when": NOW}]
    assert actions.activate_subscription(session, event) is False  # type: ignore[arg-type]
    assert session.executed[1:] == [actions.ACTIVATE_PENDING, actions.SUBSCRIPTION_OF_USER]


def test_activation_only_changes_pending_subscriptions() -> None:
    sql = str(actions.ACTIVATE_PENDING.compile(dialect=postgresql.dialect()))
    assert "WHERE subscriptions.user_id = %(of_user)s::UUID" in sql
    assert "AND subscriptions.status = %(status_1)s" in sql
    assert actions.ACTIVATE_PENDING.compile().params["status_1"] is SubscriptionStatus.PENDING


def test_activating_an_unknown_user_fails() -> None:
    with pytest.raises(actions.UserNotFoundError):
        actions.activate_subscription(SubscriptionSession(None), space_provisioned(uuid.uuid4()))  # type: ignore[arg-type]
