"""A web process says where it listens once the socket is bound (a real socket, port 0)."""

import signal
import threading
import time

import httpx
import pytest
import structlog
import uvicorn
from fastapi import FastAPI

from signup_shared import webserver

pytestmark = pytest.mark.integration


def test_the_listening_addresses_are_logged_once_bound() -> None:
    app = FastAPI()
    app.get("/ping")(lambda: {"pong": True})
    server = webserver.AnnouncingServer(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None), "test-web"
    )
    with structlog.testing.capture_logs() as logs:
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        try:
            [line] = [entry for entry in logs if entry["event"] == "http.listening"]
            [url] = line["urls"]
            assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
            assert line["docs"] == [f"{url}/docs"]
            assert httpx.get(f"{url}/ping", timeout=5).json() == {"pong": True}
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    assert not thread.is_alive()


def test_a_stop_signal_wakes_the_once_a_second_main_loop_at_once() -> None:
    app = FastAPI()
    server = webserver.AnnouncingServer(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None), "test-web"
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # inside the one-second wait by now
    asked = time.monotonic()
    server.handle_exit(signal.SIGTERM, None)
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert time.monotonic() - asked < 0.5
