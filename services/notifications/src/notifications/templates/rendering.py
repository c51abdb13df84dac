"""The template engine: Jinja2 with autoescaping, over the files in ``templates/files``.

Why Jinja2 rather than Kajiki: one engine and one syntax for the four kinds of file a welcome
needs (subject line, plain text, HTML, SMS; Kajiki's XML templates cover only the HTML and need
a second text syntax), autoescaping chosen by file extension (``.html`` escaped, ``.txt`` not),
``StrictUndefined`` so a missing field fails loudly instead of printing nothing, type hints
shipped for mypy, and a syntax designers already meet in most email tools.

Cost: nothing is rendered per message. Each template is rendered once per plan with sentinels
in place of the user's fields and cut there (``Skeleton``); the HTML has its CSS inlined by
css-inline before it is cut (parsing and serialising the document costs far more than a
message may). A message then only joins the cached pieces with the user's values, verbatim in
text and HTML-escaped in HTML. So a template prints the user's fields but cannot branch on
them. The sentinels may only stand in text (never inside a tag or a ``<style>``), which the
skeleton checks when it is built: that is where HTML escaping is the whole of the escaping
needed. Nothing is loaded from the network (``load_remote_stylesheets=False``; the CSS is a
file beside the templates).
"""

import functools
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import css_inline
import jinja2
from markupsafe import Markup, escape

from notifications.templates import i18n
from signup_shared.errors import PermanentError

FILES = Path(__file__).parent / "files"
PRODUCT = "Signup Platform"
# The user's fields a template may print (and nothing else of the user's).
USER_FIELDS = ("full_name", "first_name")
_SENTINEL = "\ue000{}\ue001"
_SENTINELS = re.compile("\ue000(" + "|".join(USER_FIELDS) + ")\ue001")
_OUTSIDE_TEXT = re.compile(r"<(?:style|script)\b.*?</(?:style|script)>|<[^>]*>", re.S | re.I)


class TemplateError(PermanentError):
    """The template is unknown, broken, or its data incomplete: no retry will render it."""


@dataclass(frozen=True)
class Plan:
    """What a plan includes and the next step the welcome suggests (``files/plans.toml``)."""

    key: str
    label: str
    includes: tuple[str, ...]
    next_step: str
    next_step_url: str
    sms_next_step: str


@functools.cache
def environment(language: str) -> jinja2.Environment:
    """The templates in ``language``: ``_("text %(name)s", name=...)`` translates (gettext,
    new style: placeholders are filled after translating, escaped in HTML)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(FILES),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=False,
        extensions=["jinja2.ext.i18n"],
    )
    env.install_gettext_translations(i18n.translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env


@functools.cache
def _plans() -> dict[str, dict[str, Any]]:
    with (FILES / "plans.toml").open("rb") as source:
        return tomllib.load(source)


@functools.cache
def plan(key: str) -> Plan:
    """The content of plan ``key``; an unknown plan (a newer contract) gets the default content
    under its own name."""
    content = _plans().get(key) or _plans()["default"]
    return Plan(
        key=key,
        label=content["label"] or key.replace("_", " ").title(),
        includes=tuple(content["includes"]),
        next_step=content["next_step"],
        next_step_url=content["next_step_url"],
        sms_next_step=content["sms_next_step"],
    )


def template(name: str, language: str = i18n.SOURCE_LANGUAGE) -> jinja2.Template:
    try:
        return environment(language).get_template(name)
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"template file {name!r} is missing") from exc


@dataclass(frozen=True)
class Skeleton:
    """A template rendered for one plan, cut where the user's fields go.

    ``pieces`` alternates literal text and field names: literal, field, literal, ... literal.
    ``html``: the user's values are HTML-escaped (else inserted verbatim: plain text).
    """

    pieces: tuple[str, ...]
    html: bool

    def fill(self, fields: dict[str, str]) -> str:
        pieces = self.pieces
        out = [pieces[0]]
        for index in range(1, len(pieces), 2):
            value = fields[pieces[index]]
            out.append(str(escape(value)) if self.html else value)
            out.append(pieces[index + 1])
        return "".join(out)


def _render_with_sentinels(name: str, plan_key: str, language: str) -> str:
    # Constant sentinels, not user data (the user's values are escaped in ``Skeleton.fill``).
    placeholders = {field: Markup(_SENTINEL.format(field)) for field in USER_FIELDS}  # noqa: S704
    try:
        return template(name, language).render(
            product=PRODUCT, plan=plan(plan_key), language=language, **placeholders
        )
    except jinja2.TemplateError as exc:
        raise TemplateError(f"{name}: {exc}") from exc


@functools.cache
def text_skeleton(name: str, plan_key: str, language: str = i18n.SOURCE_LANGUAGE) -> Skeleton:
    """A plain-text template (subject, text body, SMS) for the plan in ``language``: the user's
    text goes in verbatim (once per template, plan and language, then cached)."""
    rendered = _render_with_sentinels(name, plan_key, language)
    return Skeleton(tuple(_SENTINELS.split(rendered)), html=False)


@functools.cache
def _inliner() -> css_inline.CSSInliner:
    return css_inline.CSSInliner(
        load_remote_stylesheets=False,
        keep_link_tags=False,
        extra_css=(FILES / "welcome_email.css").read_text(encoding="utf-8"),
    )


@functools.cache
def html_skeleton(name: str, plan_key: str, language: str = i18n.SOURCE_LANGUAGE) -> Skeleton:
    """An HTML template for the plan in ``language`` with its CSS inlined: the user's values
    HTML-escaped (once per template, plan and language, then cached)."""
    rendered = _render_with_sentinels(name, plan_key, language)
    inlined = _inliner().inline(rendered)
    expected = len(_SENTINELS.findall(rendered))
    if len(_SENTINELS.findall(inlined)) != expected:
        raise TemplateError(f"{name}: the CSS inliner changed where the user's fields go")
    for outside in _OUTSIDE_TEXT.finditer(inlined):
        if _SENTINELS.search(outside.group()):
            raise TemplateError(f"{name}: user fields may only stand in text, not in a tag")
    return Skeleton(tuple(_SENTINELS.split(inlined)), html=True)
