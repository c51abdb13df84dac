import itertools
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from devsinks.reading import read_sms
from devsinks.sms_store import MESSAGES_FILE, SmsStore
from devsinks.sms_validation import SmsRequest


def request(key: str, to: str = "+15551234567") -> SmsRequest:
    return SmsRequest(to=to, body=f"body for {key}", idempotency_key=key)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SmsStore]:
    counter = itertools.count(1)
    store = SmsStore(tmp_path, id_factory=lambda: f"msg_{next(counter)}", clock=lambda: "T")
    yield store
    store.close()


def test_new_key_is_stored(store: SmsStore, tmp_path: Path) -> None:
    record, created = store.accept(request("k1"))
    assert created
    assert record.id == "msg_1"
    assert read_sms(tmp_path) == [
        {
            "id": "msg_1",
            "to": "+15551234567",
            "body": "body for k1",
            "idempotency_key": "k1",
            "received_at": "T",
        }
    ]


def test_repeated_key_returns_first_record_and_is_not_stored_again(
    store: SmsStore, tmp_path: Path
) -> None:
    first, _ = store.accept(request("k1"))
    again, created = store.accept(request("k1", to="+15559999999"))
    assert not created
    assert again == first
    assert len(read_sms(tmp_path)) == 1


def test_known_keys_are_reloaded_after_restart(tmp_path: Path) -> None:
    with_ids = itertools.count(1)
    first = SmsStore(tmp_path, id_factory=lambda: f"msg_{next(with_ids)}")
    original, _ = first.accept(request("k1"))
    first.close()

    second = SmsStore(tmp_path, id_factory=lambda: f"msg_{next(with_ids)}")
    try:
        again, created = second.accept(request("k1"))
        _, other_created = second.accept(request("k2"))
    finally:
        second.close()
    assert not created
    assert again.id == original.id
    assert other_created
    assert [line["idempotency_key"] for line in read_sms(tmp_path)] == ["k1", "k2"]


def test_torn_last_line_is_terminated_before_appending(tmp_path: Path) -> None:
    (tmp_path / MESSAGES_FILE).write_bytes(
        b'{"id": "msg_0", "to": "+1555", "body": "b", "idempotency_key": "k0", '
        b'"received_at": "T"}\n{"id": "torn'
    )
    store = SmsStore(tmp_path)
    try:
        _, known_created = store.accept(request("k0"))
        _, created = store.accept(request("k1"))
    finally:
        store.close()
    assert not known_created
    assert created
    assert [line["idempotency_key"] for line in read_sms(tmp_path)] == ["k0", "k1"]


def test_every_line_is_fsynced(store: SmsStore, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    store.accept(request("k1"))
    store.accept(request("k1"))
    store.accept(request("k2"))
    assert len(synced) == 2


def test_concurrent_accepts_store_each_key_once(store: SmsStore, tmp_path: Path) -> None:
    keys = [f"k{index % 10}" for index in range(200)]
    barrier = threading.Barrier(8)
    created: list[bool] = []
    lock = threading.Lock()

    def worker(chunk: list[str]) -> None:
        barrier.wait()
        for key in chunk:
            _, was_created = store.accept(request(key))
            with lock:
                created.append(was_created)

    threads = [threading.Thread(target=worker, args=(keys[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert created.count(True) == 10
    lines = read_sms(tmp_path)
    assert sorted(line["idempotency_key"] for line in lines) == sorted(f"k{i}" for i in range(10))
    assert len(store) == 10
