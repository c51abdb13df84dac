"""/docs and /redoc from the packaged assets: no CDN, so the pages work offline."""

import asyncio
import re
from typing import Any

import pytest

from signup_shared.asgi import ASSET_TYPES, ApiDocs, Message, RequestGuard, Scope


async def api(scope: Scope, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": b"from the app"})


def get(path: str, method: str = "GET", app: Any = None) -> tuple[int, dict[bytes, bytes], bytes]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": [], "root_path": ""}
    asyncio.run((app or RequestGuard(api))(scope, receive, send))
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), body


@pytest.mark.parametrize(
    ("path", "bundle"), [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")]
)
def test_the_pages_load_only_packaged_assets(path: str, bundle: str) -> None:
    status, headers, body = get(path)
    page = body.decode()
    assert status == 200 and headers[b"content-type"].startswith(b"text/html")
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert f"/docs/assets/{bundle}" in sources
    for source in sources:
        assert source.startswith("/docs/assets/"), source  # nothing from another host
        assert source.removeprefix("/docs/assets/") in ASSET_TYPES
    assert "/openapi.json" in page


@pytest.mark.parametrize("name", sorted(ASSET_TYPES))
def test_every_asset_is_served_from_the_package(name: str) -> None:
    status, headers, body = get(f"/docs/assets/{name}")
    assert status == 200
    assert headers[b"content-type"] == ASSET_TYPES[name].encode()
    assert int(headers[b"content-length"]) == len(body) > 500


def test_the_bundles_are_the_real_libraries() -> None:
    assert b"SwaggerUIBundle" in get("/docs/assets/swagger-ui-bundle.js")[2]
    assert b"spec-url" in get("/docs/assets/redoc.standalone.js")[2]


def test_head_has_no_body_and_unknown_assets_are_404() -> None:
    status, headers, body = get("/docs", "HEAD")
    assert status == 200 and body == b"" and int(headers[b"content-length"]) > 0
    assert get("/docs/assets/../../etc/passwd")[0] == 404
    assert get("/docs/assets/nope.js")[0] == 404


def test_everything_else_reaches_the_application() -> None:
    assert get("/signups")[2] == b"from the app"
    assert get("/docs", "POST")[2] == b"from the app"
    assert get("/docs", app=RequestGuard(api, api_docs=False))[2] == b"from the app"
    assert get("/docs", app=ApiDocs(api, title="<Accounts>"))[2].count(b"&lt;Accounts&gt;") == 1
