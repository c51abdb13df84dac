"""The welcome email's build cost (issue 17): CPU per message to render it and write its bytes.

What notifications does per email before SMTP: ``templates.welcome_email`` (the cached plan and
language skeletons filled with the user's escaped fields) and ``email_message.envelope`` (the
``multipart/alternative`` message as bytes). Each message has its own name (every tenth with
non-ASCII letters, so both header paths run), plan and language (English and German in turn).
The skeletons are built first (as the service's warm-up does at start). CPU time of this
process (``time.process_time``): best of ``runs``.
"""

import time
import uuid
from dataclasses import dataclass

from notifications import templates
from notifications.adapters.email_message import Email, envelope

MAIL_FROM = "Signup Platform <welcome@signup.local>"
LANGUAGES = ("en", "de")


@dataclass(frozen=True)
class WelcomeFigures:
    messages: int
    runs_ms: list[float]  # CPU ms per message, each run

    @property
    def best_ms(self) -> float:
        return min(self.runs_ms)


def build(index: int) -> bytes:
    name = f"Jürgen Groß {index}" if index % 10 == 0 else f"Ada Lovelace {index}"
    plan = templates.PLANS[index % len(templates.PLANS)]
    locale = LANGUAGES[index % len(LANGUAGES)]
    content = templates.welcome_email({"full_name": name, "plan": plan, "locale": locale})
    email = Email(
        uuid.uuid4(),
        f"user{index}@example.com",
        content.subject,
        content.text,
        content.html,
        content.language,
    )
    return envelope(email, MAIL_FROM).content


def run(count: int = 5_000, runs: int = 3) -> WelcomeFigures:
    templates.warm_up()
    results = []
    for _ in range(runs):
        started = time.process_time()
        for index in range(count):
            build(index)
        results.append((time.process_time() - started) * 1000 / count)
    return WelcomeFigures(count, [round(r, 4) for r in results])


if __name__ == "__main__":
    figures = run()
    print(f"welcome email built: {figures.best_ms:.3f} ms CPU per message (runs {figures.runs_ms})")
