"""Operator CLI for the event history (``events.history``) of the Signup Platform."""

__version__ = "0.1.0"
