import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devsinks.sms_http import SmsSink
from devsinks.smtp_sink import SmtpSink


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leftover = [thread for thread in threading.enumerate() if thread not in before]
    assert leftover == [], f"threads left running: {leftover}"


@pytest.fixture
def sms_dir(tmp_path: Path) -> Path:
    return tmp_path / "sms"


@pytest.fixture
def sms_sink(sms_dir: Path) -> Iterator[SmsSink]:
    with SmsSink(sms_dir, port=0) as sink:
        yield sink


@pytest.fixture
def sms_client(sms_sink: SmsSink) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sms_sink.url, timeout=5.0) as client:
        yield client


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    return tmp_path / "mail"


@pytest.fixture
def smtp_sink(maildir: Path) -> Iterator[SmtpSink]:
    with SmtpSink(maildir, port=0) as sink:
        yield sink
