import pytest

from notifications import templates
from notifications.templates import TemplateError
from signup_shared.errors import PermanentError

ADA = {"full_name": "Ada Lovelace", "plan": "team"}


def test_welcome_email_greets_the_user_by_name_and_names_the_plan() -> None:
    email = templates.render_email(templates.WELCOME_EMAIL, ADA)
    assert email.subject == "Welcome to Signup Platform, Ada!"
    assert email.text.startswith("Hi Ada Lovelace,\n")
    assert "Your Team plan is ready" in email.text


def test_welcome_sms_is_short_and_personal() -> None:
    body = templates.render_sms(
        templates.WELCOME_SMS, {"full_name": "Grace Hopper", "plan": "free"}
    )
    assert body == "Welcome to Signup Platform, Grace! Your Free plan is ready."
    assert len(body) <= 160


def test_user_text_is_inserted_verbatim_not_interpreted() -> None:
    email = templates.welcome_email({"full_name": "$plan ${product}", "plan": "pro"})
    assert email.text.startswith("Hi $plan ${product},")


def test_an_unknown_plan_is_still_presentable() -> None:
    assert "Your Enterprise plan" in templates.welcome_sms({"full_name": "A", "plan": "enterprise"})


@pytest.mark.parametrize(
    ("render", "name"),
    [(templates.render_email, "invoice_email"), (templates.render_sms, "welcome_email")],
)
def test_unknown_templates_are_permanent_errors(render: object, name: str) -> None:
    with pytest.raises(TemplateError, match="unknown") as raised:
        render(name, ADA)  # type: ignore[operator]
    assert isinstance(raised.value, PermanentError)


def test_missing_data_is_a_permanent_error() -> None:
    with pytest.raises(TemplateError, match="plan"):
        templates.render_email(templates.WELCOME_EMAIL, {"full_name": "Ada"})
