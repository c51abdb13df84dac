"""The transactional outbox: events written with the business rows, published by a relay."""

from signup_shared.outbox.model import OUTBOX_NOTIFY_CHANNEL, OutboxMixin, outbox_ddl
from signup_shared.outbox.relay import OutboxRelay

__all__ = ["OUTBOX_NOTIFY_CHANNEL", "OutboxMixin", "OutboxRelay", "outbox_ddl"]
