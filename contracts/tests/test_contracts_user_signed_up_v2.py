"""``UserSignedUp`` v2: the API's rules for ``full_name`` and ``phone``, the ``locale``, and the
upcast of v1."""

import pytest
from pydantic import ValidationError

from signup_contracts import UserSignedUp, UserSignedUpV2, parse_envelope, upcast
from signup_contracts.testing import payload, user_signed_up, user_signed_up_v2


@pytest.mark.parametrize("name", ["Ada", "Ada Lovelace", "李 小龍", "Zoë", "\U0001f600", "A" * 200])
def test_printable_trimmed_names_are_accepted(name: str) -> None:
    assert payload(UserSignedUpV2, full_name=name).full_name == name


@pytest.mark.parametrize(
    "name",
    ["", " ", " Ada", "Ada ", "Ada\n", "A\u202eb", "A\u200bb", "\u00adAda", "Ada\u3000", "A" * 201],
)
def test_names_the_api_would_not_store_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="full_name"):
        payload(UserSignedUpV2, full_name=name)


@pytest.mark.parametrize("phone", ["+12345678", "+123456789012345", None])
def test_e164_in_ascii_digits_or_null(phone: str | None) -> None:
    assert payload(UserSignedUpV2, phone=phone).phone == phone


@pytest.mark.parametrize("phone", ["+1234567", "+1234567890123456", "+0123456789", "+١٢٣٤٥٦٧٨٩"])
def test_other_phones_are_refused(phone: str) -> None:
    with pytest.raises(ValidationError, match="phone"):
        payload(UserSignedUpV2, phone=phone)


def test_v1_still_takes_what_it_took() -> None:
    assert payload(UserSignedUp, full_name=" Ada\u202e ").full_name == " Ada\u202e "
    assert payload(UserSignedUp, phone="+123").phone == "+123"


@pytest.mark.parametrize("locale", ["en", "de", "fr", "pt-BR", "zh-Hant-TW"])
def test_bcp47_locales_are_accepted(locale: str) -> None:
    assert payload(UserSignedUpV2, locale=locale).locale == locale


@pytest.mark.parametrize("locale", ["", "e", "EN", "en_US", "en-", "x" * 36, "en-" + "a" * 33])
def test_other_locales_are_refused(locale: str) -> None:
    with pytest.raises(ValidationError, match="locale"):
        payload(UserSignedUpV2, locale=locale)


def test_locale_and_phone_are_required() -> None:
    fields = payload(UserSignedUpV2).model_dump()
    for name in ("locale", "phone"):
        with pytest.raises(ValidationError, match=name):
            UserSignedUpV2.model_validate({k: v for k, v in fields.items() if k != name})


def test_upcast_reads_v1_as_v2_in_english_and_v2_as_it_is() -> None:
    v1 = user_signed_up(full_name="Ada", phone="+14155550123").data
    assert upcast(v1) == UserSignedUpV2.model_validate({**v1.model_dump(), "locale": "en"})
    v2 = user_signed_up_v2(locale="de").data
    assert upcast(v2) is v2


def test_upcast_refuses_a_v1_value_v2_does_not_allow() -> None:
    with pytest.raises(ValidationError, match="full_name"):
        upcast(user_signed_up(full_name="Ada\u202e").data)


def test_a_v2_envelope_parses_as_v2_with_its_id() -> None:
    event = user_signed_up_v2(locale="fr")
    parsed = parse_envelope(event.to_json())
    assert isinstance(parsed.data, UserSignedUpV2)
    assert (parsed.id, parsed.version, parsed.data.locale) == (event.id, 2, "fr")
    assert parsed.routing_key == f"{user_signed_up().routing_key}.v2"  # a key per version
