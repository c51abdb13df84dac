"""Running a service process: stop on SIGTERM/SIGINT, and a tiny stdlib health endpoint."""

import json
import select
import signal
import threading
import urllib.parse
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType

import structlog
from sqlalchemy import Engine, text

from signup_shared import metrics
from signup_shared.wakeup import Wakeup

log = structlog.get_logger(__name__)

Check = Callable[[], bool]


def stop_on_signals() -> threading.Event:
    """An event set by the first SIGTERM or SIGINT (a second SIGINT still interrupts)."""
    stop = threading.Event()

    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("process.stopping", signal=signal.Signals(signum).name)
        stop.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
    return stop


def database_ready(engine: Engine) -> Check:
    def check() -> bool:
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    return check


def readiness(checks: Mapping[str, Check]) -> tuple[bool, dict[str, str]]:
    """Every check's verdict; a check that raises counts as unavailable."""
    results = {name: "ok" if _passes(check) else "unavailable" for name, check in checks.items()}
    return all(value == "ok" for value in results.values()), results


def _passes(check: Check) -> bool:
    try:
        return bool(check())
    except Exception:
        log.debug("readiness.check_failed", exc_info=True)
        return False


class HealthServer:
    """``GET /healthz`` (the process answers), ``GET /readyz`` (every check passes, else 503)
    and ``GET /metrics`` (the process's Prometheus metrics).

    ``HEAD`` answers the same status and headers without the body (load balancers and uptime
    checks use it); a query string is ignored (``/metrics?x`` is ``/metrics``). Other methods
    get 405 with an ``Allow`` header.
    """

    def __init__(self, host: str, port: int, checks: Mapping[str, Check]) -> None:
        self.checks = dict(checks)
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._wakeup = Wakeup()
        self._stopping = False
        self._thread = threading.Thread(target=self._serve, name="health", daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        checks = self.checks

        class Handler(BaseHTTPRequestHandler):
            with_body = True

            def do_GET(self) -> None:
                path = urllib.parse.urlsplit(self.path).path
                if path == "/healthz":
                    self._reply(200, {"status": "ok"})
                elif path == "/readyz":
                    ok, results = readiness(checks)
                    self._reply(
                        200 if ok else 503,
                        {"status": "ok" if ok else "unavailable", "checks": results},
                    )
                elif path == "/metrics":
                    body, content_type = metrics.exposition()
                    self._send(200, body, content_type)
                else:
                    self._reply(404, {"detail": "not found"})

            def do_HEAD(self) -> None:
                self.with_body = False
                self.do_GET()

            def _not_allowed(self) -> None:
                self._reply(405, {"detail": "method not allowed"}, allow="GET, HEAD")

            do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

            def _reply(self, status: int, body: dict[str, object], allow: str = "") -> None:
                self._send(status, json.dumps(body).encode(), "application/json", allow)

            def _send(
                self, status: int, payload: bytes, content_type: str, allow: str = ""
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                if allow:
                    self.send_header("Allow", allow)
                self.end_headers()
                if self.with_body:
                    self.wfile.write(payload)

            def log_message(self, format: str, *args: object) -> None:
                return

        return Handler

    def _serve(self) -> None:
        listening = self._server.fileno()
        while not self._stopping:
            readable, _, _ = select.select([listening, self._wakeup.fileno()], [], [])
            if listening in readable and not self._stopping:
                self._server.handle_request()  # readable: accepts at once, served on a thread

    def start(self) -> "HealthServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        self._wakeup.wake()
        if self._thread.ident is not None:
            self._thread.join(timeout=5)
        self._server.server_close()
        self._wakeup.close()
