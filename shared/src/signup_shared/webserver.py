"""Runs an ASGI app under uvicorn and says where it listens once bound.

Imported only by the services' web entry points (``accounts.web``, ``stats.web``): consumer and
relay processes never load it (import-linter keeps uvicorn out of every other shared module).

The event loop and the HTTP parser are uvloop and httptools where installed (accounts-web
depends on both: at 20 signups/s they cut its CPU per request against asyncio's loop and h11,
see docs/benchmarks.md), else asyncio and h11; the listening line says which.
"""

import asyncio
import contextlib
import importlib.util
import socket
from types import FrameType
from typing import Any

import structlog
import uvicorn

log = structlog.get_logger(__name__)

TICK_SECONDS = 1.0
TICKS_PER_HEADER_UPDATE = 10  # uvicorn's ``on_tick`` refreshes the Date header every 10th tick


class AnnouncingServer(uvicorn.Server):
    """Logs the addresses it listens on once they are bound (uvicorn's own line is filtered
    out with its other INFO lines), and ticks once a second instead of ten times.

    uvicorn's main loop sleeps 0.1 s between ticks, only to refresh the Date header (once a
    second) and to notice a stop signal: ten wake-ups a second in an idle web process. Here
    the loop ticks every ``TICK_SECONDS`` and a stop signal wakes it at once.
    """

    def __init__(self, config: uvicorn.Config, prog: str) -> None:
        super().__init__(config)
        self.prog = prog
        self._loop: asyncio.AbstractEventLoop | None = None
        self._exiting: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._exiting = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + TICKS_PER_HEADER_UPDATE) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exiting.wait(), TICK_SECONDS)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """The signal handler (in the loop's thread, between two callbacks): wake the loop."""
        super().handle_exit(sig, frame)
        if self._loop is not None and self._exiting is not None:
            self._loop.call_soon_threadsafe(self._exiting.set)

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        bound = [sock.getsockname() for server in self.servers for sock in server.sockets]
        urls = [f"http://{address[0]}:{address[1]}" for address in bound]
        loop, http = implementations()
        log.info(
            "http.listening",
            process=self.prog,
            urls=urls,
            docs=[f"{u}/docs" for u in urls],
            loop=loop,
            http=http,
        )


def implementations() -> tuple[str, str]:
    """The event loop and HTTP parser uvicorn runs on here: the fast ones when installed."""
    installed = importlib.util.find_spec
    return (
        "uvloop" if installed("uvloop") else "asyncio",
        "httptools" if installed("httptools") else "h11",
    )


def serve(app: Any, host: str, port: int, prog: str) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, with our logging (uvicorn's access log off)."""
    loop, http = implementations()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop=loop,
        http=http,
        log_level="warning",
        access_log=False,
        log_config=None,  # keep configure_logging's masking handler for uvicorn's own lines
    )
    # uvicorn re-raises the SIGINT it stopped on (as uvicorn.run does)
    with contextlib.suppress(KeyboardInterrupt):
        AnnouncingServer(config, prog).run()
