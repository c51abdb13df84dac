"""How many SMS parts a text takes (GSM 03.38 7-bit alphabet, else UCS-2).

A text written only in the GSM-7 basic alphabet (and its extension table, whose characters
count twice) fits 160 septets in one SMS, 153 per part when concatenated. Any other character
makes the whole text UCS-2: 70 UTF-16 code units in one SMS, 67 per part.
"""

from dataclasses import dataclass

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")
SINGLE = {"GSM-7": 160, "UCS-2": 70}
PER_PART = {"GSM-7": 153, "UCS-2": 67}


@dataclass(frozen=True)
class Segments:
    encoding: str
    units: int
    parts: int


def segments(text: str) -> Segments:
    """The encoding an SMS gateway picks for ``text``, its length in that encoding's units
    (septets, or UTF-16 code units) and the number of SMS parts it is sent as."""
    if all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text):
        encoding, units = "GSM-7", sum(2 if char in GSM7_EXTENSION else 1 for char in text)
    else:
        encoding, units = "UCS-2", len(text.encode("utf-16-le")) // 2
    if units <= SINGLE[encoding]:
        return Segments(encoding, units, 1)
    return Segments(encoding, units, -(-units // PER_PART[encoding]))
