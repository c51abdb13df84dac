"""The accounts rules, with the model functions replaced by an in-memory fake (no database)."""

import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import configure_mappers

from accounts import actions, models
from accounts.actions import EmailAlreadyRegisteredError, NewSignup
from accounts.models import Plan, Subscription, SubscriptionStatus, User
from signup_contracts import UnsealError, unseal_envelope
from signup_shared.events import Envelope, SpaceProvisioned

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LATER = datetime(2026, 11, 26, 8, 30, tzinfo=UTC)
SESSION: Any = object()  # the actions hand the caller's session to the models, untouched
configure_mappers()  # once, while collecting: the first User(...) of a test would pay for it
ADA = NewSignup(
    email="Ada@example.com", full_name="Ada Lovelace", plan=Plan.PRO, phone="+14155550123"
)


class FakeModels:
    """What the model functions would hold and answer, kept in dictionaries."""

    def __init__(self) -> None:
        self.signups: list[dict[str, Any]] = []
        self.users: dict[uuid.UUID, User] = {}
        self.subscriptions: dict[uuid.UUID, Subscription] = {}  # by user id
        self.refusal: Exception | None = None

    def add_signup(self, session: Any, **values: Any) -> None:
        assert session is SESSION
        if self.refusal is not None:
            raise self.refusal
        self.signups.append(values)

    def user_with_subscription(
        self, session: Any, user_id: uuid.UUID
    ) -> tuple[User, Subscription] | None:
        assert session is SESSION
        if user_id not in self.users:
            return None
        return self.users[user_id], self.subscriptions[user_id]

    def activate_pending_subscription(self, session: Any, user_id: uuid.UUID, at: datetime) -> bool:
        assert session is SESSION
        subscription = self.subscriptions.get(user_id)
        if subscription is None or subscription.status is not SubscriptionStatus.PENDING:
            return False
        subscription.status, subscription.activated_at = SubscriptionStatus.ACTIVE, at
        return True

    def has_subscription(self, session: Any, user_id: uuid.UUID) -> bool:
        assert session is SESSION
        return user_id in self.subscriptions

    def holding(self, status: SubscriptionStatus) -> uuid.UUID:
        user = User(
            id=uuid.uuid4(),
            email="ada@example.com",
            full_name="Ada",
            phone=None,
            created_at=NOW,
            locale="fr",
        )
        self.users[user.id] = user
        self.subscriptions[user.id] = Subscription(
            id=uuid.uuid4(), user_id=user.id, plan=Plan.TEAM, status=status, created_at=NOW
        )
        return user.id


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeModels:
    fake = FakeModels()
    for name in (
        "add_signup",
        "user_with_subscription",
        "activate_pending_subscription",
        "has_subscription",
    ):
        monkeypatch.setattr(models, name, getattr(fake, name))
    return fake


def test_sign_up_stores_the_user_with_a_pending_subscription(fake: FakeModels) -> None:
    receipt = actions.sign_up(SESSION, ADA, correlation_id="corr-1", now=NOW)
    [stored] = fake.signups
    assert (stored["email"], stored["full_name"], stored["phone"]) == (
        "Ada@example.com",
        "Ada Lovelace",
        "+14155550123",
    )
    assert (stored["user_id"], stored["subscription_id"]) == (
        receipt.user_id,
        receipt.subscription_id,
    )
    assert (stored["plan"], stored["status"], stored["created_at"]) == (
        Plan.PRO,
        SubscriptionStatus.PENDING,
        NOW,
    )
    assert receipt.status is SubscriptionStatus.PENDING


def test_each_signup_gets_new_ids(fake: FakeModels) -> None:
    first = actions.sign_up(SESSION, ADA, correlation_id="c", now=NOW)
    second = actions.sign_up(SESSION, ADA, correlation_id="c", now=NOW)
    assert len({first.user_id, first.subscription_id, second.user_id, second.subscription_id}) == 4


def test_sign_up_records_user_signed_up_with_the_signup(fake: FakeModels) -> None:
    receipt = actions.sign_up(SESSION, ADA, correlation_id="corr-1", now=NOW, versions=[1])
    event, _sealed = fake.signups[0]["events"]
    assert (event.type, event.version, event.routing_key) == (
        "UserSignedUp",
        1,
        "accounts.user_signed_up",
    )
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


def test_in_the_migration_window_both_versions_are_copies_of_one_event(
    fake: FakeModels,
) -> None:
    signup = dataclasses.replace(ADA, locale="de")
    receipt = actions.sign_up(SESSION, signup, correlation_id="corr-1", now=NOW, versions=(2, 1))
    v2, v1, v3 = fake.signups[0]["events"]  # the newest first: its row is published first
    assert (v3.version, v3.id) == (3, v2.id)  # and the sealed copy last
    assert (v2.version, v1.version) == (2, 1)
    assert v2.id == v1.id and v2.occurred_at == v1.occurred_at == NOW
    assert v2.correlation_id == v1.correlation_id
    # each copy on its version's key: a queue bound to one version gets one copy
    assert (v1.routing_key, v2.routing_key) == (
        "accounts.user_signed_up",
        "accounts.user_signed_up.v2",
    )
    assert v2.data.model_dump() == {**v1.data.model_dump(), "locale": "de"}
    assert (v2.data.user_id, fake.signups[0]["locale"]) == (receipt.user_id, "de")


