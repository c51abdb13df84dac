"""Runs an ASGI app under uvicorn and says where it listens once bound.

Imported only by the services' web entry points (``accounts.web``, ``stats.web``): consumer and
relay processes never load it (import-linter keeps uvicorn out of every other shared module).
"""

import contextlib
import socket
from typing import Any

import structlog
import uvicorn

log = structlog.get_logger(__name__)


class AnnouncingServer(uvicorn.Server):
    """Logs the addresses it listens on once they are bound (uvicorn's own line is filtered
    out with its other INFO lines)."""

    def __init__(self, config: uvicorn.Config, prog: str) -> None:
        super().__init__(config)
        self.prog = prog

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        bound = [sock.getsockname() for server in self.servers for sock in server.sockets]
        urls = [f"http://{address[0]}:{address[1]}" for address in bound]
        log.info("http.listening", process=self.prog, urls=urls, docs=[f"{u}/docs" for u in urls])


def serve(app: Any, host: str, port: int, prog: str) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, with our logging (uvicorn's access log off)."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        log_config=None,  # keep configure_logging's masking handler for uvicorn's own lines
    )
    # uvicorn re-raises the SIGINT it stopped on (as uvicorn.run does)
    with contextlib.suppress(KeyboardInterrupt):
        AnnouncingServer(config, prog).run()
