"""One naming convention for every service's settings, and the renames of this release.

A duration names its unit; a port names what answers on it (``web_port``, ``consumer_health_port``,
``relay_health_port``). A renamed field keeps its old environment variable, its old keyword and
its old attribute (read-only) for one release.
"""

from __future__ import annotations

import os
import re

import pytest

from accounts.settings import AccountsSettings
from audit.settings import AuditSettings
from notifications.settings import NotificationsSettings
from provisioning.settings import ProvisioningSettings
from signup_shared.settings import ServiceSettings
from stats.settings import StatsSettings

SERVICES: list[type[ServiceSettings]] = [
    AccountsSettings,
    NotificationsSettings,
    ProvisioningSettings,
    StatsSettings,
    AuditSettings,
]
UNITS = ("_seconds", "_ms", "_hours", "_days")
# Shared fields named before the convention; renaming them needs a per-service alias each.
NOT_YET_RENAMED = {"amqp_heartbeat", "confirm_timeout", "retry_delays"}
RENAMES = [(cls, old, new) for cls in SERVICES for old, new in cls.renamed.items()]


def _prefix(cls: type[ServiceSettings]) -> str:
    return str(cls.model_config.get("env_prefix", ""))


@pytest.fixture(autouse=True)
def _no_service_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(tuple(_prefix(cls) for cls in SERVICES)):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("cls", SERVICES, ids=lambda cls: cls.__name__)
def test_durations_name_their_unit_and_ports_what_answers(cls: type[ServiceSettings]) -> None:
    for name in set(cls.model_fields) - NOT_YET_RENAMED:
        if re.search(r"(interval|timeout|grace|delay|retention|heartbeat)", name):
            assert name.endswith(UNITS), f"{cls.__name__}.{name} does not name its unit"
        if name.endswith("_port") and not name.startswith(("smtp_", "sms_")):
            assert name in {"web_port", "consumer_health_port", "relay_health_port"}, name


def test_the_renames_are_listed() -> None:
    assert ("http_port", "web_port") in AccountsSettings.renamed.items()
    assert ("http_port", "web_port") in StatsSettings.renamed.items()
    assert NotificationsSettings.renamed["http_port"] == "consumer_health_port"
    assert ProvisioningSettings.renamed["http_port"] == "consumer_health_port"
    assert NotificationsSettings.renamed["inbox_prune_interval"] == "inbox_prune_interval_seconds"
    for cls, old, new in RENAMES:
        assert new in cls.model_fields and old not in cls.model_fields, (cls, old)


@pytest.mark.parametrize(
    ("cls", "old", "new"), RENAMES, ids=lambda v: v if isinstance(v, str) else v.__name__
)
def test_a_renamed_field_reads_both_environment_variables_new_first(
    cls: type[ServiceSettings], old: str, new: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = cls.model_fields[new].default
    monkeypatch.setenv(f"{_prefix(cls)}{old.upper()}", str(default + 7))
    assert getattr(cls(), new) == default + 7
    monkeypatch.setenv(f"{_prefix(cls)}{new.upper()}", str(default + 9))
    assert getattr(cls(), new) == default + 9


@pytest.mark.parametrize(
    ("cls", "old", "new"), RENAMES, ids=lambda v: v if isinstance(v, str) else v.__name__
)
def test_a_renamed_field_keeps_its_old_keyword_and_attribute(
    cls: type[ServiceSettings], old: str, new: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = cls.model_fields[new].default
    monkeypatch.setenv(f"{_prefix(cls)}{new.upper()}", str(default + 9))
    settings = cls(**{old: default + 3})  # the keyword wins over the environment
    assert getattr(settings, new) == getattr(settings, old) == default + 3
    assert getattr(cls(**{new: default + 5}), old) == default + 5
    with pytest.raises(AttributeError):
        setattr(settings, old, default)


def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STATS_WEB_PORT", "eighty")
    with pytest.raises(ValueError, match="STATS_WEB_PORT"):
        StatsSettings()
