"""The keys side of the history benchmark: a real accounts-web answering ``POST /keys/lookup``.

``keys_service(count)`` makes a scratch accounts database (accounts' migrations), writes
``count`` users each with a fresh 32-byte data key (as a signup does, in ``user_keys``), issues a
``keys:read`` API key, starts the ``accounts-web`` process on a free port against that database
and yields ``KeysService``: the users and their keys (to seal their events), the URL, the API key
and the process id (to read its CPU). Everything is removed afterwards (process, database).
A catch-up reading the sealed history then pays what it pays in production: one HTTP request
per batch, an API key check and a primary-key read of the batch's keys in accounts.
"""

import contextlib
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import insert
from sqlalchemy.orm import Session

import accounts
from accounts import keys as api_keys
from accounts.models import User, UserKey
from signup_contracts.sealed import new_key
from signup_shared.testing import amqp_url, migrated_database

MIGRATIONS = Path(accounts.__file__).parent / "migrations"
BIN = Path(__file__).resolve().parents[2] / ".venv" / "bin"
CHUNK = 5_000


@dataclass
class KeysService:
    url: str
    api_key: str
    pid: int
    keys: dict[uuid.UUID, bytes]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def add_users(session: Session, count: int) -> dict[uuid.UUID, bytes]:
    keys = {uuid.uuid4(): new_key() for _ in range(count)}
    now = datetime.now(UTC)
    users = list(keys.items())
    for start in range(0, count, CHUNK):
        chunk = users[start : start + CHUNK]
        session.execute(
            insert(User),
            [
                {"id": user, "email": f"{user.hex}@bench.example", "created_at": now}
                for user, _ in chunk
            ],
        )
        session.execute(
            insert(UserKey),
            [{"user_id": user, "key": key, "created_at": now} for user, key in chunk],
        )
    return keys


@contextlib.contextmanager
def keys_service(count: int, log: Path | None = None) -> Iterator[KeysService]:
    with migrated_database("histbench_accounts", MIGRATIONS) as engine:
        with Session(engine) as session:
            keys = add_users(session, count)
            issued = api_keys.create_key(session, "history-bench", ["keys:read"], None)
            session.commit()
        port = free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ACCOUNTS_")},
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "ACCOUNTS_DATABASE_URL": engine.url.render_as_string(hide_password=False),
            "ACCOUNTS_AMQP_URL": amqp_url(),
            "ACCOUNTS_WEB_PORT": str(port),
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
        }
        sink = log.open("ab") if log else subprocess.DEVNULL
        web = subprocess.Popen(["accounts-web"], env=env, stdout=sink, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                if web.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"accounts-web did not start (exit {web.poll()})")
                time.sleep(0.2)
            yield KeysService(url, issued.token, web.pid, keys)
        finally:
            if log:
                sink.close()  # type: ignore[union-attr]
            web.terminate()
            try:
                web.wait(timeout=30)
            except subprocess.TimeoutExpired:
                web.kill()
                web.wait()
            engine.dispose()
