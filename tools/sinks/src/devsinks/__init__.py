"""Loopback SMTP and SMS gateway sinks for the local developer stack."""

__version__ = "0.1.0"
