"""Looking for erased users' personal data everywhere a stack keeps something.

A ``Person`` is what a user gave at signup (email, full name, phone). ``scan`` looks for each
of them, as a whole word (``User 12`` is not found inside ``User 120``), in

- every row of every table of every service database (``CAST(row AS text)``),
- every message of every classic or quorum queue of the stack's vhost, dead-letter queues
  included: body and headers, read through the management API with ``reject_requeue_true``, so
  each message goes back to its queue,
- every message of every stream (the event history), consumed from its first offset
  (``stream_texts``), as it is (``Scan.stream_findings``) and, given a ``keys:read`` API key,
  once more with every sealed signup (``UserSignedUp`` v3) opened with the keys accounts still
  answers (``Scan.unsealed_findings``, ``Scan.unsealed``: how many were opened): what a reader
  of the history can learn. An erased user's key is gone, so neither finds them; a control
  finds a user not erased in the unsealed history (docs/erasure.md),
- every file under the stack's ``var/`` (process logs, supervisord's, the spaces) but the
  development sinks' stores and logs, which stand for the outside world (a message delivered
  before the erasure is in the user's inbox, not in the platform).

Each hit is a ``Finding`` naming where it was, whose data and which field.
"""

import base64
import contextlib
import json
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import amqp
import httpx

from platform_harness.stack import SERVICES, Stack
from signup_contracts import UserSignedUpV3, parse_envelope, unseal_envelope

FIELDS = ("email", "full_name", "phone")
# The development sinks: their stores are the users' inboxes and phones, their logs the
# provider's; neither is the platform's to erase.
OUTSIDE_WORLD = ("mail", "sms", "smtp-sink.log", "sms-sink.log")


def api_key(stack: Stack, scope: str, client: str = "e2e") -> str:
    """A new key of the internal users API (``accounts keys create``; the key is its 2nd line)."""
    out = stack.command(
        "accounts-web", "accounts", "keys", "create", "--client", client, "--scope", scope
    )
    return out.splitlines()[1]


@dataclass(frozen=True)
class Person:
    email: str
    full_name: str
    phone: str | None = None

    @classmethod
    def of(cls, body: dict[str, Any]) -> "Person":
        return cls(body["email"], body["full_name"], body.get("phone"))

    def values(self) -> list[tuple[str, str]]:
        """Each field the person gave, and its value."""
        return [(f, getattr(self, f)) for f in FIELDS if getattr(self, f)]


def whole_word(text: str, value: str) -> bool:
    """``value`` occurs in ``text`` neither inside a longer word, number or address (``User 12``
    is not in ``User 120``, ``a@x.com`` not in ``ba@x.com``): found with ``str.find``, the
    boundaries checked by hand. (A pattern opening with a look-behind was tried at every
    position of the text: minutes for a scan of 200 people.)"""
    start = text.find(value)
    while start != -1:
        end = start + len(value)
        before = text[start - 1] if start else " "
        after = text[end] if end < len(text) else " "
        if not _word(before, ".+-") and not _word(after, ""):
            return True
        start = text.find(value, start + 1)
    return False


def _word(char: str, also: str) -> bool:
    return char.isalnum() or char == "_" or char in also


@dataclass(frozen=True)
class Finding:
    where: str
    person: Person
    field: str

    def __str__(self) -> str:
        return f"{self.where}: {self.field} of {self.person.email}"


@dataclass
class Scan:
    findings: list[Finding] = field(default_factory=list)
    tables: int = 0
    rows: int = 0
    queues: int = 0
    messages: int = 0
    files: int = 0
    bytes: int = 0
    streams: dict[str, int] = field(default_factory=dict)  # stream -> messages read
    stream_findings: list[Finding] = field(default_factory=list)
    sealed: int = 0  # sealed signups read from the streams
    unsealed: int = 0  # of them, opened with a key accounts still has
    unsealed_findings: list[Finding] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"scan: tables={self.tables} rows={self.rows} queues={self.queues} "
            f"messages={self.messages} files={self.files} bytes={self.bytes} "
            f"found={len(self.findings)} streams={self.streams} "
            f"found_in_streams={len(self.stream_findings)} "
            f"erased_in_streams={len({f.person for f in self.stream_findings})} "
            f"sealed={self.sealed} unsealed={self.unsealed} "
            f"found_unsealed={len(self.unsealed_findings)}"
        )


def search(text: str, where: str, people: Iterable[Person]) -> list[Finding]:
    """Every field of every person found in ``text``, as a whole word."""
    return [
        Finding(where, person, name)
        for person in people
        for name, value in person.values()
        if whole_word(text, value)
    ]


