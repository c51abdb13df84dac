"""accounts-web: the accounts HTTP API (POST /signups; GET and DELETE /users/{user_id}).

The only accounts process that loads the web framework. Liveness is GET /healthz (the process
answers), readiness GET /readyz (started and the database reachable; the broker is not a
condition, see accounts.api). The API is described at /openapi.json and shown at /docs.
Settings come from the environment; it logs the addresses it listens on once bound.
"""

from fastapi import FastAPI

from accounts import api, bootstrap
from accounts.settings import AccountsSettings
from signup_shared import cli, webserver
from signup_shared.process import database_ready

PROG = "accounts-web"
# The settings this process reads, shown by --help with the variables that set them.
HELP_SETTINGS = (
    "http_host",
    "web_port",
    "database_url",
    "max_body_bytes",
    "publish_user_signed_up_versions",
    "erasure_holders",
    "log_level",
)


def app(settings: AccountsSettings) -> FastAPI:
    engine, sessions = bootstrap.database(settings)
    return api.create_app(
        sessions,
        {"database": database_ready(engine)},
        settings.max_body_bytes,
        settings.publish_user_signed_up_versions,
        settings.erasure_holders,
    )


def serve(settings: AccountsSettings, host: str, port: int) -> None:
    webserver.serve(app(settings), host, port, PROG)


def main(argv: list[str] | None = None) -> None:
    cli.serve_web(PROG, __doc__, AccountsSettings, serve, argv, HELP_SETTINGS)


if __name__ == "__main__":
    main()
