"""Negotiating the user's locale from Accept-Language, and the versions setting."""

import pytest
from pydantic import ValidationError

from accounts.api.locales import DEFAULT, MAX_HEADER_CHARACTERS, negotiate
from accounts.settings import AccountsSettings


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        (None, "en"),
        ("", "en"),
        ("de", "de"),
        ("DE-at", "de"),
        ("de-CH, fr;q=0.9", "de"),
        ("es, fr;q=0.1", "fr"),  # the best supported one, however low
        ("fr;q=0.5, de;q=0.5", "fr"),  # a tie: the first listed
        ("de;q=0.8, fr", "fr"),  # weights, not order
        ("en;q=0, de", "de"),
        ("*;q=0", "en"),
        ("es, *;q=0.5, de;q=0.1", "en"),  # "anything" weighs more than de: the default
        ("ja, zh-Hant", "en"),
    ],
)
def test_the_preferred_supported_language_wins(header: str | None, locale: str) -> None:
    assert negotiate(header) == locale


@pytest.mark.parametrize(
    "header",
    ["de;q=2", "de;q=abc", "de;level=1", "d€", "-de", "de;;q=1", ";", ",,,", "\x00de"],
)
def test_malformed_ranges_are_skipped_not_refused(header: str) -> None:
    assert negotiate(header) == DEFAULT
    assert negotiate(f"{header}, fr;q=0.3") == "fr"


def test_only_the_head_of_a_huge_header_is_read() -> None:
    assert negotiate("x" * MAX_HEADER_CHARACTERS + ", de") == DEFAULT
    assert negotiate("fr, " + "es, " * 10_000) == "fr"


def test_the_versions_setting_defaults_to_v2_and_a_window_is_newest_first() -> None:
    assert AccountsSettings().publish_user_signed_up_versions == [2]
    assert AccountsSettings(
        publish_user_signed_up_versions=[1, 2]
    ).publish_user_signed_up_versions == [2, 1]


@pytest.mark.parametrize("value", ["1,2", "2, 1", "[1, 2]", " [2,1] "])
def test_the_versions_setting_reads_a_list_or_json_from_the_environment(
    value: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCOUNTS_PUBLISH_USER_SIGNED_UP_VERSIONS", value)
    assert AccountsSettings().publish_user_signed_up_versions == [2, 1]


def test_one_version_reads_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCOUNTS_PUBLISH_USER_SIGNED_UP_VERSIONS", "1")
    assert AccountsSettings().publish_user_signed_up_versions == [1]


def test_a_malformed_versions_setting_names_the_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACCOUNTS_PUBLISH_USER_SIGNED_UP_VERSIONS", "1,two")
    with pytest.raises(ValidationError, match="publish_user_signed_up_versions"):
        AccountsSettings()


@pytest.mark.parametrize(("versions", "message"), [([], "at least one"), ([1, 3], r"\[3\]")])
def test_a_versions_setting_naming_nothing_known_is_refused(
    versions: list[int], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        AccountsSettings(publish_user_signed_up_versions=versions)
