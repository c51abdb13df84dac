"""The welcome's words: per-plan content, user text verbatim in text and escaped in HTML, the
SMS's length in parts, and the checks a template file gets when its skeleton is built."""

import html5lib
import jinja2
import pytest

from notifications import templates
from notifications.templates import TemplateError, gsm, rendering
from signup_shared.errors import PermanentError

ADA = {"full_name": "Ada Lovelace", "plan": "team"}
HOSTILE = ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>']


def test_welcome_email_greets_the_user_by_name_and_names_the_plan() -> None:
    email = templates.render_email(templates.WELCOME_EMAIL, ADA)
    assert email.subject == "Welcome to Signup Platform, Ada!"
    assert email.text.startswith("Hi Ada Lovelace,\n")
    assert "Your Team plan is ready" in email.text
    assert "Hi Ada Lovelace," in email.html


@pytest.mark.parametrize(
    ("plan", "included", "next_step"),
    [
        ("free", "Up to 3 projects", "Create your first project"),
        ("pro", "Version history for 90 days", "Import your existing files"),
        ("team", "Shared workspaces with roles and permissions", "Invite your teammates"),
    ],
)
def test_each_plan_says_what_it_includes_and_a_next_step(
    plan: str, included: str, next_step: str
) -> None:
    email = templates.welcome_email({"full_name": "Ada Lovelace", "plan": plan})
    for part in (email.text, email.html):
        assert included in part and next_step in part
    others = {"free", "pro", "team"} - {plan}
    for other in others:
        assert templates.plan(other).next_step not in email.text


def test_user_text_is_inserted_verbatim_in_plain_text_not_interpreted() -> None:
    name = "{{ plan }} $plan \ue000first_name\ue001"
    email = templates.welcome_email({"full_name": name, "plan": "pro"})
    assert email.text.startswith(f"Hi {name},")


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_render_as_text_in_html(name: str) -> None:
    email = templates.welcome_email({"full_name": f"Eve {name}", "plan": "pro"})
    document = html5lib.parse(email.html, namespaceHTMLElements=False)
    assert document.findall(".//script") == [] and document.findall(".//img") == []
    greeting = [p for p in document.iter("p") if (p.text or "").startswith("Hi ")]
    assert [p.text for p in greeting] == [f"Hi Eve {name},"]
    assert name in email.text  # plain text is not markup: the name as written


def test_an_empty_looking_name_still_reads_well() -> None:
    email = templates.welcome_email({"full_name": "   ", "plan": "free"})
    assert email.subject == "Welcome to Signup Platform, there!"


def test_an_unknown_plan_is_still_presentable() -> None:
    sms = templates.welcome_sms({"full_name": "A", "plan": "enterprise"})
    assert "Your Enterprise plan" in sms.body
    assert (
        "Open your workspace"
        in templates.welcome_email({"full_name": "A", "plan": "enterprise"}).html
    )


@pytest.mark.parametrize(("locale", "greeting"), [("en", "Welcome to"), ("de", "Willkommen bei")])
@pytest.mark.parametrize("plan", templates.PLANS)
def test_the_welcome_sms_is_one_gsm7_segment_whatever_the_name_length(
    plan: str, locale: str, greeting: str
) -> None:
    for name in ("Grace Hopper", "Maximilianus" * 20):
        sms = templates.welcome_sms({"full_name": name, "plan": plan, "locale": locale})
        assert sms.segments == gsm.Segments("GSM-7", len(sms.body), 1), sms.body
        assert sms.body.startswith(f"{greeting} Signup Platform, ")


def test_a_name_outside_gsm7_makes_the_sms_ucs2_and_says_how_many_parts() -> None:
    sms = templates.welcome_sms({"full_name": "Zoë 王" * 5, "plan": "team"})
    assert sms.segments.encoding == "UCS-2"
    assert sms.segments.parts == (1 if sms.segments.units <= 70 else 2)
    assert sms.segments.units == len(sms.body)


def test_gsm7_segments_count_extension_characters_twice_and_split_long_texts() -> None:
    assert gsm.segments("a" * 160) == gsm.Segments("GSM-7", 160, 1)
    assert gsm.segments("a" * 161) == gsm.Segments("GSM-7", 161, 2)
    assert gsm.segments("€" * 80) == gsm.Segments("GSM-7", 160, 1)
    assert gsm.segments("a" * 306 + "b") == gsm.Segments("GSM-7", 307, 3)
    assert gsm.segments("é" * 10) == gsm.Segments("GSM-7", 10, 1)
    assert gsm.segments("ë" * 70) == gsm.Segments("UCS-2", 70, 1)
    assert gsm.segments("ë" * 71) == gsm.Segments("UCS-2", 71, 2)
    assert gsm.segments("😀" * 35) == gsm.Segments("UCS-2", 70, 1)  # two code units each


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


def test_warm_up_builds_every_plan_and_the_css_is_inlined_without_style_tags() -> None:
    templates.warm_up()
    skeleton = rendering.html_skeleton("welcome_email.html", "pro")
    page = "".join(skeleton.pieces)
    assert "<style" not in page and "<link" not in page
    assert 'style="' in page and "class=" in page


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ('<a title="{{ full_name }}">x</a>', "only stand in text"),
        ("<style>p { content: '{{ first_name }}' }</style><p>x</p>", "only stand in text"),
        ("<p>{{ nobody }}</p>", "nobody"),
    ],
)
def test_a_template_printing_user_fields_outside_text_is_refused(
    monkeypatch: pytest.MonkeyPatch, source: str, error: str
) -> None:
    broken = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
        source
    )
    monkeypatch.setattr(rendering, "template", lambda _name, _language: broken)
    with pytest.raises(TemplateError, match=error):
        rendering.html_skeleton(f"broken-{hash(source)}.html", "pro")
