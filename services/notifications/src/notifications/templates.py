"""What the welcome messages say. Presentation only: which message to send is the actions' call."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from string import Template

from signup_shared.errors import PermanentError

WELCOME_EMAIL = "welcome_email"
WELCOME_SMS = "welcome_sms"
PRODUCT = "Signup Platform"

PLAN_LABELS = {"free": "Free", "pro": "Pro", "team": "Team"}

_WELCOME_SUBJECT = Template("Welcome to $product, $first_name!")
_WELCOME_TEXT = Template(
    """Hi $full_name,

thank you for signing up for $product.
Your $plan plan is ready, and we are setting up your space right now.

If you did not sign up, you can ignore this email.

The $product team
"""
)
_WELCOME_SMS = Template("Welcome to $product, $first_name! Your $plan plan is ready.")


class TemplateError(PermanentError):
    """The template is unknown or its data is incomplete: no retry will render it."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str


def _fields(data: Mapping[str, str]) -> dict[str, str]:
    try:
        full_name, plan = data["full_name"].strip(), data["plan"]
    except KeyError as exc:
        raise TemplateError(f"template data lacks {exc.args[0]!r}") from exc
    return {
        "product": PRODUCT,
        "full_name": full_name,
        "first_name": full_name.split()[0] if full_name else full_name,
        "plan": PLAN_LABELS.get(plan, plan.title()),
    }


def welcome_email(data: Mapping[str, str]) -> RenderedEmail:
    fields = _fields(data)
    return RenderedEmail(_WELCOME_SUBJECT.substitute(fields), _WELCOME_TEXT.substitute(fields))


def welcome_sms(data: Mapping[str, str]) -> str:
    return _WELCOME_SMS.substitute(_fields(data))


EMAIL_TEMPLATES: dict[str, Callable[[Mapping[str, str]], RenderedEmail]] = {
    WELCOME_EMAIL: welcome_email,
}
SMS_TEMPLATES: dict[str, Callable[[Mapping[str, str]], str]] = {WELCOME_SMS: welcome_sms}


def render_email(template: str, data: Mapping[str, str]) -> RenderedEmail:
    if template not in EMAIL_TEMPLATES:
        raise TemplateError(f"unknown email template {template!r}")
    return EMAIL_TEMPLATES[template](data)


def render_sms(template: str, data: Mapping[str, str]) -> str:
    if template not in SMS_TEMPLATES:
        raise TemplateError(f"unknown SMS template {template!r}")
    return SMS_TEMPLATES[template](data)
