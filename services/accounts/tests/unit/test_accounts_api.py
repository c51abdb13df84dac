import re
import unicodedata
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from accounts import actions, api, erasure, keys
from accounts.api import names
from accounts.api.schemas import SignupRequest
from accounts.models import EMAIL_UNIQUE_INDEX, Plan, SubscriptionStatus

USER_ID = uuid.UUID("00000000-0000-0000-0000-000000000001")
SUB_ID = uuid.UUID("00000000-0000-0000-0000-000000000002")
VALID = {"email": "ada@example.com", "full_name": "Ada Lovelace", "plan": "pro"}
READER = {"Authorization": "Bearer reader-key"}


class Diag:
    def __init__(self, constraint_name: str | None, column_name: str | None = None) -> None:
        self.constraint_name, self.column_name = constraint_name, column_name


class DriverError(Exception):
    def __init__(self, diag: Diag) -> None:
        super().__init__("refused")
        self.diag = diag


DATABASE_REFUSALS: dict[str, Exception] = {
    "unique@example.com": IntegrityError("INSERT", {}, DriverError(Diag(EMAIL_UNIQUE_INDEX))),
    "column@example.com": IntegrityError(
        "INSERT", {}, DriverError(Diag("users_phone_check", "phone"))
    ),
    "unknown@example.com": IntegrityError("COMMIT", {}, DriverError(Diag(None))),
    "toolong@example.com": DataError("INSERT", {}, DriverError(Diag(None))),
    "nul@example.com": actions.SignupRejectedError("full_name", "contains a NUL character"),
    "bug@example.com": RuntimeError("a bug"),
}


class RecordingSession:
    """What a view does with its session: open it, then commit or roll back (the actions that
    would use it are replaced by fakes)."""

    def __init__(self) -> None:
        self.commits = self.rollbacks = 0

    def __enter__(self) -> "RecordingSession":
        return self

    def __exit__(self, *_exc: object) -> None:
        return None

    def commit(self) -> None:
        self.commits += 1

    def rollback(self) -> None:
        self.rollbacks += 1


class Calls:
    def __init__(self) -> None:
        self.signups: list[tuple[actions.NewSignup, str]] = []
        self.versions: list[tuple[int, ...]] = []
        self.sessions: list[RecordingSession] = []
        self.ready: bool | Exception = True

    def database_ready(self) -> bool:
        if isinstance(self.ready, Exception):
            raise self.ready
        return self.ready


@pytest.fixture(scope="module")
def state() -> Calls:
    return Calls()


@pytest.fixture(scope="module")
def client(state: Calls) -> Iterator[TestClient]:
    def sessions() -> RecordingSession:
        session = RecordingSession()
        state.sessions.append(session)
        return session

    app = api.create_app(
        sessions,  # type: ignore[arg-type]
        {"database": state.database_ready},
        max_body_bytes=1024,
        user_signed_up_versions=[2],
    )
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(autouse=True)
def fake_actions(monkeypatch: pytest.MonkeyPatch, state: Calls) -> None:
    state.signups.clear()
    state.versions.clear()
    state.sessions.clear()
    state.ready = True

    def sign_up(
        _session: Any, signup: actions.NewSignup, *, correlation_id: str, versions: Any
    ) -> Any:
        state.versions.append(tuple(versions))
        if signup.email == "taken@example.com":
            raise actions.EmailAlreadyRegisteredError
        if signup.email == "down@example.com":
            raise OperationalError("INSERT", {}, ConnectionRefusedError())
        if signup.email in DATABASE_REFUSALS:
            raise DATABASE_REFUSALS[signup.email]
        state.signups.append((signup, correlation_id))
        return actions.SignupReceipt(USER_ID, SUB_ID, SubscriptionStatus.PENDING)

    def get_user(_session: Any, user_id: uuid.UUID) -> actions.UserProfile:
        if user_id != USER_ID:
            raise actions.UserNotFoundError(str(user_id))
        return actions.UserProfile(
            USER_ID,
            "ada@example.com",
            "Ada",
            None,
            Plan.PRO,
            SUB_ID,
            SubscriptionStatus.ACTIVE,
            datetime(2026, 1, 1, tzinfo=UTC),
        )

    def authenticate(_session: Any, token: str | None, needs: keys.Scope) -> keys.Caller:
        if token != "reader-key":
            raise keys.NotAuthenticatedError(keys.Refusal.INVALID)
        return keys.Caller("crm", "k1", frozenset({keys.Scope.USERS_READ.value}))

    monkeypatch.setattr(actions, "sign_up", sign_up)
    monkeypatch.setattr(actions, "get_user", get_user)
    monkeypatch.setattr(keys, "authenticate", authenticate)
    monkeypatch.setattr(erasure, "erasure_state", lambda *_args: None)


