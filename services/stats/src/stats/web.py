"""The stats HTTP process (``stats-web``): the only process that loads the web framework."""

import uvicorn
from fastapi import FastAPI

from signup_shared import lifecycle, tracing
from signup_shared.logging import configure_logging
from signup_shared.messaging.connection import broker_ready
from signup_shared.process import database_ready
from stats import api, bootstrap
from stats.settings import StatsSettings


def app(settings: StatsSettings) -> FastAPI:
    engine, sessions = bootstrap.database(settings)
    checks = {"database": database_ready(engine), "broker": broker_ready(settings.amqp_url)}
    return api.create_app(sessions, checks)


def main() -> None:
    lifecycle.die_with_parent()  # first: this process must not outlive its supervisor
    settings = StatsSettings()
    configure_logging("stats-web", settings.log_level, settings.log_format)
    tracing.configure_tracing("stats-web")
    try:
        uvicorn.run(
            app(settings),
            host=settings.http_host,
            port=settings.web_port,
            log_level="warning",
            access_log=False,
            log_config=None,  # keep configure_logging's masking handler for uvicorn's own lines
        )
    finally:
        tracing.shutdown()


if __name__ == "__main__":
    main()
