"""Exceptions that the CLI turns into a one-line message and an exit code."""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class DlqError(Exception):
    """An expected failure: printed as ``error: <message>`` and exits with ``exit_code``."""

    exit_code: int = EXIT_ERROR


class UsageError(DlqError):
    """The command was refused before touching the broker (exit 2)."""

    exit_code = EXIT_USAGE


class BrokerUnavailableError(DlqError):
    """The AMQP broker could not be reached or refused the connection."""


class QueueNotFoundError(DlqError):
    """The queue does not exist in the vhost."""


class ManagementApiError(DlqError):
    """The RabbitMQ management HTTP API failed or is not enabled."""


class PublishFailedError(DlqError):
    """A replayed message was returned (unroutable) or nacked by the broker."""


class AccountsApiError(DlqError):
    """Accounts' internal API could not say whether a user was erased (unreachable, 5xx,
    refused key, an answer that is not accounts')."""
