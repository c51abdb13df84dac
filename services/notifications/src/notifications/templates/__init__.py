"""What the welcome messages say. Presentation only: which message to send is the actions' call.

The words live in template files beside this package (``files/``: subject, plain text, HTML
with its CSS, SMS, and what each plan includes in ``plans.toml``); ``rendering`` explains the
engine (Jinja2, autoescaped HTML, CSS inlined once per plan and language) and ``i18n`` the
translations: the template data's ``locale`` (from ``UserSignedUp`` v2) picks the language,
English when it has no catalog (German has one).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from notifications.templates import i18n
from notifications.templates.gsm import Segments, segments
from notifications.templates.rendering import PRODUCT as PRODUCT
from notifications.templates.rendering import TemplateError as TemplateError
from notifications.templates.rendering import html_skeleton, plan, text_skeleton

WELCOME_EMAIL = "welcome_email"
WELCOME_SMS = "welcome_sms"
PLANS = ("free", "pro", "team")
# The SMS greets by first name cut to this length, so a GSM-7 welcome stays one SMS.
SMS_NAME_LENGTH = 20


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str
    language: str = i18n.SOURCE_LANGUAGE


@dataclass(frozen=True)
class RenderedSms:
    body: str
    segments: Segments


def _fields(data: Mapping[str, str]) -> tuple[str, str, dict[str, str]]:
    """The plan, the language and the user's fields of the template data."""
    try:
        full_name, plan_key = str(data["full_name"]).strip(), str(data["plan"])
    except KeyError as exc:
        raise TemplateError(f"template data lacks {exc.args[0]!r}") from exc
    words = full_name.split()
    fields = {"full_name": full_name, "first_name": words[0] if words else "there"}
    return plan_key, i18n.language(data.get("locale")), fields


def welcome_email(data: Mapping[str, str]) -> RenderedEmail:
    plan_key, language, fields = _fields(data)
    subject = text_skeleton("welcome_email.subject.txt", plan_key, language).fill(fields)
    return RenderedEmail(
        subject=" ".join(subject.split()),
        text=text_skeleton("welcome_email.txt", plan_key, language).fill(fields),
        html=html_skeleton("welcome_email.html", plan_key, language).fill(fields),
        language=language,
    )


def welcome_sms(data: Mapping[str, str]) -> RenderedSms:
    plan_key, language, fields = _fields(data)
    fields["first_name"] = fields["first_name"][:SMS_NAME_LENGTH]
    body = " ".join(text_skeleton("welcome_sms.txt", plan_key, language).fill(fields).split())
    return RenderedSms(body, segments(body))


EMAIL_TEMPLATES: dict[str, Callable[[Mapping[str, str]], RenderedEmail]] = {
    WELCOME_EMAIL: welcome_email,
}
SMS_TEMPLATES: dict[str, Callable[[Mapping[str, str]], RenderedSms]] = {WELCOME_SMS: welcome_sms}


def render_email(template: str, data: Mapping[str, str]) -> RenderedEmail:
    if template not in EMAIL_TEMPLATES:
        raise TemplateError(f"unknown email template {template!r}")
    return EMAIL_TEMPLATES[template](data)


def render_sms(template: str, data: Mapping[str, str]) -> RenderedSms:
    if template not in SMS_TEMPLATES:
        raise TemplateError(f"unknown SMS template {template!r}")
    return SMS_TEMPLATES[template](data)


def warm_up() -> None:
    """Compile every template and build every plan's skeletons in every language now, not on a
    first send."""
    for plan_key in PLANS:
        plan(plan_key)
        for language in i18n.languages():
            for name in ("welcome_email.subject.txt", "welcome_email.txt", "welcome_sms.txt"):
                text_skeleton(name, plan_key, language)
            html_skeleton("welcome_email.html", plan_key, language)
