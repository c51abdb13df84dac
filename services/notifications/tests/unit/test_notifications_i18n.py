"""Translations: which language a locale gets, and catalogs that cover every message."""

import re
import tomllib

import pytest

from notifications import templates
from notifications.templates import i18n, rendering

PLACEHOLDER = re.compile(r"%\((\w+)\)s")
TEMPLATE_FILES = (
    "welcome_email.subject.txt",
    "welcome_email.txt",
    "welcome_email.html",
    "welcome_sms.txt",
)


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        ("de", "de"),
        ("de-AT", "de"),
        ("DE_ch", "de"),
        ("en-GB", "en"),
        ("fr", "en"),  # no catalog: English
        ("", "en"),
        (None, "en"),  # a v1 event carries no locale
        (42, "en"),
    ],
)
def test_a_locale_picks_the_language_of_its_primary_subtag(locale: object, language: str) -> None:
    assert i18n.language(locale) == language


def test_english_is_the_source_and_german_is_translated() -> None:
    assert i18n.languages()[0] == "en" and "de" in i18n.languages()


def message_ids() -> set[str]:
    """Every text the templates translate: the literal ``_()`` calls of the template files and
    the plan texts they pass to ``_()`` (what each plan includes, its next steps)."""
    env = rendering.environment(i18n.SOURCE_LANGUAGE)
    ids: set[str] = set()
    for name in TEMPLATE_FILES:
        source = (rendering.FILES / name).read_text(encoding="utf-8")
        for _line, _function, found in env.extract_translations(source):  # type: ignore[attr-defined]
            # babel style: the message alone, or a tuple with None for each keyword argument
            message = found[0] if isinstance(found, tuple) else found
            if isinstance(message, str):
                ids.add(message)
    with (rendering.FILES / "plans.toml").open("rb") as plans:
        for plan in tomllib.load(plans).values():
            ids.update(plan["includes"])
            ids.update((plan["next_step"], plan["sms_next_step"]))
    return ids


@pytest.mark.parametrize("language", i18n.languages()[1:])
def test_every_catalog_translates_every_message_with_the_same_placeholders(language: str) -> None:
    catalog = i18n.catalog(language)
    ids = message_ids()
    assert len(ids) > 20  # the extraction found the templates' texts
    for message_id in ids:
        entry = catalog.get(message_id)
        assert entry is not None and entry.string, f"{language}: {message_id!r} untranslated"
        assert not entry.fuzzy, f"{language}: {message_id!r} is fuzzy"
        assert sorted(PLACEHOLDER.findall(entry.string)) == sorted(
            PLACEHOLDER.findall(message_id)
        ), f"{language}: {message_id!r} changes its placeholders"
    unused = {str(entry.id) for entry in catalog if entry.id and entry.id not in ids}
    assert not unused, f"{language}: entries no template uses: {sorted(unused)}"


@pytest.mark.parametrize("plan", templates.PLANS)
def test_a_german_welcome_has_no_english_sentence_left(plan: str) -> None:
    data = {"full_name": "Ada Lovelace", "plan": plan, "locale": "de"}
    email, sms = templates.welcome_email(data), templates.welcome_sms(data)
    english = templates.welcome_email({**data, "locale": "en"})
    assert email.language == "de" and english.language == "en"
    for sentence in ("Your plan includes", "Next step", "If you did not sign up", "Welcome to"):
        assert sentence in english.text + english.subject
        assert sentence not in email.text + email.html + email.subject + sms.body
