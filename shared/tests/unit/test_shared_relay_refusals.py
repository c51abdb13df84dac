"""The relay's decisions about a batch: which errors stop it, which rows are parked."""

from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import DeclarativeBase

from signup_shared.messaging.publisher import UNENCODABLE, PublishError, Ticket
from signup_shared.outbox import OutboxMixin
from signup_shared.outbox.relay import OutboxRelay
from signup_shared.testing import FakePublisher

ENGINE = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/unused")  # never connects


class Base(DeclarativeBase):
    pass


class Outbox(OutboxMixin, Base):
    pass


class Failing(FakePublisher):
    def __init__(self, error: PublishError) -> None:
        super().__init__()
        self.error = error

    def wait(self, ticket: Ticket) -> None:
        raise self.error


def relay(publisher: FakePublisher, park_after: int = 5) -> OutboxRelay:
    return OutboxRelay(ENGINE, Outbox, publisher, service="unit", park_after=park_after)


BATCH = Ticket(1, 3, frozenset({"a", "b", "c"}))


def test_a_batch_whose_every_message_was_confirmed_or_refused_is_no_error() -> None:
    error = PublishError("1 refused", frozenset({"a", "c"}), {"b": f"{UNENCODABLE}: too long"})
    confirmed, refused, failed = relay(Failing(error))._confirm(BATCH, 0.0)
    assert (confirmed, refused, failed) == (
        frozenset({"a", "c"}),
        {"b": f"{UNENCODABLE}: too long"},
        None,
    )


def test_a_batch_with_messages_lost_to_the_connection_is_an_error_with_its_refusals() -> None:
    error = PublishError("connection failed", frozenset({"a"}), {"b": "nacked by the broker"})
    confirmed, refused, failed = relay(Failing(error))._confirm(BATCH, 0.0)
    assert (confirmed, refused, failed) == (frozenset({"a"}), {"b": "nacked by the broker"}, error)


@pytest.mark.parametrize(
    ("reason", "refusals_before", "parks"),
    [
        (f"{UNENCODABLE}: struct.error", 0, True),  # it never will encode: at once
        ("nacked by the broker", 0, False),
        ("unroutable: NO_ROUTE", 3, False),
        ("nacked by the broker", 4, True),  # the fifth refusal
    ],
)
def test_which_refused_rows_are_parked(reason: str, refusals_before: int, parks: bool) -> None:
    row = SimpleNamespace(refusals=refusals_before)
    assert relay(FakePublisher())._parks(row, reason) is parks  # type: ignore[arg-type]
