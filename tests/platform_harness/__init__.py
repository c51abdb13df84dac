"""Runs the whole Signup Platform as real processes for end-to-end and fault-injection tests."""

from platform_harness.stack import Stack

__all__ = ["Stack"]
