"""Lifecycle of the SMTP sink: an aiosmtpd server on its own event loop thread."""

import asyncio
import logging
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

from aiosmtpd.smtp import SMTP

from .smtp_handler import MaildirHandler, accept_any_credentials

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 1025
DEFAULT_MAILDIR = Path("var/mail")
SERVER_HOSTNAME = "devsinks.localhost"
START_TIMEOUT_SECONDS = 10.0

log = logging.getLogger("devsinks.smtp")


class SmtpSink:
    """An SMTP sink served from a background thread; use `start()`/`stop()` or `with`."""

    def __init__(
        self,
        maildir: Path = DEFAULT_MAILDIR,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
    ) -> None:
        self.maildir = maildir
        self.host = host
        self._requested_port = port
        self._handler: MaildirHandler | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("SMTP sink is not running")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def _protocol_factory(self) -> SMTP:
        return SMTP(
            self._handler,
            hostname=SERVER_HOSTNAME,
            enable_SMTPUTF8=True,
            auth_require_tls=False,
            authenticator=accept_any_credentials,
            loop=asyncio.get_running_loop(),
        )

    async def _create_server(self) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(self._protocol_factory, self.host, self._requested_port)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("SMTP sink is already running")
        self._handler = MaildirHandler(self.maildir)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="devsinks-smtp", daemon=True)
        thread.start()
        try:
            future = asyncio.run_coroutine_threadsafe(self._create_server(), loop)
            self._server = future.result(START_TIMEOUT_SECONDS)
        except BaseException:
            _stop_loop(loop, thread)
            raise
        self._loop, self._thread = loop, thread
        log.info("smtp sink listening on %s:%d, storing in %s", self.host, self.port, self.maildir)

    def stop(self) -> None:
        loop, thread, server = self._loop, self._thread, self._server
        if loop is None or thread is None or server is None:
            return
        asyncio.run_coroutine_threadsafe(_close_server(server), loop).result()
        _stop_loop(loop, thread)
        self._loop = self._thread = self._server = None

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


async def _close_server(server: asyncio.Server) -> None:
    server.close()
    current = asyncio.current_task()
    sessions = [task for task in asyncio.all_tasks() if task is not current]
    for task in sessions:
        task.cancel()
    await asyncio.gather(*sessions, return_exceptions=True)
    await server.wait_closed()
    await asyncio.sleep(0)


def _stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()
