"""Failure classes any layer may raise; the consumer runtime retries or dead-letters by them."""


class PermanentError(Exception):
    """Retrying cannot help (bad input, a provider's definitive 4xx/5xx refusal)."""


class TransientError(Exception):
    """Retrying later may help (a provider's 5xx, a timeout, a refused connection)."""


class PoisonMessageError(PermanentError):
    """The message cannot be decoded or validated; it is dead-lettered at once."""


class UndecodableDeliveryError(PoisonMessageError):
    """The AMQP client could not decode the delivery's properties (the message says which)."""
