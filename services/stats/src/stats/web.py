"""stats-web: the stats HTTP API (GET /stats).

The only stats process that loads the web framework. Liveness is GET /healthz (the process
answers), readiness GET /readyz (started and the database reachable; the broker is not a
condition: this process never talks to it). Settings come from the environment; it logs the
addresses it listens on once bound.
"""

import sys

from fastapi import FastAPI

from signup_shared import cli, webserver
from signup_shared.process import database_ready
from stats import api, bootstrap
from stats.settings import StatsSettings

PROG = "stats-web"
HELP_SETTINGS = ("http_host", "web_port", "database_url", "log_level")


def app(settings: StatsSettings) -> FastAPI:
    engine, sessions = bootstrap.database(settings)
    return api.create_app(sessions, {"database": database_ready(engine)})


def serve(settings: StatsSettings, host: str, port: int) -> None:
    webserver.serve(app(settings), host, port, PROG)


def main(argv: list[str] | None = None) -> None:
    cli.serve_web(PROG, __doc__, StatsSettings, serve, argv, HELP_SETTINGS)


if __name__ == "__main__":
    # run as `stats web` (argv is then ["stats", "web", ...]) or as `python -m stats.web`
    main(sys.argv[2:] if sys.argv[1:2] == ["web"] else sys.argv[1:])
