"""What a person's name may hold, checked in Python and documented as a JSON Schema pattern."""

import functools
import itertools
import unicodedata
from collections.abc import Iterable
from typing import Any

# Controls (C0/C1, NUL), format characters (bidi overrides and isolates, zero-width ones,
# soft hyphen), surrogates, line and paragraph separators.
NOT_PRINTABLE = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def printable(value: str) -> str:
    """Refuse what would corrupt an email subject, an SMS body or a log line."""
    if value.isprintable():  # the fast path: str.isprintable refuses a superset of NOT_PRINTABLE
        return value
    for char in value:
        if unicodedata.category(char) in NOT_PRINTABLE:
            raise ValueError(f"must be printable text (U+{ord(char):04X} is not)")
    return value


def full_name(value: str) -> str:
    name = printable(value).strip()
    if not name:
        raise ValueError("must not be blank")
    return name


def _code_points() -> Iterable[int]:
    # Planes 4-13 are unassigned and 15-16 private use: nothing there is refused or a space.
    return itertools.chain(range(0x40000), range(0xE0000, 0xF0000))


@functools.cache
def full_name_pattern() -> str:
    """The pattern ``full_name`` documents: ECMA-262 with the ``u`` flag, as JSON Schema means.

    The same verdict as ``full_name``: at least one character that is neither refused nor
    stripped, and no refused one. What ``str.strip`` removes, once the refused characters are
    gone, is exactly the space separators (Zs), listed here instead of ``\\s`` (whose members
    differ between engines). Code points are ``\\uXXXX`` escapes in the Basic Multilingual Plane
    and literal characters beyond it, the two spellings Python ``re``, JavaScript (``u`` flag)
    and Rust's regex read alike (``\\U0001xxxx`` is Python only, ``\\u{...}`` JavaScript only).
    Lone surrogates are left out: JSON text cannot carry one validly and Rust's regex refuses
    them in a class; the server refuses them all the same.
    """
    refused, spaces = [], []
    for code in _code_points():
        char = chr(code)
        category = unicodedata.category(char)
        if category in NOT_PRINTABLE:
            if category != "Cs":
                refused.append(code)
        elif char.isspace():
            spaces.append(code)
    anything = _class_body(refused)
    something = _class_body(sorted(refused + spaces))
    return f"^[^{anything}]*[^{something}][^{anything}]*$"


def _class_body(codes: Iterable[int]) -> str:
    """Sorted code points as the members of a regex character class, consecutive ones as ranges."""
    parts = []
    for _, run in itertools.groupby(enumerate(codes), key=lambda pair: pair[1] - pair[0]):
        members = [code for _, code in run]
        first, last = _literal(members[0]), _literal(members[-1])
        parts.append(first if len(members) == 1 else f"{first}-{last}")
    return "".join(parts)


def _literal(code: int) -> str:
    return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)


def document_full_name(schema: dict[str, Any]) -> None:
    schema["pattern"] = full_name_pattern()
