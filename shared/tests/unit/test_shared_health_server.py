"""The health server's HTTP handling: HEAD, query strings, other methods (driven in process)."""

import socket
from collections.abc import Iterator

import pytest

from signup_shared.process import HealthServer


@pytest.fixture
def server() -> Iterator[HealthServer]:
    health = HealthServer("127.0.0.1", 0, {"database": lambda: True, "broker": lambda: False})
    yield health
    health._server.server_close()  # never started: nothing to shut down


def ask(server: HealthServer, method: str, path: str) -> tuple[str, dict[str, str], bytes]:
    """One request through the server's handler over a socket pair (no port, no thread)."""
    client, served = socket.socketpair()
    with client, served:
        request = f"{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
        client.sendall(request.encode())
        client.shutdown(socket.SHUT_WR)
        server._handler_class()(served, ("test", 0), server._server)
        served.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return status.split(" ", 2)[1], headers, body


@pytest.mark.parametrize("path", ["/healthz", "/metrics"])
def test_head_answers_the_status_and_headers_without_a_body(
    server: HealthServer, path: str
) -> None:
    status, headers, body = ask(server, "HEAD", path)
    _, get_headers, get_body = ask(server, "GET", path)
    assert status == "200"
    assert body == b""
    assert headers["Content-Type"] == get_headers["Content-Type"]
    assert int(headers["Content-Length"]) > 0 and get_body


def test_head_of_readyz_reports_unavailable_as_503(server: HealthServer) -> None:
    assert ask(server, "HEAD", "/readyz")[0] == "503"


@pytest.mark.parametrize("path", ["/metrics?x", "/healthz?probe=1&t=2", "/readyz?"])
def test_a_query_string_is_ignored(server: HealthServer, path: str) -> None:
    status, _, body = ask(server, "GET", path)
    assert status in {"200", "503"}
    assert b"not found" not in body


def test_unknown_paths_are_404_and_other_methods_405(server: HealthServer) -> None:
    assert ask(server, "GET", "/nope?x")[0] == "404"
    status, headers, _ = ask(server, "POST", "/healthz")
    assert status == "405"
    assert headers["Allow"] == "GET, HEAD"
