"""Operator CLI for the dead-letter queues of the Signup Platform."""

__version__ = "0.1.0"
