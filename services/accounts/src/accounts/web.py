"""accounts-web: the accounts HTTP API (POST /signups, GET /users/{user_id}).

The only accounts process that loads the web framework. Liveness is GET /healthz (the process
answers), readiness GET /readyz (started and the database reachable; the broker is not a
condition, see accounts.api). The API is described at /openapi.json and shown at /docs.
Settings come from the environment; it logs the addresses it listens on once bound.
"""

import argparse
import socket

import structlog
import uvicorn
from fastapi import FastAPI
from pydantic import AliasChoices

from accounts import api, bootstrap
from accounts.settings import AccountsSettings
from signup_shared import lifecycle, tracing
from signup_shared.logging import configure_logging
from signup_shared.process import database_ready

PROG = "accounts-web"
# The settings this process reads, shown by --help with the variables that set them.
HELP_SETTINGS = ("http_host", "web_port", "database_url", "max_body_bytes", "log_level")

log = structlog.get_logger(__name__)


def app(settings: AccountsSettings) -> FastAPI:
    engine, sessions = bootstrap.database(settings)
    return api.create_app(sessions, {"database": database_ready(engine)}, settings.max_body_bytes)


def environment_help() -> str:
    """The environment variables of HELP_SETTINGS with their defaults (URLs are not shown)."""
    prefix = str(AccountsSettings.model_config.get("env_prefix", ""))
    lines = ["environment (defaults in brackets):"]
    for name in HELP_SETTINGS:
        field = AccountsSettings.model_fields[name]
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):  # a renamed setting: its current name comes first
            alias = alias.choices[0]
        variable = alias if isinstance(alias, str) else f"{prefix}{name}".upper()
        default = "" if name.endswith("_url") else f" [{field.default}]"
        lines.append(f"  {variable}{default}")
    return "\n".join(lines)


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__,
        epilog=environment_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser.parse_args(argv)


class AnnouncingServer(uvicorn.Server):
    """Logs the addresses it listens on once they are bound (uvicorn's own line is filtered
    out with its other INFO lines)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        bound = [sock.getsockname() for server in self.servers for sock in server.sockets]
        urls = [f"http://{address[0]}:{address[1]}" for address in bound]
        log.info("http.listening", process=PROG, urls=urls, docs=[f"{url}/docs" for url in urls])


def main(argv: list[str] | None = None) -> None:
    lifecycle.die_with_parent()  # first: this process must not outlive its supervisor
    parse_arguments(argv)  # answers --help (and refuses unknown arguments) before anything starts
    settings = AccountsSettings()
    configure_logging(PROG, settings.log_level, settings.log_format)
    tracing.configure_tracing(PROG)
    config = uvicorn.Config(
        app(settings),
        host=settings.http_host,
        port=settings.web_port,
        log_level="warning",
        access_log=False,
        log_config=None,  # keep configure_logging's masking handler for uvicorn's own lines
    )
    try:
        AnnouncingServer(config).run()
    except KeyboardInterrupt:  # uvicorn re-raises the SIGINT it stopped on (as uvicorn.run does)
        pass
    finally:
        tracing.shutdown()


if __name__ == "__main__":
    main()
