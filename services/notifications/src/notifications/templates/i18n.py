"""Translations of the welcome messages: one gettext catalog (Babel ``.po``) per language.

The English text in the template files and in ``plans.toml`` is the message id; a language is
``files/locales/<language>/LC_MESSAGES/messages.po``. Catalogs are read with Babel and compiled
in memory once per process, so no compiled ``.mo`` file can drift from its source. The user's
locale (``UserSignedUp`` v2: a BCP 47 tag negotiated from ``Accept-Language``) picks the
language by its primary subtag (``de-AT`` -> ``de``); a language without a catalog, or a v1 event
(no locale), gets English. Adding a language: copy ``de``'s ``messages.po``, translate every
entry; the unit tests refuse a catalog missing a message or a placeholder.
"""

import functools
import gettext
import io
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).parent / "files" / "locales"
SOURCE_LANGUAGE = "en"
"""The language the template files are written in (no catalog: the message ids themselves)."""


def _catalog_path(language: str) -> Path:
    return LOCALES_DIR / language / "LC_MESSAGES" / "messages.po"


@functools.cache
def languages() -> tuple[str, ...]:
    """English, then every language that has a catalog."""
    translated = sorted(
        path.name for path in LOCALES_DIR.iterdir() if _catalog_path(path.name).is_file()
    )
    return (SOURCE_LANGUAGE, *translated)


def primary_subtag(locale: str) -> str:
    """The language a locale asks for: ``de-AT``, ``de_DE`` and ``DE`` all ask for ``de``."""
    return locale.replace("_", "-").split("-", 1)[0].lower()


def language(locale: object) -> str:
    """The language of the templates for a user's ``locale`` (English when there is none)."""
    if not isinstance(locale, str):
        return SOURCE_LANGUAGE
    primary = primary_subtag(locale)
    return primary if primary in languages() else SOURCE_LANGUAGE


def catalog(language: str) -> Catalog:
    """The catalog of a translated language, as its ``.po`` file has it."""
    with _catalog_path(language).open("rb") as source:
        return read_po(source, locale=language)


@functools.cache
def translations(language: str) -> gettext.NullTranslations:
    """The gettext translations of ``language`` (none for English), compiled once."""
    if language == SOURCE_LANGUAGE:
        return gettext.NullTranslations()
    compiled = io.BytesIO()
    write_mo(compiled, catalog(language), use_fuzzy=False)
    compiled.seek(0)
    return gettext.GNUTranslations(compiled)
