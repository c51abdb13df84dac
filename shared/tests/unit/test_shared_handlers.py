"""The handler object: open a session, claim in the inbox, run the step, commit, after-commit."""

import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pydantic_settings import SettingsConfigDict
from sqlalchemy.orm import DeclarativeBase

from signup_shared import inbox
from signup_shared.errors import TransientError
from signup_shared.events import Envelope, UserSignedUp, UserSignedUpV2
from signup_shared.inbox import InboxMixin
from signup_shared.messaging.failures import AfterCommitError
from signup_shared.messaging.handlers import event_handler
from signup_shared.messaging.inbox_handler import InboxHandler, unique
from signup_shared.messaging.topology import ConsumerQueue
from signup_shared.settings import ServiceSettings
from signup_shared.testing import user_signed_up


class Base(DeclarativeBase):
    pass


class Inbox(InboxMixin, Base):
    pass


class FakeInbox:
    """The inbox's model functions, in memory: each event id is new once."""

    def __init__(self) -> None:
        self.seen: set[uuid.UUID] = set()
        self.claims: list[list[uuid.UUID]] = []

    def claim_many(
        self, _session: Any, model: Any, consumer: str, ids: Iterable[uuid.UUID]
    ) -> set[uuid.UUID]:
        assert model is Inbox and consumer.startswith("h")
        ids = list(ids)
        self.claims.append(ids)
        new = set(ids) - self.seen
        self.seen |= new
        return new

    def claim(self, session: Any, model: Any, consumer: str, event_id: uuid.UUID) -> bool:
        return bool(self.claim_many(session, model, consumer, [event_id]))


class Sessions:
    """A session factory whose sessions record commits and closes (no database)."""

    def __init__(self) -> None:
        self.commits = 0
        self.closes = 0
        self.commit_error: BaseException | None = None

    def __call__(self) -> "Sessions":
        return self

    def __enter__(self) -> "Sessions":
        return self

    def __exit__(self, *_exc: object) -> None:
        self.closes += 1

    def commit(self) -> None:
        if self.commit_error is not None:
            raise self.commit_error
        self.commits += 1


@pytest.fixture
def fake_inbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeInbox]:
    fake = FakeInbox()
    monkeypatch.setattr(inbox, "claim_many", fake.claim_many)
    monkeypatch.setattr(inbox, "claim", fake.claim)
    yield fake


def consumer() -> str:
    return f"h{uuid.uuid4().hex[:10]}.user_signed_up"


def duplicates(queue: str) -> float:
    return REGISTRY.get_sample_value("signup_inbox_duplicates_total", {"queue": queue}) or 0.0


def handler(
    name: str, stepped: list[Envelope[Any]], sessions: Sessions, **options: Any
) -> InboxHandler:
    return InboxHandler(name, sessions, Inbox, lambda _s, event: stepped.append(event), **options)  # type: ignore[arg-type]


def test_one_event_is_claimed_stepped_and_committed_once(fake_inbox: FakeInbox) -> None:
    sessions, stepped, name = Sessions(), [], consumer()
    event = user_signed_up()
    one = handler(name, stepped, sessions)

    one.handle(event)
    one.handle(event)  # redelivered

    assert stepped == [event]
    assert fake_inbox.claims == [[event.id], [event.id]]
    assert (sessions.commits, sessions.closes) == (2, 2)
    assert duplicates(name) == 1


def test_a_failed_commit_raises_and_counts_no_duplicate(fake_inbox: FakeInbox) -> None:
    sessions, stepped, name = Sessions(), [], consumer()
    sessions.commit_error = TransientError("deadlock")
    with pytest.raises(TransientError):
        handler(name, stepped, sessions).handle(user_signed_up())
    assert sessions.closes == 1 and duplicates(name) == 0


def test_the_single_handler_raises_what_after_commit_reports(fake_inbox: FakeInbox) -> None:
    sessions, stepped = Sessions(), []
    event, error = user_signed_up(), TransientError("smtp")
    one = handler(consumer(), stepped, sessions, after_commit=lambda events: {events[0].id: error})
    with pytest.raises(AfterCommitError) as raised:
        one.handle(event)
    assert raised.value.error is error
    assert stepped == [event] and sessions.commits == 1


