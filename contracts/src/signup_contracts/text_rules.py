"""Rules for text fields of version 2 contracts, written once as JSON Schema patterns.

The accounts API refuses a ``full_name`` holding a control or format character (C0/C1
controls, bidi overrides and isolates, zero-width characters, the soft hyphen, line and
paragraph separators) and trims it; ``UserSignedUp`` v2 promises exactly what the API stored:
printable, trimmed, not blank. The sets are pinned here as code point ranges (taken from the
Unicode 14.0 character database, the one the API's Python reads): a frozen schema must not
change when a newer Python classifies a new character, and a consumer in another language
gets the same pattern. The pattern is ECMA-262 with the ``u`` flag (``\\uXXXX`` escapes in the
Basic Multilingual Plane, literal characters beyond it), which Python ``re``, JavaScript and
Rust's regex (pydantic's) read alike.
"""

from collections.abc import Iterable
from typing import Final

REFUSED_RANGES: Final = (
    (0x0000, 0x001F), (0x007F, 0x009F), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C),
    (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E),
    (0x200B, 0x200F), (0x2028, 0x202E), (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF),
    (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x13438),
    (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A), (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)  # fmt: skip
"""Control (Cc), format (Cf), line (Zl) and paragraph (Zp) separators: never in a name."""
SPACE_RANGES: Final = (
    (0x0020, 0x0020), (0x00A0, 0x00A0), (0x1680, 0x1680), (0x2000, 0x200A), (0x202F, 0x202F),
    (0x205F, 0x205F), (0x3000, 0x3000),
)  # fmt: skip
"""What Python's ``str.strip`` removes once the refused characters are gone (space separators)."""


def _literal(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)


def _class_body(ranges: Iterable[tuple[int, int]]) -> str:
    parts = []
    for first, last in sorted(ranges):
        parts.append(_literal(first) if first == last else f"{_literal(first)}-{_literal(last)}")
    return "".join(parts)


_NOT_REFUSED = f"[^{_class_body(REFUSED_RANGES)}]"
_NEITHER = f"[^{_class_body(REFUSED_RANGES + SPACE_RANGES)}]"

TRIMMED_PRINTABLE: Final = f"^{_NEITHER}(?:{_NOT_REFUSED}*{_NEITHER})?$"
"""Printable text that neither starts nor ends with a space, and is not empty."""

FULL_NAME_MAX_LENGTH: Final = 200

E164_ASCII: Final = r"^\+[1-9][0-9]{7,14}$"
"""E.164 as the API takes it: ``+`` and 8 to 15 ASCII digits, the first not 0 (``\\d`` would
also let other scripts' digits through)."""

LOCALE: Final = r"^[a-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$"
"""A BCP 47 language tag: a lowercase primary language, then subtags (``en``, ``de``, ``pt-BR``)."""
LOCALE_MAX_LENGTH: Final = 35
"""RFC 5646 (section 4.4.1): a tag of up to 35 characters must be supported."""
DEFAULT_LOCALE: Final = "en"
