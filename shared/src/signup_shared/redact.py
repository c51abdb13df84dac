"""Scrub personal data out of free text: error messages, tracebacks, dead-letter headers.

Masking by key name (see ``signup_shared.logging``) misses personal data inside values such as
an exception's text; these patterns catch email addresses and phone numbers wherever they are.
"""

import re

_EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
_PHONE = re.compile(r"\+?\d[\d ().-]{6,}\d")

EMAIL_MASK = "<email>"
PHONE_MASK = "<phone>"


def redact(text: str) -> str:
    """``text`` with every email address and phone-number-like digit run replaced."""
    return _PHONE.sub(PHONE_MASK, _EMAIL.sub(EMAIL_MASK, text))
