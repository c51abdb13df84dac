"""Builds a consumer handler: one transaction holding the inbox claim and the action's effects."""

from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy.orm import Session, sessionmaker

from signup_shared import inbox
from signup_shared.db import transaction
from signup_shared.events import Envelope
from signup_shared.messaging.consumer import Handler

log = structlog.get_logger(__name__)

Step = Callable[[Session, Envelope[Any]], None]


def exactly_once(
    consumer: str, inbox_model: type[inbox.InboxMixin], step: Step
) -> Callable[..., None]:
    """``step`` runs only for events ``consumer`` has not handled yet, in the caller's transaction.

    The returned function is transactional: ``persist`` (see ``signup_shared.db.transaction``)
    decides whether it commits, rolls back or leaves the transaction open.
    """

    @transaction
    def handle(session: Session, envelope: Envelope[Any]) -> None:
        if not inbox.claim(session, inbox_model, consumer, envelope.id):
            log.info("message.duplicate", consumer=consumer)
            return
        step(session, envelope)

    return handle


def session_handler(sessions: sessionmaker[Session], handle: Callable[..., None]) -> Handler:
    """Give each message its own session and commit it (the handler's default ``persist``)."""

    def run(envelope: Envelope[Any]) -> None:
        with sessions() as session:
            handle(session, envelope)

    return run
