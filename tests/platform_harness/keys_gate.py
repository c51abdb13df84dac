"""A gate in front of accounts' ``POST /keys/lookup``, for holding a reader of the history still.

A consuming service's ``<SERVICE>_KEYS_URL`` points here instead of at accounts-web. Each lookup
is forwarded to accounts (same body, same ``Authorization``) and answered with accounts' answer,
except that once ``pass_first`` lookups went through, the next ones wait until ``open()``:
the reader is then provably in the middle of its reading (it handled what the first lookups
opened and is holding the batch that asked next), and a test can act meanwhile (e.g. erase a
user) and then let it go on. What was asked and which users accounts answered a key for are
recorded per lookup (the keys themselves are passed on, never kept).
"""

import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


@dataclass
class Lookup:
    asked: set[uuid.UUID]
    answered: set[uuid.UUID] = field(default_factory=set)
    """The users accounts answered a key for (an erased user is absent)."""
    held: bool = False
    status: int = 0


class KeysGate:
    def __init__(self, upstream: str = "", pass_first: int = 1, hold_timeout: float = 60.0) -> None:
        self.upstream = upstream.rstrip("/")
        """accounts-web's base URL (may be set after the gate started, before the first lookup)."""
        self.pass_first = pass_first
        self.hold_timeout = hold_timeout
        self.lookups: list[Lookup] = []
        self.waiting = threading.Event()
        """Set when a lookup is being held at the gate."""
        self._open = threading.Event()
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=30)
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer = gate.forward(self.path, body, self.headers.get("Authorization"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "KeysGate":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.open()
        self.server.shutdown()
        self.server.server_close()
        self._client.close()

    def open(self) -> None:
        """Let every held lookup (and all later ones) through."""
        self._open.set()

    def forward(self, path: str, body: bytes, authorization: str | None) -> tuple[int, bytes]:
        try:
            asked = {uuid.UUID(user) for user in json.loads(body)["user_ids"]}
        except (ValueError, KeyError, TypeError):
            asked = set()
        lookup = Lookup(asked)
        with self._lock:
            self.lookups.append(lookup)
            lookup.held = len(self.lookups) > self.pass_first and not self._open.is_set()
        if lookup.held:
            self.waiting.set()
            if not self._open.wait(self.hold_timeout):
                lookup.status = 503
                return 503, b'{"detail": "keys gate: held too long"}'
        headers = {"Content-Type": "application/json"}
        if authorization:
            headers["Authorization"] = authorization
        response = self._client.post(
            self.upstream.rstrip("/") + path, content=body, headers=headers
        )
        lookup.status = response.status_code
        if response.status_code == 200:
            lookup.answered = {uuid.UUID(user) for user in response.json().get("keys", {})}
        return response.status_code, response.content
