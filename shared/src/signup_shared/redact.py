"""Scrub personal data out of free text: error messages, tracebacks, log values, dead letters.

Masking by key name (see ``signup_shared.logging``) misses personal data inside values such as
an exception's text; these patterns catch email addresses and phone numbers wherever they are.

What counts (two compiled patterns; the email one runs only on text with an ``@``):

- an email address: ``local@domain.tld`` where the top-level label starts with a letter, so
  ``postgres@127.0.0.1:5432`` in a URL and ``@functools.wraps`` in a traceback are left alone;
- a phone number written with a ``+`` and at least 7 digits, with or without separators
  (space, ``-``, ``.``, parentheses): ``+14155550123``, ``+1 (415) 555-0123``, ``tel:+44...``;
- a phone number without ``+`` only when written with 9 or more digits in an ``(area)`` code and
  groups, or in at least three groups: ``(415) 555-0123``, ``415-555-0123``, ``020 7946 0958``
  (``030 12345678`` is not caught: two numbers side by side look just like it).

What is deliberately left alone: bare digit runs without ``+`` (delivery tags, counts, epoch
times, ids), UUIDs, ISO dates and timestamps, decimal numbers and durations, IPv4 addresses,
``host:port``, SQLSTATE codes. A candidate glued to a letter, ``-``, ``:``, ``/`` or ``.`` on
either side is part of something else (a UUID, a timestamp, a path, a version) and is not a phone.

Full names cannot be found by pattern; they are masked by key name (``full_name``) in logs, and
database error text does not carry them because engines hide bound parameters.
"""

import re

EMAIL_MASK = "<email>"
PHONE_MASK = "<phone>"

# Shortest text that can hold either: "a@b.co" (6), "+1234567" (8).
MIN_LENGTH = 6

_LOCAL = r"[\w.!#$%&*+?^~-]"
# A digit group never starts an ISO date or an IPv4 address (so "port 5672 192.168.1.20" and
# "15 2026-11-25" are not read as one long number).
_NOT_DATE_OR_IP = r"(?![0-9]{4}-[0-9]{2}-[0-9]{2}(?![0-9])|[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?![0-9]))"

# Each pattern starts with a character class, so the regex engine skips ahead to candidates in C.
_EMAIL = re.compile(
    rf"""
    (?:(?<!{_LOCAL}){_LOCAL}+|(?<=['=`{{}}|/]))         # local part (may follow a quote or '=')
    @[\w-]+(?:\.[\w-]+)*\.[^\W\d_][\w-]*                # domain, TLD starting with a letter
    """,
    re.VERBOSE,
)
_PHONE = re.compile(
    rf"""
    [+(0-9]
    (?:
        (?<=\+)(?<![0-9+]\+)[ ]?\(?[0-9]                    # '+', not after a digit or '+'
      | (?<=\()(?<![\w+.:/-]\(){_NOT_DATE_OR_IP}[0-9]         # '(', not glued to a token
      | (?<=[0-9])(?<![\w+.:/-][0-9])                    # a digit, not glued to a token,
        (?![0-9]{{3}}-[0-9]{{2}}-[0-9]{{2}}(?![0-9]))          # not starting an ISO date
    )
    [0-9]*
    (?:(?:\)[ .-]?|[ .-]\(?){_NOT_DATE_OR_IP}[0-9]+)*        # more groups, one separator each
    (?![\w@]|[.:/-]?\w)                                 # not followed by more of a token
    """,
    re.VERBOSE,
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# Texts seen to hold nothing to redact (bounded; cleared when full). Only unchanged texts enter,
# so a hit is always right.
_CLEAN: set[str] = set()
_CLEAN_MAX_ENTRIES = 4096
_CLEAN_MAX_LENGTH = 120
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_GROUPS = re.compile(r"[0-9]+")


def _is_phone(candidate: str) -> bool:
    digits = sum(char.isdigit() for char in candidate)
    if candidate.startswith("+"):
        return digits >= 7
    if digits < 9:
        return False
    # Without '+': an (area) code, or at least three groups ("415-555-0123", "020 7946 0958");
    # "12345678 9" is two numbers side by side, "192.168.100.200" an address. More than 15
    # digits is a number run together with its neighbours: masked too, unless it is a UUID.
    grouped = candidate.startswith("(") or len(_GROUPS.findall(candidate)) >= 3
    return grouped and not (_IPV4.fullmatch(candidate) or _UUID.fullmatch(candidate))


def _phone(found: re.Match[str]) -> str:
    candidate = found.group()
    return PHONE_MASK if _is_phone(candidate) else candidate


def redact(text: str) -> str:
    """``text`` with every email address and phone number replaced; never raises on a str."""
    if len(text) < MIN_LENGTH or text in _CLEAN:
        return text  # short words, and the names and ids that every line repeats
    if len(text) == 36 and _UUID.fullmatch(text):
        redacted = text
    else:
        redacted = _PHONE.sub(_phone, _EMAIL.sub(EMAIL_MASK, text) if "@" in text else text)
    if redacted != text:
        return redacted
    if len(text) <= _CLEAN_MAX_LENGTH:
        if len(_CLEAN) >= _CLEAN_MAX_ENTRIES:
            _CLEAN.clear()
        _CLEAN.add(text)
    return text