def test_by_default_the_v2_copy_and_the_sealed_v3_copy_are_written(fake: FakeModels) -> None:
    actions.sign_up(SESSION, ADA, correlation_id="c", now=NOW)
    event, sealed = fake.signups[0]["events"]
    assert event.routing_key == "accounts.user_signed_up.v2"
    assert (event.version, event.data.locale) == (2, "en")
    assert sealed.routing_key == "accounts.user_signed_up.v3"
    assert (sealed.id, sealed.occurred_at, sealed.correlation_id) == (event.id, NOW, "c")


def test_the_sealed_copy_opens_with_the_key_written_with_the_user_and_with_no_other(
    fake: FakeModels,
) -> None:
    actions.sign_up(SESSION, ADA, correlation_id="c", now=NOW)
    event, sealed = fake.signups[0]["events"]
    key = fake.signups[0]["data_key"]
    assert len(key) == 32
    assert "Ada" not in sealed.to_json().decode() and "4155550123" not in sealed.to_json().decode()
    assert unseal_envelope(sealed, key) == event
    with pytest.raises(UnsealError):
        unseal_envelope(sealed, bytes(32))
    actions.sign_up(SESSION, ADA, correlation_id="c", now=NOW)
    assert fake.signups[1]["data_key"] != key  # one key per user


def test_a_value_the_v2_contract_refuses_is_a_rejected_signup(fake: FakeModels) -> None:
    padded = dataclasses.replace(ADA, full_name=" Ada")  # the API trims: a caller's mistake
    with pytest.raises(actions.SignupRejectedError) as refused:
        actions.sign_up(SESSION, padded, correlation_id="c", now=NOW)
    assert refused.value.field == "full_name"
    assert "UserSignedUp v2" in refused.value.reason
    assert fake.signups == []  # nothing written


def test_no_version_to_publish_is_a_programming_error(fake: FakeModels) -> None:
    with pytest.raises(ValueError, match="at least one"):
        actions.sign_up(SESSION, ADA, correlation_id="c", versions=[])
    with pytest.raises(ValueError, match="v3"):
        actions.sign_up(SESSION, ADA, correlation_id="c", versions=[3])
    assert fake.signups == []


def test_sign_up_without_a_clock_stamps_now(fake: FakeModels) -> None:
    before = datetime.now(UTC)
    actions.sign_up(SESSION, ADA, correlation_id="c")
    assert before <= fake.signups[0]["created_at"] <= datetime.now(UTC)


def test_a_taken_email_becomes_the_domain_error(fake: FakeModels) -> None:
    fake.refusal = models.EmailTakenError(models.EMAIL_UNIQUE_INDEX)
    with pytest.raises(EmailAlreadyRegisteredError) as refused:
        actions.sign_up(SESSION, ADA, correlation_id="c")
    assert refused.value.__cause__ is fake.refusal


def test_a_value_the_database_refuses_becomes_a_rejection_naming_it(fake: FakeModels) -> None:
    fake.refusal = models.UnstorableValueError("full_name", "contains a NUL character")
    with pytest.raises(actions.SignupRejectedError) as refused:
        actions.sign_up(SESSION, ADA, correlation_id="c")
    assert (refused.value.field, refused.value.reason) == ("full_name", "contains a NUL character")


def test_other_refusals_of_the_database_are_not_hidden(fake: FakeModels) -> None:
    fake.refusal = IntegrityError("INSERT", {}, Exception("fk"))
    with pytest.raises(IntegrityError):
        actions.sign_up(SESSION, ADA, correlation_id="c")


def test_get_user_reads_the_profile(fake: FakeModels) -> None:
    user_id = fake.holding(SubscriptionStatus.ACTIVE)
    profile = actions.get_user(SESSION, user_id)
    subscription = fake.subscriptions[user_id]
    assert profile == actions.UserProfile(
        user_id=user_id,
        email="ada@example.com",
        full_name="Ada",
        phone=None,
        plan=Plan.TEAM,
        subscription_id=subscription.id,
        status=SubscriptionStatus.ACTIVE,
        created_at=NOW,
        locale="fr",
    )


def test_get_user_of_an_unknown_id_fails(fake: FakeModels) -> None:
    with pytest.raises(actions.UserNotFoundError):
        actions.get_user(SESSION, uuid.uuid4())


def space_provisioned(user_id: uuid.UUID, at: datetime = NOW) -> Envelope[Any]:
    return Envelope.wrap(
        SpaceProvisioned(user_id=user_id, space_id=uuid.uuid4(), quota_bytes=1),
        producer="provisioning",
        correlation_id="c",
        occurred_at=at,
    )


def test_activation_marks_a_pending_subscription_active_as_of_the_event(
    fake: FakeModels,
) -> None:
    user_id = fake.holding(SubscriptionStatus.PENDING)
    assert actions.activate_subscription(SESSION, space_provisioned(user_id)) is True
    subscription = fake.subscriptions[user_id]
    assert (subscription.status, subscription.activated_at) == (SubscriptionStatus.ACTIVE, NOW)


def test_a_second_event_for_the_same_user_changes_nothing(fake: FakeModels) -> None:
    user_id = fake.holding(SubscriptionStatus.PENDING)
    actions.activate_subscription(SESSION, space_provisioned(user_id, NOW))
    assert actions.activate_subscription(SESSION, space_provisioned(user_id, LATER)) is False
    assert fake.subscriptions[user_id].activated_at == NOW


def test_activating_an_unknown_user_fails(fake: FakeModels) -> None:
    with pytest.raises(actions.UserNotFoundError):
        actions.activate_subscription(SESSION, space_provisioned(uuid.uuid4()))
