"""Broker addresses: parsing AMQP_URL with several nodes, failover order, connection names."""

import random

import pytest

from signup_shared.messaging import connection
from signup_shared.messaging.connection import (
    address,
    addresses,
    broker_urls,
    default_connection_name,
    failover_order,
)

ONE = "amqp://u:secret@rabbit-1:5672/%2F"
THREE = "amqp://u:secret@rabbit-1:5672/%2F;amqp://u:secret@rabbit-2:5672/%2F;amqp://u:secret@rabbit-3/%2F"


def test_one_url_is_one_address() -> None:
    assert broker_urls(ONE) == [ONE]


def test_several_urls_are_split_on_semicolons_and_stripped() -> None:
    assert broker_urls(f" {THREE} ;") == THREE.split(";")


def test_a_list_is_accepted_as_it_is() -> None:
    assert broker_urls(THREE.split(";")) == THREE.split(";")


@pytest.mark.parametrize("empty", ["", " ; ;", []])
def test_no_address_is_refused(empty: str | list[str]) -> None:
    with pytest.raises(ValueError, match="no broker URL"):
        broker_urls(empty)


def test_a_non_amqp_scheme_is_refused_without_showing_the_password() -> None:
    with pytest.raises(ValueError, match="amqp://") as raised:
        broker_urls(f"{ONE};http://u:secret@rabbit-2:15672/")
    assert "secret" not in str(raised.value)


def test_an_address_without_a_host_is_refused() -> None:
    with pytest.raises(ValueError, match="no host"):
        broker_urls("amqp:///%2F")


def test_addresses_of_different_virtual_hosts_are_refused() -> None:
    with pytest.raises(ValueError, match="different virtual hosts"):
        broker_urls("amqp://u:p@rabbit-1:5672/a;amqp://u:p@rabbit-2:5672/b")


def test_the_default_virtual_host_may_be_spelled_two_ways() -> None:
    urls = "amqp://guest:guest@127.0.0.1:5681//;amqp://guest:guest@127.0.0.1:5682/%2F"
    assert len(broker_urls(urls)) == 2


def test_address_is_host_and_port_only() -> None:
    assert address(ONE) == "rabbit-1:5672"
    assert address("amqp://u:secret@rabbit-3/%2F") == "rabbit-3:5672"
    assert address("amqps://u:secret@rabbit-3/%2F") == "rabbit-3:5671"


def test_failover_order_is_a_permutation_that_varies_between_instances() -> None:
    urls = THREE.split(";")
    rng = random.Random(7)
    orders = [failover_order(urls, rng) for _ in range(60)]
    assert all(sorted(order) == sorted(urls) for order in orders)
    assert {order[0] for order in orders} == set(urls)


def test_default_connection_name_says_which_program_and_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connection.sys, "argv", ["/venv/bin/accounts", "relay", "--verbose"])
    monkeypatch.setattr(connection.os, "getpid", lambda: 4242)
    monkeypatch.setattr(connection.socket, "gethostname", lambda: "web-1")
    assert default_connection_name() == "accounts relay (pid 4242 on web-1)"


def test_default_connection_name_leaves_options_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection.sys, "argv", ["/venv/bin/accounts-web", "--port", "8000"])
    assert default_connection_name().startswith("accounts-web (pid ")


def test_default_connection_name_of_python_dash_m_is_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connection.sys, "argv", ["/venv/lib/notifications/__main__.py", "consume"])
    assert default_connection_name().startswith("notifications consume (pid ")


def test_addresses_lists_host_and_port_of_each_broker_only() -> None:
    url = "amqp://a:pw@rabbit-1:5681/v;amqps://b:pw@rabbit-2/v; "
    assert addresses(url) == "rabbit-1:5681,rabbit-2:5671"
    assert addresses(["amqp://a:pw@h//"]) == "h:5672"
