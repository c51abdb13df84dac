from stats import web
from stats.settings import StatsSettings


def test_web_app_serves_the_stats_routes_with_database_and_broker_checks() -> None:
    app = web.app(StatsSettings(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none"))

    paths = {route.path for route in app.routes}  # type: ignore[attr-defined]
    assert {"/stats", "/healthz", "/readyz", "/docs"} <= paths
