import queue
import re
import signal
import smtplib
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devsinks.reading import read_mail, read_sms

pytestmark = pytest.mark.integration  # real servers on loopback, real processes

LISTENING = re.compile(r"listening on (?:http://)?127\.0\.0\.1:(\d+)")


class Foreground:
    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "devsinks", *args],
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.put(line)

    def wait_for(self, pattern: re.Pattern[str], timeout: float = 10.0) -> re.Match[str]:
        while True:
            line = self.lines.get(timeout=timeout)
            self.output.append(line)
            match = pattern.search(line)
            if match:
                return match

    def stop(self, signum: signal.Signals) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout=10)
        self._reader.join(timeout=10)
        while not self.lines.empty():
            self.output.append(self.lines.get_nowait())
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=10)
        if self.process.stderr is not None:
            self.process.stderr.close()


@pytest.fixture
def foreground() -> Iterator[list[Foreground]]:
    started: list[Foreground] = []
    yield started
    for process in started:
        process.kill()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sms_command_runs_until_signalled(
    foreground: list[Foreground], tmp_path: Path, signum: signal.Signals
) -> None:
    sink = Foreground("sms", "--port", "0", "--dir", str(tmp_path))
    foreground.append(sink)
    port = sink.wait_for(LISTENING).group(1)
    response = httpx.post(
        f"http://127.0.0.1:{port}/messages",
        json={"to": "+15551234567", "body": "hi"},
        headers={"Idempotency-Key": "k"},
    )
    assert response.status_code == 201
    sink.wait_for(re.compile("stored sms"))
    assert sink.stop(signum) == 0
    log = "".join(sink.output)
    assert "***67" in log
    assert "5551234567" not in log
    assert len(read_sms(tmp_path)) == 1


def test_smtp_command_runs_until_signalled(foreground: list[Foreground], tmp_path: Path) -> None:
    sink = Foreground("smtp", "--port", "0", "--maildir", str(tmp_path / "mail"))
    foreground.append(sink)
    port = int(sink.wait_for(LISTENING).group(1))
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        client.login("user", "password")
        client.sendmail("sender@signup.test", ["alice@example.com"], b"Subject: x\r\n\r\nhi\r\n")
    sink.wait_for(re.compile("stored mail"))
    assert sink.stop(signal.SIGTERM) == 0
    log = "".join(sink.output)
    assert "s***@signup.test" in log
    assert "a***@example.com" in log
    assert "alice" not in log
    assert "deprecated" not in log
    assert len(read_mail(tmp_path / "mail")) == 1


def test_port_in_use_exits_with_an_error(foreground: list[Foreground], tmp_path: Path) -> None:
    first = Foreground("sms", "--port", "0", "--dir", str(tmp_path))
    foreground.append(first)
    port = first.wait_for(LISTENING).group(1)
    second = subprocess.run(
        [sys.executable, "-m", "devsinks", "sms", "--port", port, "--dir", str(tmp_path / "b")],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert second.returncode == 1
    assert "could not start" in second.stderr
    assert first.stop(signal.SIGTERM) == 0