def test_signup_returns_201_and_commits(client: TestClient, state: Calls) -> None:
    response = client.post("/signups", json=VALID, headers={"X-Correlation-ID": "corr-9"})
    assert response.status_code == 201
    assert response.json() == {
        "user_id": str(USER_ID),
        "subscription_id": str(SUB_ID),
        "status": "pending",
    }
    [(signup, correlation_id)] = state.signups
    assert (signup.email, signup.plan, signup.phone) == ("ada@example.com", Plan.PRO, None)
    assert correlation_id == "corr-9"
    assert response.headers["X-Correlation-ID"] == "corr-9"
    assert state.sessions[0].commits == 1


def test_signup_without_correlation_header_gets_one(client: TestClient, state: Calls) -> None:
    response = client.post("/signups", json=VALID)
    assert response.headers["X-Correlation-ID"] == state.signups[0][1]


def test_full_name_is_trimmed(client: TestClient, state: Calls) -> None:
    client.post("/signups", json={**VALID, "full_name": "  Ada  "})
    assert state.signups[0][0].full_name == "Ada"


def test_the_versions_the_app_was_given_are_published(client: TestClient, state: Calls) -> None:
    client.post("/signups", json=VALID)
    assert state.versions == [(2,)]


@pytest.mark.parametrize(
    ("accept_language", "locale"),
    [(None, "en"), ("de-CH, de;q=0.9, en;q=0.8", "de"), ("es, fr;q=0.5", "fr"), ("xx;q=abc", "en")],
)
def test_the_locale_is_negotiated_from_accept_language(
    client: TestClient, state: Calls, accept_language: str | None, locale: str
) -> None:
    headers = {} if accept_language is None else {"Accept-Language": accept_language}
    assert client.post("/signups", json=VALID, headers=headers).status_code == 201
    assert state.signups[0][0].locale == locale


def test_duplicate_email_is_409_and_rolled_back(client: TestClient, state: Calls) -> None:
    response = client.post("/signups", json={**VALID, "email": "taken@example.com"})
    assert response.status_code == 409
    assert response.json()["errors"] == [{"field": "email", "message": "already registered"}]
    assert (state.sessions[0].commits, state.sessions[0].rollbacks) == (0, 1)


