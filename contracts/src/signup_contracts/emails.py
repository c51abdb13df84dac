"""The email address of an event: a structural check, not email-validator's full one.

Every ``UserSignedUp`` carries an address the accounts API took through email-validator
(``EmailStr``: syntax, length, internationalized domains) and normalized. Running those checks
again in every consumer, for every event, cost ~0.1 ms per event (a large part of parsing one);
a consumer needs only to know that the text is shaped like an address and safe to hand on: one
``@``, a dot-atom local part, a dotted domain of labels of at most 63 characters, at most 254
characters in all (email-validator's own limits outside its strict mode),
no space, control or format character and none of ``"(),:;<>[\\]`` (so no quoted local part,
no display name, no header line break). Everything email-validator accepts passes (a property
test holds it to that); a hostile or broken event fails with a reason that names the rule and
never the address. The JSON Schema is unchanged: ``{"type": "string", "format": "email"}``.
"""

import re
from typing import Annotated, Final

from pydantic import AfterValidator, WithJsonSchema

from signup_contracts.text_rules import REFUSED_RANGES, SPACE_RANGES

EMAIL_MAX_LENGTH: Final = 254
LABEL_MAX_LENGTH: Final = 63
SPECIALS: Final = '"(),:;<>@[\\]'
EMAIL_RULE: Final = (
    f"must be an email address: local@domain.tld, at most {EMAIL_MAX_LENGTH} characters, "
    f"no spaces, control characters or any of {SPECIALS}"
)


def _excluded() -> str:
    """The body of a character class of what no part of an address may hold (and the dot)."""
    ranges = sorted(REFUSED_RANGES + SPACE_RANGES)
    body = "".join(
        re.escape(chr(first))
        if first == last
        else f"{re.escape(chr(first))}-{re.escape(chr(last))}"
        for first, last in ranges
    )
    return body + re.escape(SPECIALS + ".")


_CHARACTER = f"[^{_excluded()}]"
_ATOM = f"{_CHARACTER}+"
_LABEL = f"(?!-){_CHARACTER}{{1,{LABEL_MAX_LENGTH}}}(?<!-)"
_EMAIL = re.compile(f"{_ATOM}(?:\\.{_ATOM})*@{_LABEL}(?:\\.{_LABEL})+")


def is_email_shaped(value: str) -> bool:
    """Whether ``value`` passes the structural check (see the module docstring)."""
    return len(value) <= EMAIL_MAX_LENGTH and _EMAIL.fullmatch(value) is not None


def email_shaped(value: str) -> str:
    if not is_email_shaped(value):
        raise ValueError(EMAIL_RULE)
    return value


EventEmail = Annotated[
    str, AfterValidator(email_shaped), WithJsonSchema({"type": "string", "format": "email"})
]
"""The ``email`` field of an event (see the module docstring)."""