def test_a_batch_claims_once_steps_the_new_and_counts_duplicates_after_commit(
    fake_inbox: FakeInbox,
) -> None:
    sessions, stepped, name = Sessions(), [], consumer()
    new, seen = user_signed_up(), user_signed_up()
    fake_inbox.seen.add(seen.id)
    reported: list[list[Envelope[Any]]] = []

    def after_commit(events: Any) -> dict[uuid.UUID, BaseException]:
        reported.append(list(events))
        return {}

    errors = handler(name, stepped, sessions, after_commit=after_commit).handle_batch(
        [new, seen, new]
    )

    assert errors == {}
    assert fake_inbox.claims == [[new.id, seen.id]]
    assert stepped == [new]
    assert reported == [[new, seen]]  # every event of the batch, new or redelivered
    assert sessions.commits == 1
    assert duplicates(name) == 2


def test_a_failed_batch_counts_no_duplicates(fake_inbox: FakeInbox) -> None:
    sessions, name = Sessions(), consumer()
    seen = user_signed_up()
    fake_inbox.seen.add(seen.id)

    def step(_session: Any, _event: Any) -> None:
        raise TransientError("deadlock")

    failing = InboxHandler(name, sessions, Inbox, step)  # type: ignore[arg-type]
    with pytest.raises(TransientError):
        failing.handle_batch([user_signed_up(), seen])
    assert sessions.commits == 0 and sessions.closes == 1
    assert duplicates(name) == 0


def test_a_batch_step_takes_all_new_events_at_once(fake_inbox: FakeInbox) -> None:
    sessions, stepped = Sessions(), []
    events = [user_signed_up(), user_signed_up()]
    batches: list[list[Envelope[Any]]] = []
    handler(
        consumer(), stepped, sessions, batch_step=lambda _s, batch: batches.append(list(batch))
    ).handle_batch(events)
    assert batches == [events] and stepped == []


def test_unique_keeps_the_first_of_each_event_in_order() -> None:
    a, b = user_signed_up(), user_signed_up()
    assert unique([a, b, a, b]) == [a, b]
    assert unique([a, b, a]) == [a, b]


def test_a_declaration_builds_a_subscription_with_its_dependencies(fake_inbox: FakeInbox) -> None:
    mailer: list[str] = []
    sessions = Sessions()

    @event_handler("accounts", UserSignedUp)
    def on_signed_up(_session: Any, event: Envelope[Any], *, mailer: list[str]) -> None:
        mailer.append(str(event.id))

    queue = ConsumerQueue("hsvc", "accounts.user_signed_up")
    subscription = on_signed_up.subscription(queue, sessions, Inbox, {"mailer": mailer})  # type: ignore[arg-type]
    event = user_signed_up()
    subscription.handler(event)
    assert subscription.batch_handler is not None
    assert subscription.batch_handler([event, user_signed_up()]) == {}
    assert mailer[0] == str(event.id) and len(mailer) == 2
    assert (subscription.queue, subscription.events) == (queue, (UserSignedUp,))


class VersionSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="HSVC_", extra="ignore")

    user_signed_up_version: int | None = None


@event_handler("accounts", UserSignedUp, UserSignedUpV2)
def on_both(_session: Any, _event: Envelope[Any]) -> None:
    pass


def test_without_a_setting_the_queue_reads_the_newest_declared_version() -> None:
    queue = on_both.queue("hsvc", VersionSettings())
    assert (queue.routing_key, queue.other_keys) == (
        "accounts.user_signed_up.v2",
        ("accounts.user_signed_up",),
    )


def test_the_version_setting_picks_the_bound_key_and_the_step_still_takes_both() -> None:
    queue = on_both.queue("hsvc", VersionSettings(user_signed_up_version=1))
    assert (queue.name, queue.routing_key, queue.other_keys) == (
        "hsvc.user_signed_up",
        "accounts.user_signed_up",
        ("accounts.user_signed_up.v2",),
    )
    subscription = on_both.subscription(queue, Sessions(), Inbox)  # type: ignore[arg-type]
    assert subscription.events == (UserSignedUp, UserSignedUpV2)


def test_a_version_the_step_does_not_declare_names_the_setting() -> None:
    with pytest.raises(ValueError, match=r"HSVC_USER_SIGNED_UP_VERSION=3: .* \[1, 2\]"):
        on_both.queue("hsvc", VersionSettings(user_signed_up_version=3))


def test_one_version_declared_binds_it_and_unbinds_nothing() -> None:
    @event_handler("accounts", UserSignedUp)
    def v1_only(_session: Any, _event: Envelope[Any]) -> None:
        pass

    queue = v1_only.queue("hsvc", VersionSettings())
    assert (queue.routing_key, queue.other_keys) == ("accounts.user_signed_up", ())