@pytest.mark.parametrize(
    "change,field",
    [
        ({"email": "nope"}, "email"),
        ({"plan": "gold"}, "plan"),
        ({"full_name": ""}, "full_name"),
        ({"full_name": "   "}, "full_name"),
        ({"full_name": "x" * 201}, "full_name"),
        ({"phone": "0612345678"}, "phone"),
        ({"phone": 14155550123}, "phone"),
        ({"full_name": 12}, "full_name"),
        ({"unexpected": 1}, "unexpected"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(
    client: TestClient, state: Calls, change: dict[str, Any], field: str
) -> None:
    response = client.post("/signups", json={**VALID, **change})
    assert response.status_code == 422
    assert field in [error["field"] for error in response.json()["errors"]]
    assert state.signups == []


def test_missing_field_is_named(client: TestClient) -> None:
    response = client.post("/signups", json={"email": "ada@example.com", "plan": "pro"})
    assert response.json()["errors"] == [{"field": "full_name", "message": "Field required"}]


def test_non_json_body_is_400(client: TestClient) -> None:
    response = client.post(
        "/signups", content=b"{oops", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "body"


def test_oversized_body_is_413(client: TestClient, state: Calls) -> None:
    response = client.post("/signups", json={**VALID, "full_name": "x" * 2000})
    assert response.status_code == 413
    assert state.signups == []


def test_get_user(client: TestClient, state: Calls) -> None:
    response = client.get(f"/users/{USER_ID}", headers=READER)
    assert response.status_code == 200
    assert response.json()["status"] == "active"
    assert state.sessions[0].commits == 0


def test_unknown_user_is_404(client: TestClient) -> None:
    assert client.get(f"/users/{uuid.uuid4()}", headers=READER).status_code == 404


def test_user_id_that_is_not_a_uuid_is_422(client: TestClient) -> None:
    response = client.get("/users/not-a-uuid", headers=READER)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "user_id"


def test_alive_and_ready(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"started": "ok", "database": "ok"}}


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_answer_head_and_ignore_a_query_string(client: TestClient, path: str) -> None:
    head = client.head(path)
    assert (head.status_code, head.content) == (200, b"")
    assert client.get(f"{path}?probe=1").status_code == 200


def test_not_ready_without_database_but_still_alive(client: TestClient, state: Calls) -> None:
    state.ready = False
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"started": "ok", "database": "unavailable"}
    assert client.get("/healthz").status_code == 200


def test_a_check_that_raises_counts_as_unavailable(client: TestClient, state: Calls) -> None:
    state.ready = ConnectionRefusedError("database down")
    with structlog.testing.capture_logs() as logs:
        response = client.get("/readyz")
    assert (response.status_code, response.json()["checks"]["database"]) == (503, "unavailable")
    assert "readiness.check_failed" in [entry["event"] for entry in logs]


def test_not_ready_before_the_app_has_started() -> None:
    app = api.create_app(RecordingSession, {"database": lambda: True})  # type: ignore[arg-type]
    client = TestClient(app)  # used without "with": the lifespan never starts
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {"started": "unavailable", "database": "ok"}


def test_database_outage_is_503_with_retry_after(client: TestClient, state: Calls) -> None:
    response = client.post("/signups", json={**VALID, "email": "down@example.com"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert state.sessions[0].rollbacks == 1


def fields(response: Any) -> list[str]:
    return [error["field"] for error in response.json()["errors"]]


REFUSED_IN_NAMES = [
    "\x00",
    "\x07",
    "\t",
    "\n",
    "\x1b",
    "\x7f",
    "\x85",
    "\u200b",
    "\u200d",
    "\u202e",
    "\u2066",
    "\u2069",
    "\u2028",
    "\ufeff",
    "\U000e0041",
]


@pytest.mark.parametrize("char", REFUSED_IN_NAMES)
def test_controls_and_format_characters_in_a_name_are_422_naming_full_name(
    client: TestClient, state: Calls, char: str
) -> None:
    response = client.post("/signups", json={**VALID, "full_name": f"Ada{char}Lovelace"})
    assert response.status_code == 422
    assert fields(response) == ["full_name"]
    assert state.signups == []


def test_a_lone_surrogate_in_a_name_is_422(client: TestClient, state: Calls) -> None:
    body = b'{"email": "ada@example.com", "plan": "pro", "full_name": "Ada \\ud800"}'
    response = client.post("/signups", content=body, headers={"Content-Type": "application/json"})
    assert (response.status_code, fields(response)) == (422, ["full_name"])
    assert state.signups == []


@pytest.mark.parametrize(
    "name", ["Zoë Ñúñez", "李小龍", "Анна", "محمد", "O'Brien-Smith", "Ada  Lovelace"]
)
def test_printable_names_in_any_script_are_accepted(
    client: TestClient, state: Calls, name: str
) -> None:
    assert client.post("/signups", json={**VALID, "full_name": name}).status_code == 201
    assert state.signups[0][0].full_name == name


NOT_PRINTABLE = st.characters(categories=["Cc", "Cf", "Cs"])


@settings(deadline=None, database=None)
@given(before=st.text(max_size=20), refused=NOT_PRINTABLE, after=st.text(max_size=20))
def test_any_name_holding_a_control_or_format_character_is_refused(
    before: str, refused: str, after: str
) -> None:
    with pytest.raises(ValidationError) as invalid:
        SignupRequest.model_validate({**VALID, "full_name": before + refused + after})
    assert [error["loc"] for error in invalid.value.errors()] == [("full_name",)]


@settings(deadline=None, database=None)
@given(
    st.text(
        alphabet=st.characters(categories=["L", "M", "N", "P", "S", "Zs"]), min_size=1, max_size=200
    )
)
def test_any_printable_name_is_accepted_trimmed(name: str) -> None:
    if not name.strip():
        return
    request = SignupRequest.model_validate({**VALID, "full_name": name})
    assert request.full_name == name.strip()


def test_the_documented_name_pattern_refuses_what_the_server_refuses() -> None:
    documented = SignupRequest.model_json_schema()["properties"]["full_name"]["pattern"]
    assert documented == names.full_name_pattern()
    pattern = re.compile(documented.removesuffix("$") + r"\Z")  # JavaScript's $ is Python's \Z
    for char in REFUSED_IN_NAMES:
        assert pattern.search(f"Ada{char}Lovelace") is None
    for blank in ["   ", "\u3000", "\u00a0 \u2003", "Ada\n"]:
        assert pattern.search(blank) is None
    for name in ["  Zoë Ñúñez ", "\U0001d504da", "Ada\u00a0Lovelace", "李小龍"]:
        assert pattern.search(name)


def test_the_documented_name_pattern_has_no_escape_javascript_cannot_read() -> None:
    # \U0001xxxx is Python only; \s differs between engines; the u flag reads code points.
    pattern = names.full_name_pattern()
    assert "\\U" not in pattern and "\\s" not in pattern and "\\x" not in pattern
    assert "\U000110bd" in pattern  # beyond the BMP: the character itself


@pytest.mark.parametrize(
    "phone",
    [
        "+\u0661\u0664\u0661\u0665\u0665\u0665\u0665\u0660\u0661\u0662",  # Arabic-Indic digits
        "+\uff11\uff14\uff11\uff15\uff15\uff15\uff15\uff10\uff11\uff12",  # fullwidth digits
        "+1415555\u0669",
        "+1234567",  # 7 digits
        "+1234567890123456",  # 16 digits
        "+0415555012",
        "14155550123",
        "+1 415 555 0123",
        "+14155550123\n",
    ],
)
def test_phone_numbers_other_than_e164_in_ascii_digits_are_422(
    client: TestClient, state: Calls, phone: str
) -> None:
    response = client.post("/signups", json={**VALID, "phone": phone})
    assert (response.status_code, fields(response)) == (422, ["phone"])
    assert state.signups == []


@pytest.mark.parametrize("phone", ["+12345678", "+14155550123", "+123456789012345"])
def test_e164_numbers_of_8_to_15_digits_are_accepted(
    client: TestClient, state: Calls, phone: str
) -> None:
    assert client.post("/signups", json={**VALID, "phone": phone}).status_code == 201
    assert state.signups[0][0].phone == phone


@settings(deadline=None, database=None)
@given(st.text(alphabet=st.characters(categories=["Nd"]), min_size=8, max_size=15))
def test_any_phone_with_a_non_ascii_digit_is_refused(digits: str) -> None:
    phone = "+" + digits
    if re.fullmatch(r"\+[1-9][0-9]{7,14}", phone, flags=re.ASCII):
        return
    with pytest.raises(ValidationError):
        SignupRequest.model_validate({**VALID, "phone": phone})


def test_email_is_normalised(client: TestClient, state: Calls) -> None:
    client.post("/signups", json={**VALID, "email": "Ada@EXAMPLE.com"})
    assert state.signups[0][0].email == "Ada@example.com"


@pytest.mark.parametrize("email", ["ada\x00@example.com", "ada@example.com\u202e", "a" * 330])
def test_unusable_emails_are_422(client: TestClient, email: str) -> None:
    response = client.post("/signups", json={**VALID, "email": email})
    assert (response.status_code, fields(response)) == (422, ["email"])


@pytest.mark.parametrize(
    "supplied",
    ["x" * 65, "has space", "<script>", "semi;colon", "", "caf\u00e9", "a/b", "new\u2028line"],
)
def test_an_unsafe_correlation_id_is_replaced_and_the_used_one_returned(
    client: TestClient, state: Calls, supplied: str
) -> None:
    response = client.post("/signups", json=VALID, headers={"X-Correlation-ID": supplied.encode()})
    used = response.headers["X-Correlation-ID"]
    assert response.status_code == 201
    assert used != supplied and re.fullmatch(r"[A-Za-z0-9._:-]{1,64}", used)
    assert state.signups[0][1] == used


@pytest.mark.parametrize("supplied", ["a", "x" * 64, "req-1.2:3_A"])
def test_a_safe_correlation_id_is_kept(client: TestClient, state: Calls, supplied: str) -> None:
    response = client.post("/signups", json=VALID, headers={"X-Correlation-ID": supplied})
    assert response.headers["X-Correlation-ID"] == state.signups[0][1] == supplied


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("POST", "/signups", {"email": "nope"}, 422),
        ("POST", "/signups", {**VALID, "full_name": "x" * 2000}, 413),
        ("GET", f"/users/{SUB_ID}", None, 404),
        ("GET", "/nowhere", None, 404),
        ("POST", "/signups", {**VALID, "email": "bug@example.com"}, 500),
    ],
)
def test_every_answer_carries_the_correlation_id(
    client: TestClient, method: str, path: str, body: Any, expected: int
) -> None:
    with structlog.testing.capture_logs():
        headers = {"X-Correlation-ID": "trace-7", **READER}
        response = client.request(method, path, json=body, headers=headers)
    assert response.status_code == expected
    assert response.headers["X-Correlation-ID"] == "trace-7"


@pytest.mark.parametrize(
    ("email", "status", "field"),
    [
        ("unique@example.com", 409, "email"),
        ("column@example.com", 409, "phone"),
        ("unknown@example.com", 409, "body"),
        ("toolong@example.com", 422, "body"),
        ("nul@example.com", 422, "full_name"),
    ],
)
def test_database_refusals_are_4xx_naming_the_field(
    client: TestClient, state: Calls, email: str, status: int, field: str
) -> None:
    response = client.post("/signups", json={**VALID, "email": email})
    assert (response.status_code, fields(response)) == (status, [field])
    assert state.sessions[0].rollbacks == 1


def test_an_unexpected_error_is_a_logged_500_without_details(client: TestClient) -> None:
    with structlog.testing.capture_logs() as logs:
        response = client.post("/signups", json={**VALID, "email": "bug@example.com"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error", "errors": []}
    [failure] = [entry for entry in logs if entry["log_level"] == "error"]
    assert failure["event"] == "http.unhandled_error"


def chunks(*parts: bytes) -> Iterator[bytes]:
    yield from parts


def test_an_oversized_chunked_body_is_413(client: TestClient, state: Calls) -> None:
    response = client.post(
        "/signups",
        content=chunks(b'{"email": "ada@example.com", "full_name": "', b"x" * 2000, b'"}'),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert fields(response) == ["body"]
    assert state.signups == []


def test_a_small_chunked_body_is_accepted(client: TestClient, state: Calls) -> None:
    response = client.post(
        "/signups",
        content=chunks(b'{"email": "ada@example.com", ', b'"full_name": "Ada", "plan": "pro"}'),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 201
    assert state.signups[0][0].full_name == "Ada"


@pytest.mark.parametrize("body", [b"{oops", b'{"email": ', b"\xff\xfe", b"[1, 2"])
def test_malformed_json_is_400_naming_the_body(client: TestClient, body: bytes) -> None:
    response = client.post("/signups", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert fields(response) == ["body"]


@pytest.mark.parametrize("body", [b"[]", b'"text"', b"null", b"42"])
def test_json_that_is_not_an_object_is_422(client: TestClient, body: bytes) -> None:
    response = client.post("/signups", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422


def test_one_info_line_per_request_with_route_status_and_duration(client: TestClient) -> None:
    with structlog.testing.capture_logs() as logs:
        client.get(f"/users/{USER_ID}", headers={"X-Correlation-ID": "trace-8", **READER})
    [line] = [entry for entry in logs if entry["log_level"] == "info"]
    assert (line["event"], line["method"], line["route"], line["status"]) == (
        "http.request",
        "GET",
        "/users/{user_id}",
        200,
    )
    assert isinstance(line["duration_ms"], float)


def test_unmatched_paths_are_logged_without_the_raw_path(client: TestClient) -> None:
    with structlog.testing.capture_logs() as logs:
        client.get("/ada@example.com")
    [line] = [entry for entry in logs if entry["log_level"] == "info"]
    assert (line["route"], line["status"]) == ("unmatched", 404)


def test_the_openapi_schema_documents_every_error_answer(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    signup = schema["paths"]["/signups"]["post"]
    assert set(signup["responses"]) == {"201", "400", "409", "413", "422", "503"}
    assert "X-Correlation-ID" in signup["responses"]["413"]["headers"]
    assert "X-Correlation-ID" in [parameter["name"] for parameter in signup["parameters"]]
    phone = schema["components"]["schemas"]["SignupRequest"]["properties"]["phone"]
    assert phone["anyOf"][0]["pattern"] == "^\\+[1-9][0-9]{7,14}$"
    assert unicodedata.category("\u202e") == "Cf"


@pytest.mark.parametrize("declared", ["2048", "9" * 5000])
def test_a_declared_length_over_the_limit_is_413_before_reading(
    client: TestClient, state: Calls, declared: str
) -> None:
    response = client.post(
        "/signups",
        content=b"{}",
        headers={"Content-Type": "application/json", "Content-Length": declared},
    )
    assert (response.status_code, fields(response)) == (413, ["body"])
    assert state.signups == []
