"""notifications command line: ``notifications consume|sweep|migrate|topology|preview``.

``notifications preview --plan pro [--locale de] [--out FILE]`` writes the welcome email as it
would be sent (an .eml a mail client opens) and its HTML part beside it (FILE with .html), for
a person to look at; it needs no database, broker or mail server.
"""

import argparse
import sys
import uuid
from pathlib import Path

import structlog

from notifications import bootstrap, templates
from notifications.actions import Outcome
from notifications.adapters.email_message import Email, envelope
from notifications.settings import NotificationsSettings
from notifications.templates import i18n
from signup_shared import cli
from signup_shared.worker import run_worker

MIGRATIONS = Path(__file__).parent / "migrations"
log = structlog.get_logger("notifications")


def consume(settings: NotificationsSettings) -> None:
    """Consume ``UserSignedUp`` and, beside it, sweep stale notifications and prune the inbox."""
    run_worker(bootstrap.consumer_worker(settings))


def sweep(settings: NotificationsSettings) -> None:
    parts = bootstrap.deliverers(settings)
    try:
        results = parts.sweep()
    finally:
        parts.close()
        parts.engine.dispose()
    log.info(
        "sweep.done",
        stale=len(results),
        sent=sum(result.outcome is Outcome.SENT for result in results),
    )


def migrate(settings: NotificationsSettings) -> None:
    cli.migrate(settings.database_url, MIGRATIONS)


def declare(settings: NotificationsSettings) -> None:
    cli.declare_topology(settings.amqp_url, bootstrap.queues(settings))


COMMANDS = {"consume": consume, "sweep": sweep, "migrate": migrate, "topology": declare}


def preview(argv: list[str]) -> Path:
    """Write the rendered welcome of a plan to an .eml file and its HTML part to an .html one."""
    parser = argparse.ArgumentParser(prog="notifications preview", description=preview.__doc__)
    parser.add_argument("--plan", required=True, choices=templates.PLANS)
    parser.add_argument(
        "--locale", default="en", help=f"a language tag; translated: {', '.join(i18n.languages())}"
    )
    parser.add_argument("--name", default="Ada Lovelace", help="the user's full name")
    parser.add_argument("--to", default="ada@example.com", help="the recipient address")
    parser.add_argument(
        "--out", type=Path, help="default: var/preview/welcome_<plan>_<language>.eml"
    )
    args = parser.parse_args(argv)
    language = i18n.language(args.locale)
    if language != i18n.primary_subtag(args.locale):
        print(f"no catalog for {args.locale!r}: the welcome is in {language}", file=sys.stderr)
    out: Path = args.out or Path("var/preview") / f"welcome_{args.plan}_{language}.eml"
    content = templates.welcome_email(
        {"full_name": args.name, "plan": args.plan, "locale": args.locale}
    )
    email = Email(
        uuid.uuid4(), args.to, content.subject, content.text, content.html, content.language
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(envelope(email, NotificationsSettings().mail_from).content)
    out.with_suffix(".html").write_text(content.html, encoding="utf-8")
    print(f"wrote {out} and {out.with_suffix('.html')}")
    return out


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["preview"]:
        preview(args[1:])
        return
    cli.run("notifications", __doc__, NotificationsSettings, COMMANDS, argv)


if __name__ == "__main__":
    main()
