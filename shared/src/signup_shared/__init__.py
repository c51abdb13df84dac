"""Signup Platform shared library: contracts, messaging, outbox, inbox, database, logging."""
