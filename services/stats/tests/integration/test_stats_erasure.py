"""Erasure in stats against the real PostgreSQL: the counts stay, one confirmation goes out."""

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from signup_contracts import UserErasureRequested
from signup_shared.events import Envelope, parse_envelope
from stats import actions
from stats.models import OutboxMessage

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def test_counts_stay_and_the_confirmation_is_written_once(db: Session, signup_event) -> None:
    event = signup_event()
    actions.record_signups(db, [event, signup_event()])
    before = actions.read_stats(db)
    request = Envelope.wrap(
        UserErasureRequested(user_id=event.data.user_id, requested_at=NOW),
        producer="accounts",
        correlation_id="corr-e",
    )
    assert actions.confirm_erasure(db, request, NOW) is not None
    assert actions.confirm_erasure(db, request, NOW) is None
    assert actions.read_stats(db) == before
    [row] = db.scalars(select(OutboxMessage)).all()
    confirmation = parse_envelope(row.payload)
    assert (row.routing_key, confirmation.data.user_id) == ("stats.user_erased", event.data.user_id)
    assert confirmation.causation_id == str(request.id)
