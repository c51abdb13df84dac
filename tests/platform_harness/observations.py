"""What a test reads from a running stack (and the few inputs it gives): the web APIs, the sinks'
mail and SMS, the spaces, the queues through the management API, the services' databases."""

from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

from devsinks.reading import read_mail, read_sms
from signup_contracts.amqp import HISTORY_STREAM


class Observations:
    """The part of ``Stack`` that reads its state and calls its APIs."""

    name: str
    root: Path
    ports: dict[str, int]
    _management: Callable[..., Any]
    database_url: Callable[[str], str]

    def url(self, service: str, path: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}{path}"

    def mail(self) -> list[EmailMessage]:
        return read_mail(self.root / "var" / "mail")

    def sms(self) -> list[dict[str, Any]]:
        return read_sms(self.root / "var" / "sms")

    def resent_emails(self) -> int:
        """Re-sends of an already delivered Message-ID that the SMTP sink did not store again."""
        path = self.root / "var" / "mail" / "duplicates.log"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def sms_faults(self, spec: dict[str, Any] | None) -> None:
        """Make the SMS gateway sink fail (``{"status": 500, "count": 50}``); None clears."""
        url = f"http://127.0.0.1:{self.ports['sms']}/_control/faults"
        response = httpx.request("DELETE" if spec is None else "POST", url, json=spec, timeout=5)
        response.raise_for_status()

    def spaces(self) -> list[str]:
        root = self.root / "var" / "spaces"
        return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(self.url("stats", "/stats"), timeout=5).json())

    def queues(self) -> dict[str, int]:
        """Queue -> messages waiting; not the history stream (what it keeps is no backlog)."""
        rows = self._management("GET", f"/api/queues/{self.name}?columns=name,messages")
        return {
            row["name"]: int(row.get("messages") or 0)
            for row in rows
            if row["name"] != HISTORY_STREAM
        }

    def queue_consumers(self, queues: list[str]) -> dict[str, int]:
        rows = self._management("GET", f"/api/queues/{self.name}?columns=name,consumers")
        return {
            row["name"]: int(row.get("consumers") or 0) for row in rows if row["name"] in queues
        }

    def dead_letters(self, queue: str, count: int = 100) -> list[dict[str, Any]]:
        return list(
            self._management(
                "POST",
                f"/api/queues/{self.name}/{queue}/get",
                {"count": count, "ackmode": "ack_requeue_true", "encoding": "auto"},
            )
        )

    def query(self, service: str, sql: str, **params: Any) -> list[Any]:
        engine = sa.create_engine(self.database_url(service), poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                return list(connection.execute(sa.text(sql), params).all())
        finally:
            engine.dispose()

    def execute(self, service: str, sql: str, **params: Any) -> int:
        """Run one statement as the service's role and commit it; the number of rows it hit."""
        engine = sa.create_engine(self.database_url(service), poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as connection:
                return int(connection.execute(sa.text(sql), params).rowcount)
        finally:
            engine.dispose()

    def signup(
        self,
        client: httpx.Client,
        index: int,
        *,
        phone: bool,
        plan: str,
        correlation_id: str | None = None,
        accept_language: str | None = None,
    ) -> dict[str, Any]:
        body = {
            "email": f"user{index}-{self.name}@example.com",
            "full_name": f"User {index}",
            "plan": plan,
        }
        if phone:
            body["phone"] = f"+1555{index:07d}"
        headers = {"X-Correlation-ID": correlation_id} if correlation_id else {}
        if accept_language is not None:
            headers["Accept-Language"] = accept_language
        response = client.post(self.url("accounts", "/signups"), json=body, headers=headers)
        assert response.status_code == 201, response.text
        return {**body, **response.json()}
