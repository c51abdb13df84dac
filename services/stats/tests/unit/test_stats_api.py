import contextlib
import re
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from stats import actions, api

STATS = actions.Stats(
    total_users=3,
    signups_per_plan={"free": 1, "pro": 2, "team": 0},
    signups_per_day={"2024-05-01": 1, "2024-05-02": 2},
    activated_subscriptions=2,
)


class ReadSession:
    """All the view does with its session itself: end the transaction (the action is faked)."""

    def __init__(self) -> None:
        self.commits = self.rollbacks = 0

    def commit(self) -> None:
        self.commits += 1

    def rollback(self) -> None:
        self.rollbacks += 1


class Backend:
    """What the app under test talks to; each test sets its own session and check results."""

    def __init__(self) -> None:
        self.session: Any = None
        self.ready = {"database": True, "broker": True}
        self.sessions_read: list[Any] = []
        self.failure: Exception | None = None

    @contextlib.contextmanager
    def sessions(self) -> Iterator[Any]:
        yield self.session

    def read_stats(self, session: Any) -> actions.Stats:
        self.sessions_read.append(session)
        if self.failure is not None:
            raise self.failure
        return STATS


BACKEND = Backend()


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    checks = {name: (lambda name=name: BACKEND.ready[name]) for name in BACKEND.ready}
    with TestClient(api.create_app(BACKEND.sessions, checks)) as test_client:  # type: ignore[arg-type]
        yield test_client


@pytest.fixture
def backend(monkeypatch: pytest.MonkeyPatch) -> Backend:
    BACKEND.session, BACKEND.sessions_read = ReadSession(), []
    BACKEND.ready = {"database": True, "broker": True}
    BACKEND.failure = None
    monkeypatch.setattr(actions, "read_stats", BACKEND.read_stats)
    return BACKEND


def test_get_stats_answers_every_figure(client, backend) -> None:
    response = client.get("/stats")

    assert response.status_code == 200
    assert response.json() == {
        "total_users": 3,
        "signups_per_plan": {"free": 1, "pro": 2, "team": 0},
        "signups_per_day": {"2024-05-01": 1, "2024-05-02": 2},
        "activated_subscriptions": 2,
    }
    assert backend.sessions_read == [backend.session]


def test_get_stats_only_reads_so_its_transaction_is_rolled_back(client, backend) -> None:
    client.get("/stats")

    assert (backend.session.commits, backend.session.rollbacks) == (0, 1)


def test_get_stats_echoes_the_correlation_id(client, backend) -> None:
    response = client.get("/stats", headers={"X-Correlation-ID": "abc-123"})

    assert response.headers["X-Correlation-ID"] == "abc-123"


def test_healthz_answers_even_when_not_ready(client, backend) -> None:
    backend.ready["database"] = False

    response = client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_is_ok_when_database_and_broker_are_reachable(client, backend) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}


def test_readyz_is_503_when_a_check_fails(client, backend) -> None:
    backend.ready["broker"] = False

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "unavailable"},
    }


def test_openapi_documents_the_stats_endpoint(client) -> None:
    schema = client.get("/openapi.json").json()

    assert set(schema["paths"]) == {"/stats", "/healthz", "/readyz"}
    assert set(schema["components"]["schemas"]["PlanCounts"]["properties"]) == {
        "free",
        "pro",
        "team",
    }


def test_docs_page_is_served(client) -> None:
    response = client.get("/docs")

    assert response.status_code == 200
    assert "swagger" in response.text.lower()


@pytest.mark.parametrize("supplied", ["x" * 65, "has space", "<b>", "", "caf\u00e9"])
def test_an_unsafe_correlation_id_is_replaced(client, backend, supplied: str) -> None:
    response = client.get("/stats", headers={"X-Correlation-ID": supplied.encode()})

    used = response.headers["X-Correlation-ID"]
    assert used != supplied and re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", used)


def test_a_database_outage_is_503_with_retry_after(client, backend) -> None:
    backend.failure = OperationalError("SELECT", {}, ConnectionRefusedError())

    response = client.get("/stats", headers={"X-Correlation-ID": "t-1"})

    assert (response.status_code, response.headers["Retry-After"]) == (503, "1")
    assert response.headers["X-Correlation-ID"] == "t-1"


def test_an_unexpected_error_is_a_logged_500_with_the_correlation_id(client, backend) -> None:
    backend.failure = RuntimeError("a bug")

    with structlog.testing.capture_logs() as logs:
        response = client.get("/stats", headers={"X-Correlation-ID": "t-2"})

    assert (response.status_code, response.json()) == (
        500,
        {"detail": "internal error", "errors": []},
    )
    assert response.headers["X-Correlation-ID"] == "t-2"
    assert [entry["event"] for entry in logs if entry["log_level"] == "error"] == [
        "http.unhandled_error"
    ]


def test_one_info_line_per_request(client, backend) -> None:
    with structlog.testing.capture_logs() as logs:
        client.get("/stats")

    [line] = [entry for entry in logs if entry["log_level"] == "info"]
    assert (line["event"], line["method"], line["route"], line["status"]) == (
        "http.request",
        "GET",
        "/stats",
        200,
    )
    assert isinstance(line["duration_ms"], float)


def test_openapi_documents_the_correlation_header_and_the_outage_answer(client) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/stats"]["get"]

    assert set(operation["responses"]) == {"200", "503"}
    assert "X-Correlation-ID" in operation["responses"]["200"]["headers"]
    assert [parameter["name"] for parameter in operation["parameters"]] == ["X-Correlation-ID"]
