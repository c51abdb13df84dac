"""E.164 phone number validation."""

import re

_E164 = re.compile(r"\+[1-9][0-9]{1,14}")


def is_e164(value: str) -> bool:
    return _E164.fullmatch(value) is not None
