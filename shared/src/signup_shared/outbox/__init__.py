"""The transactional outbox: events written with the business rows, published by a relay.

The relay lives in ``signup_shared.outbox.relay``; it is not re-exported here so that models
mapping the outbox do not pull in the broker client.
"""

from signup_shared.outbox.model import OUTBOX_NOTIFY_CHANNEL, OutboxMixin, outbox_ddl, outbox_values

__all__ = ["OUTBOX_NOTIFY_CHANNEL", "OutboxMixin", "outbox_ddl", "outbox_values"]
