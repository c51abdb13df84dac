import string
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from signup_shared.redact import EMAIL_MASK, PHONE_MASK, redact


@pytest.mark.parametrize(
    "text,expected",
    [
        ("signup for ada.lovelace+news@example.co.uk failed", f"signup for {EMAIL_MASK} failed"),
        ("Key (email)=(ada@example.com) exists.", f"Key (email)=({EMAIL_MASK}) exists."),
        ("{'email': 'ada@example.com'}", f"{{'email': '{EMAIL_MASK}'}}"),
        ("mailto:ada@example.com?subject=hi", f"mailto:{EMAIL_MASK}?subject=hi"),
        ("to <ada@example.com>", f"to <{EMAIL_MASK}>"),
        ("sms to +14155550123 refused", f"sms to {PHONE_MASK} refused"),
        ("sms to +1 (415) 555-0123.", f"sms to {PHONE_MASK}."),
        ("tel:+44 20 7946 0958;", f"tel:{PHONE_MASK};"),
        ("+44.20.7946.0958", PHONE_MASK),
        ("call (415) 555-0123", f"call {PHONE_MASK}"),
        ("call 415-555-0123 or 415.555.0123", f"call {PHONE_MASK} or {PHONE_MASK}"),
        ("ruf 020 7946 0958 an", f"ruf {PHONE_MASK} an"),
        ("'phone': '+14155550123'", f"'phone': '{PHONE_MASK}'"),
        ("2026-11-25 415-555-0123", f"2026-11-25 {PHONE_MASK}"),
        ("415-555-0123 2026-11-25", f"{PHONE_MASK} 2026-11-25"),
    ],
)
def test_redact_scrubs_emails_and_phone_numbers(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "550e8400-e29b-41d4-a716-446655440000",
        "12345678-1234-1234-1234-123456789012",  # a UUID of digits only
        "correlation 550e8400-e29b-41d4-a716-446655440000 and 12345678-1234-1234-1234-123456789012",
        "2026-11-25T10:16:04.123456+00:00",
        "2026-11-25T10:16:04Z at 2026-11-25 10:16:04,123 on 2026-11-25",
        "20261125T101604Z",
        "took 1234567.891 ms, 0.001234567 s, 0:00:01.234567, PT1.5S",
        "127.0.0.1:5432 localhost:15672 [::1]:5672 port 5672 192.168.100.200",
        "postgresql+psycopg://postgres@127.0.0.1:5432/accounts",
        "amqp://guest:guest@127.0.0.1:5672//",
        "SQLSTATE 23505 (unique_violation), 22P02, 40001",
        "delivery_tag=123456789012345 redelivered=True",
        "epoch 1764065764123 user_id=42 rows=1000000",
        "[Errno 111] Connection refused; retry_in=+1.5 offset +00:00",
        '    @functools.wraps(fn)\n  File "/app/x.py", line 12345, in wrapper',
        "x-signup-attempts: 3, x-death count 12",
        "version 1.2.3.4 build 20261125",
    ],
)
def test_redact_leaves_ids_times_durations_ports_codes_and_tags_alone(text: str) -> None:
    assert redact(text) == text


def test_redact_never_touches_short_text_or_plain_words() -> None:
    assert redact("") == ""
    assert redact("a@b.c") == "a@b.c"
    assert redact("message.handled") == "message.handled"
    assert redact("message.handled") == "message.handled"  # second time from the clean cache


# --- properties ------------------------------------------------------------------------------

# Text around the personal data: anything, but set apart by a space so that the value is a
# value and not the middle of another token (``x+14155550123y`` is not a phone number).
_AROUND = st.text(max_size=40)


@st.composite
def phone_numbers(draw: st.DrawFn) -> str:
    """E.164 numbers as people and systems write them: bare, spaced, dashed, dotted, (area)."""
    country = draw(st.sampled_from(["1", "44", "33", "49", "353", "81"]))
    area = draw(st.text(string.digits, min_size=2, max_size=4))
    local = draw(st.text(string.digits, min_size=6, max_size=8))
    middle, last = local[:3], local[3:]
    style = draw(st.sampled_from(["bare", " ", "-", ".", "paren", "national-paren", "national"]))
    if style == "bare":
        return f"+{country}{area}{local}"
    if style == "paren":
        return f"+{country} ({area}) {middle}-{last}"
    if style == "national-paren":
        return f"({area}) {middle}-{last}" if len(area + local) >= 9 else f"+{country}{area}{local}"
    if style == "national":
        sep = draw(st.sampled_from([" ", "-", "."]))
        number = f"0{area}{sep}{middle}{sep}{last}"
        return number if len(area + local) >= 8 else f"+{country}{area}{local}"
    return f"+{country}{style}{area}{style}{middle}{style}{last}"


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(before=_AROUND, email=st.emails(), after=_AROUND)
@example(before="", email="'@A.COM", after="")
@example(before="user", email="o'brien@example.org", after="")
def test_any_email_embedded_in_any_text_disappears(before: str, email: str, after: str) -> None:
    scrubbed = redact(f"{before} {email} {after}")
    assert email not in scrubbed
    assert EMAIL_MASK in scrubbed


@settings(deadline=None)
@given(before=_AROUND, phone=phone_numbers(), after=_AROUND)
@example(before="2026-11-25", phone="415-555-0123", after="2026-11-25")
def test_any_phone_number_embedded_in_any_text_disappears(
    before: str, phone: str, after: str
) -> None:
    scrubbed = redact(f"{before} {phone} {after}")
    assert phone not in scrubbed
    assert PHONE_MASK in scrubbed


_TOKEN_CHARS = st.sampled_from([" ", ", ", "; ", "=", ": ", "\n", "\t", "|"])
_TIMESTAMPS = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)


@settings(deadline=None)
@given(
    values=st.lists(
        st.one_of(
            st.uuids().map(str),
            _TIMESTAMPS.map(lambda moment: moment.isoformat()),
            _TIMESTAMPS.map(lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")),
            _TIMESTAMPS.map(lambda moment: moment.date().isoformat()),
            st.timedeltas(max_value=timedelta(days=999)).map(str),
            st.floats(min_value=0, max_value=1e9, allow_nan=False).map(lambda f: f"{f:.3f}ms"),
            st.integers(min_value=1, max_value=65535).map(lambda port: f"127.0.0.1:{port}"),
            st.integers(min_value=0, max_value=2**64).map(lambda tag: f"delivery_tag={tag}"),
            st.from_regex(r"\A[0-9A-Z]{5}\Z").map(lambda code: f"SQLSTATE {code}"),
        ),
        min_size=1,
        max_size=6,
    ),
    joiners=st.lists(_TOKEN_CHARS, min_size=6, max_size=6),
)
def test_ids_timestamps_durations_ports_codes_and_tags_survive(
    values: list[str], joiners: list[str]
) -> None:
    text = "".join(value + joiner for value, joiner in zip(values, joiners, strict=False))
    assert redact(text) == text


def test_a_fresh_uuid_is_not_a_phone_number() -> None:
    for _ in range(200):
        value = str(uuid.uuid4())
        assert redact(f"user_id={value} ") == f"user_id={value} "
