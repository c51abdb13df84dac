"""The user's locale, negotiated from the signup request's ``Accept-Language`` (RFC 9110 12.5.4).

We write to users in the languages we have templates for: ``SUPPORTED`` (``en``, ``de``,
``fr``), ``en`` when the header names none of them. Of the ranges the header lists, the one
with the highest weight that matches a supported language wins (ties: the first listed): a
range matches by its primary subtag (``de-CH`` and ``de`` mean ``de``), ``*`` means the
default, and ``q=0`` means "not this one" (``en;q=0, de`` gives ``de``; ``*;q=0`` alone gives
the default, since a signup is never refused for its language). Malformed ranges and weights
are skipped, not refused: the header is a preference, and only the first ``MAX_RANGES`` ranges
of at most ``MAX_HEADER_CHARACTERS`` are read.
"""

import re
from typing import Final

SUPPORTED: Final = ("en", "de", "fr")
DEFAULT: Final = "en"
MAX_HEADER_CHARACTERS: Final = 1024
MAX_RANGES: Final = 32

_RANGE = re.compile(r"^(?:\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)$")
_WEIGHT = re.compile(r"^[qQ]=(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$")


def negotiate(accept_language: str | None) -> str:
    """The supported locale the header prefers most, or ``DEFAULT``."""
    if not accept_language:
        return DEFAULT
    best, best_weight = DEFAULT, 0.0
    ranges = accept_language[:MAX_HEADER_CHARACTERS].split(",")[:MAX_RANGES]
    for item in ranges:
        parsed = _parse(item)
        if parsed is None:
            continue
        language_range, weight = parsed
        locale = DEFAULT if language_range == "*" else language_range.split("-", 1)[0].lower()
        if locale in SUPPORTED and weight > best_weight:
            best, best_weight = locale, weight
    return best


def _parse(item: str) -> tuple[str, float] | None:
    """``(range, weight)`` of one ``range;q=weight`` item, or None if it is malformed."""
    language_range, *parameters = (part.strip() for part in item.split(";"))
    if not _RANGE.match(language_range):
        return None
    weight = 1.0
    for parameter in parameters:
        if not _WEIGHT.match(parameter):
            return None
        weight = float(parameter[2:])
    return language_range, weight
