"""HTTP adapter and lifecycle of the SMS gateway sink."""

import json
import logging
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit

from .sms_app import Response, SmsApp
from .sms_store import SmsStore

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8025
DEFAULT_DIR = Path("var/sms")
MAX_BODY_BYTES = 1024 * 1024
MESSAGES_PATH = "/messages"
HEALTH_PATH = "/healthz"
FAULTS_PATH = "/_control/faults"
SHUTDOWN_POLL_SECONDS = 0.05

_ALLOWED_METHODS = {
    MESSAGES_PATH: "POST",
    HEALTH_PATH: "GET",
    FAULTS_PATH: "GET, POST, DELETE",
}

log = logging.getLogger("devsinks.sms")


class SmsHttpServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: SmsApp) -> None:
        self.app = app
        super().__init__(address, SmsRequestHandler)

    def handle_error(self, request: object, client_address: object) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, (ConnectionError, TimeoutError)):
            log.debug("client %s went away: %r", client_address, error)
        else:
            log.exception("error while handling a request from %s", client_address)


class SmsRequestHandler(BaseHTTPRequestHandler):
    server: SmsHttpServer
    timeout = 5
    server_version = "devsinks-sms"
    sys_version = ""

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s - %s", self.address_string(), format % args)

    def _path(self) -> str:
        return urlsplit(self.path).path

    def _send(self, response: Response) -> None:
        body = json.dumps(response.payload).encode("ascii")
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _read_body(self) -> bytes | Response:
        length_header = self.headers.get("Content-Length", "0")
        try:
            length = int(length_header)
        except ValueError:
            return Response(HTTPStatus.BAD_REQUEST, {"error": "invalid Content-Length"})
        if length < 0:
            return Response(HTTPStatus.BAD_REQUEST, {"error": "invalid Content-Length"})
        if length > MAX_BODY_BYTES:
            return Response(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"})
        return self.rfile.read(length)

    def _unrouted(self, path: str) -> Response:
        allowed = _ALLOWED_METHODS.get(path)
        if allowed is None:
            return Response(HTTPStatus.NOT_FOUND, {"error": "not_found"})
        return Response(
            HTTPStatus.METHOD_NOT_ALLOWED, {"error": "method_not_allowed"}, {"Allow": allowed}
        )

    def do_GET(self) -> None:
        path = self._path()
        app = self.server.app
        if path == HEALTH_PATH:
            self._send(Response(HTTPStatus.OK, {"status": "ok"}))
        elif path == FAULTS_PATH:
            self._send(app.get_faults())
        else:
            self._send(self._unrouted(path))

    def do_POST(self) -> None:
        path = self._path()
        if path not in (MESSAGES_PATH, FAULTS_PATH):
            self._send(self._unrouted(path))
            return
        raw = self._read_body()
        if isinstance(raw, Response):
            self.close_connection = True
            self._send(raw)
            return
        app = self.server.app
        if path == MESSAGES_PATH:
            self._send(
                app.post_message(
                    raw, self.headers.get("Idempotency-Key"), self.headers.get("Authorization")
                )
            )
        else:
            self._send(app.set_faults(raw))

    def do_DELETE(self) -> None:
        path = self._path()
        if path == FAULTS_PATH:
            self._send(self.server.app.clear_faults())
        else:
            self._send(self._unrouted(path))

    def do_PUT(self) -> None:
        self._send(self._unrouted(self._path()))

    def do_PATCH(self) -> None:
        self._send(self._unrouted(self._path()))


class SmsSink:
    """An SMS gateway sink served from a background thread; use `start()`/`stop()` or `with`."""

    def __init__(
        self,
        directory: Path = DEFAULT_DIR,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        token: str | None = None,
    ) -> None:
        self.directory = directory
        self._address = (host, port)
        self._token = token
        self._server: SmsHttpServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def app(self) -> SmsApp:
        if self._server is None:
            raise RuntimeError("SMS sink is not running")
        return self._server.app

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("SMS sink is not running")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self._address[0]}:{self.port}"

    def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("SMS sink is already running")
        store = SmsStore(self.directory)
        try:
            server = SmsHttpServer(self._address, SmsApp(store, self._token))
        except BaseException:
            store.close()
            raise
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_SECONDS},
            name="devsinks-sms",
            daemon=True,
        )
        self._thread.start()
        log.info("sms sink listening on %s, storing in %s", self.url, store.path)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        thread.join()
        server.server_close()
        server.app.store.close()
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
