"""Unit tests: settings resolution, URL helpers and management API parsing (no I/O)."""

from __future__ import annotations

import base64

import pytest

from signup_dlq.config import (
    DEFAULT_AMQP_URL,
    DEFAULT_MANAGEMENT_URL,
    amqp_urls,
    mask_credentials,
    redact_url,
    resolve_amqp_url,
    resolve_management_url,
    vhost_from_amqp_url,
)
from signup_dlq.errors import ManagementApiError, UsageError
from signup_dlq.management import queue_info_from_json, split_credentials


def test_amqp_url_precedence() -> None:
    assert resolve_amqp_url(None, {}) == DEFAULT_AMQP_URL
    assert resolve_amqp_url(None, {"AMQP_URL": "amqp://env"}) == "amqp://env"
    assert resolve_amqp_url("amqp://cli", {"AMQP_URL": "amqp://env"}) == "amqp://cli"
    assert resolve_amqp_url(None, {"AMQP_URL": ""}) == DEFAULT_AMQP_URL


def test_management_url_precedence() -> None:
    assert resolve_management_url(None, {}) == DEFAULT_MANAGEMENT_URL
    env = {"RABBITMQ_MANAGEMENT_URL": "http://env:1"}
    assert resolve_management_url(None, env) == "http://env:1"
    assert resolve_management_url("http://cli:2", env) == "http://cli:2"


@pytest.mark.parametrize(
    ("url", "vhost"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/%2F", "/"),
        ("amqp://guest:guest@127.0.0.1:5672/", "/"),
        ("amqp://guest:guest@127.0.0.1:5672", "/"),
        ("amqp://h/signup", "signup"),
        ("amqp://h/team%2Fsignup", "team/signup"),
    ],
)
def test_vhost_from_amqp_url(url: str, vhost: str) -> None:
    assert vhost_from_amqp_url(url) == vhost


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("amqp://guest:secret@127.0.0.1:5672/%2F", "amqp://guest:***@127.0.0.1:5672/%2F"),
        ("http://u:p@host", "http://u:***@host"),
        ("http://host:15672", "http://host:15672"),
        ("amqp://u:p@[::1]:5672/x", "amqp://u:***@[::1]:5672/x"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_url_never_leaks_on_a_bad_port() -> None:
    assert "secret" not in redact_url("amqp://u:secret@h:99999999/x")


CLUSTER = (
    "amqp://signup-dlq:first-secret@rabbit-1:5672/%2F;"
    "amqp://signup-dlq:second-secret@rabbit-2:5672/%2F; amqp://other:third-secret@[::1]:5672/%2F"
)


def test_redact_url_masks_every_node_of_a_cluster_url() -> None:
    redacted = redact_url(CLUSTER)
    assert "secret" not in redacted
    assert redacted == (
        "amqp://signup-dlq:***@rabbit-1:5672/%2F;"
        "amqp://signup-dlq:***@rabbit-2:5672/%2F;amqp://other:***@[::1]:5672/%2F"
    )


@pytest.mark.parametrize(
    "text",
    [
        f"cannot connect to {CLUSTER} (refused)",
        "at amqp://u:p%40ss@h/x and http://v:w@h:15672/api",
        "amqp://u:unencoded@at@h//",
    ],
)
def test_mask_credentials_leaves_no_password_in_free_text(text: str) -> None:
    masked = mask_credentials(text)
    for secret in ("secret", "p%40ss", ":w@", "unencoded", "at@h"):
        assert secret not in masked
    assert masked.count("***@") == text.count("://")


def test_mask_credentials_keeps_text_without_passwords() -> None:
    text = "amqp://h:5672/x http://user@h/ no url here"
    assert mask_credentials(text) == text


def test_amqp_urls_splits_the_nodes_of_a_cluster_url() -> None:
    assert amqp_urls(CLUSTER) == [
        "amqp://signup-dlq:first-secret@rabbit-1:5672/%2F",
        "amqp://signup-dlq:second-secret@rabbit-2:5672/%2F",
        "amqp://other:third-secret@[::1]:5672/%2F",
    ]
    assert amqp_urls("amqp://h//") == ["amqp://h//"]


@pytest.mark.parametrize("setting", ["", ";", " ; "])
def test_an_empty_amqp_url_is_refused(setting: str) -> None:
    with pytest.raises(UsageError, match="empty"):
        amqp_urls(setting)


def test_a_cluster_url_has_one_vhost() -> None:
    assert vhost_from_amqp_url(CLUSTER) == "/"
    assert vhost_from_amqp_url("amqp://a/signup;amqp://b/signup") == "signup"
    with pytest.raises(UsageError, match="different vhosts") as refused:
        vhost_from_amqp_url("amqp://u:one-secret@a/signup;amqp://u:two-secret@b/other")
    assert "secret" not in str(refused.value)


def test_split_credentials() -> None:
    bare, auth = split_credentials("http://guest:gu%40st@127.0.0.1:15672/")
    assert bare == "http://127.0.0.1:15672"
    assert auth == "Basic " + base64.b64encode(b"guest:gu@st").decode()
    assert split_credentials("https://host/prefix") == ("https://host/prefix", None)


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://h", "http://"])
def test_split_credentials_rejects_bad_urls(url: str) -> None:
    with pytest.raises(ManagementApiError):
        split_credentials(url)


def test_queue_info_from_json() -> None:
    info = queue_info_from_json(
        {
            "name": "a.dlq",
            "messages": 4,
            "messages_ready": 3,
            "messages_unacknowledged": 1,
            "consumers": 2,
            "type": "classic",
            "durable": True,
        }
    )
    assert (info.name, info.messages, info.messages_ready, info.consumers) == ("a.dlq", 4, 3, 2)
    assert info.durable


def test_queue_info_from_json_without_stats() -> None:
    info = queue_info_from_json({"name": "new.dlq", "messages": None})
    assert info.messages == 0
    assert info.consumers == 0
    assert info.queue_type == "classic"
