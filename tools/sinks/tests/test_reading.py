from pathlib import Path

from devsinks.reading import read_mail, read_sms


def test_missing_locations_read_as_empty(tmp_path: Path) -> None:
    assert read_mail(tmp_path / "nope") == []
    assert read_sms(tmp_path / "nope") == []


def test_read_sms_accepts_str_paths(tmp_path: Path) -> None:
    (tmp_path / "messages.jsonl").write_text('{"id": "a"}\n')
    assert read_sms(str(tmp_path)) == [{"id": "a"}]