def table_texts(stack: Stack, service: str) -> dict[str, list[str]]:
    """Table -> the text of each of its rows, for every table of the service's database."""
    tables = stack.query(service, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {
        str(table): [
            str(row[0])
            for row in stack.query(service, f'SELECT CAST(t AS text) FROM "{table}" t')  # noqa: S608 (names from pg_tables)
        ]
        for (table,) in tables
    }


def scan_databases(stack: Stack, people: list[Person], into: Scan) -> None:
    for service in SERVICES:
        for table, rows in table_texts(stack, service).items():
            into.tables += 1
            into.rows += len(rows)
            into.findings += search("\n".join(rows), f"database {service}.{table}", people)


def queue_messages(stack: Stack, queue: str, count: int) -> list[dict[str, Any]]:
    """Up to ``count`` messages of ``queue``, each rejected back to it (none is consumed)."""
    vhost = stack.name
    return list(
        stack._management(
            "POST",
            f"/api/queues/{vhost}/{queue}/get",
            {"count": count, "ackmode": "reject_requeue_true", "encoding": "auto"},
        )
    )


def scan_queues(
    stack: Stack, people: list[Person], into: Scan, keys_token: str | None = None
) -> None:
    rows = stack._management("GET", f"/api/queues/{stack.name}?columns=name,messages,type")
    for row in rows:
        if row.get("type") == "stream":
            messages = stream_texts(stack, row["name"])
            texts = [headers + body for headers, body in messages]
            into.streams[row["name"]] = len(texts)
            into.stream_findings += search("\n".join(texts), f"stream {row['name']}", people)
            if keys_token is not None:
                opened = unsealed_texts(stack, [body for _, body in messages], keys_token, into)
                where = f"stream {row['name']} (unsealed)"
                into.unsealed_findings += search("\n".join(opened), where, people)
            continue
        into.queues += 1
        depth = int(row.get("messages") or 0)
        if not depth:
            continue
        for message in queue_messages(stack, row["name"], depth):
            into.messages += 1
            text = json.dumps(message.get("properties", {}), default=str) + str(
                message.get("payload", "")
            )
            into.findings += search(text, f"queue {row['name']}", people)


def unsealed_texts(stack: Stack, bodies: list[str], token: str, into: Scan) -> list[str]:
    """The JSON of each sealed signup among ``bodies`` that opens with a key accounts answers
    (``POST /keys/lookup`` with ``token``, a keys:read API key), as a reader would see it."""
    sealed = []
    for body in bodies:
        with contextlib.suppress(ValueError):
            envelope = parse_envelope(body)
            if isinstance(envelope.data, UserSignedUpV3):
                sealed.append(envelope)
    into.sealed += len(sealed)
    users = sorted({str(e.data.user_id) for e in sealed})
    keys: dict[str, bytes] = {}
    with httpx.Client(timeout=10, headers={"Authorization": f"Bearer {token}"}) as client:
        for start in range(0, len(users), 300):
            answer = client.post(
                stack.url("accounts", "/keys/lookup"), json={"user_ids": users[start : start + 300]}
            )
            answer.raise_for_status()
            for user, text in answer.json()["keys"].items():
                keys[user] = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    opened = []
    for envelope in sealed:
        key = keys.get(str(envelope.data.user_id))
        if key is not None:
            opened.append(unseal_envelope(envelope, key).model_dump_json())
    into.unsealed += len(opened)
    return opened


def stream_texts(stack: Stack, stream: str, idle: float = 2.0) -> list[tuple[str, str]]:
    """Headers (JSON) and body of every message of ``stream``, from its first offset until
    nothing more arrives for ``idle`` seconds (a stream never ends)."""
    url = urllib.parse.urlsplit(stack.amqp_url)
    connection = amqp.Connection(
        host=f"{url.hostname}:{url.port or 5672}",
        userid=url.username,
        password=url.password,
        virtual_host=urllib.parse.unquote(url.path[1:]),
    )
    connection.connect()
    texts: list[tuple[str, str]] = []
    try:
        channel = connection.channel()
        channel.basic_qos(0, 500, False)  # a stream refuses a consumer without a prefetch

        def keep(message: amqp.Message) -> None:
            body = message.body
            text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
            texts.append((json.dumps(message.headers, default=str), text))
            channel.basic_ack(message.delivery_tag)

        channel.basic_consume(stream, callback=keep, arguments={"x-stream-offset": "first"})
        last = time.monotonic()
        while time.monotonic() - last < idle:
            seen = len(texts)
            with contextlib.suppress(TimeoutError):
                connection.drain_events(timeout=0.2)
            if len(texts) > seen:
                last = time.monotonic()
    finally:
        connection.close()
    return texts


def scan_files(stack: Stack, people: list[Person], into: Scan) -> None:
    root = stack.root / "var"
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root)
        if relative.parts[0] in OUTSIDE_WORLD or relative.name in OUTSIDE_WORLD:
            continue
        text = Path(path).read_text(errors="replace")
        into.files += 1
        into.bytes += len(text)
        into.findings += search(text, f"file var/{relative}", people)


def scan(stack: Stack, people: list[Person], keys_token: str | None = None) -> Scan:
    """Every database, queue and file of the stack, searched for every person's data (and the
    history unsealed with the keys accounts still has, given a keys:read API key)."""
    found = Scan()
    scan_databases(stack, people, found)
    scan_queues(stack, people, found, keys_token)
    scan_files(stack, people, found)
    return found
