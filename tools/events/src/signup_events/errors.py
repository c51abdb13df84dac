"""Exceptions that the CLI turns into a one-line message and an exit code."""

from signup_shared.cli import EXIT_UNAVAILABLE, EXIT_USAGE

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INTERRUPTED = 130


class EventsError(Exception):
    """An expected failure: printed as ``error: <message>``, exits with ``exit_code``."""

    exit_code: int = EXIT_ERROR


class UsageError(EventsError):
    """Refused before touching the broker (exit 2)."""

    exit_code = EXIT_USAGE


class BrokerUnavailableError(EventsError):
    """The broker could not be reached or refused the login (exit 69)."""

    exit_code = EXIT_UNAVAILABLE


class PublishFailedError(EventsError):
    """A replayed event was returned (no queue bound for it), nacked or refused."""
