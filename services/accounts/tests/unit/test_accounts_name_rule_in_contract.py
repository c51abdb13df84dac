"""The API's ``full_name`` rule and ``UserSignedUp`` v2's are the same (the contract pins the
character sets as ranges; the API derives them from this Python's Unicode database). The API's
pattern scans every code point once (~0.1 s, cached for the process: the API's own unit tests
need it too); everything else here is a string comparison."""

import pytest

from accounts.api.names import full_name, full_name_pattern
from signup_contracts import UserSignedUpV2
from signup_contracts.testing import payload
from signup_contracts.text_rules import REFUSED_RANGES, SPACE_RANGES


def body(ranges: tuple[tuple[int, int], ...]) -> str:
    """The ranges as a character class body, adjacent ones merged (as the API writes it)."""
    merged: list[list[int]] = []
    for first, last in sorted(ranges):
        if merged and merged[-1][1] + 1 == first:
            merged[-1][1] = last
        else:
            merged.append([first, last])

    def literal(code: int) -> str:
        return f"\\u{code:04x}" if code <= 0xFFFF else chr(code)

    return "".join(literal(a) if a == b else f"{literal(a)}-{literal(b)}" for a, b in merged)


def test_the_contract_pins_the_character_sets_the_api_refuses_and_strips() -> None:
    refused, either = body(REFUSED_RANGES), body(REFUSED_RANGES + SPACE_RANGES)
    assert full_name_pattern() == f"^[^{refused}]*[^{either}][^{refused}]*$", (
        "the API's Unicode database moved: freeze UserSignedUp v3 with the new sets"
    )


@pytest.mark.parametrize(
    "typed", ["Ada Lovelace", "  Zoë Núñez ", "李小龍", "\u00a0Anna\u3000", "O'Brien-Smith"]
)
def test_every_name_the_api_stores_is_a_valid_v2_name(typed: str) -> None:
    stored = full_name(typed)
    assert payload(UserSignedUpV2, full_name=stored).full_name == stored
