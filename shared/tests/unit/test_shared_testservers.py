"""The test-server selection: environment, else local, else testcontainers, else a clear skip."""

import pytest

from signup_shared import testservers
from signup_shared.testservers import CONTAINER, ENVIRONMENT, LOCAL, MISSING, Choice, choose


def never() -> bool:
    raise AssertionError("probe must not be called")


def yes() -> bool:
    return True


def no() -> bool:
    return False


def test_an_environment_variable_wins_without_probing() -> None:
    choice = choose("PostgreSQL", "postgresql://db:5432", "postgresql://local", never, never)
    assert (choice.source, choice.url) == (ENVIRONMENT, "postgresql://db:5432")


def test_local_servers_when_they_answer() -> None:
    choice = choose("RabbitMQ", None, "amqp://guest:guest@127.0.0.1:5672//", yes, never)
    assert (choice.source, choice.url) == (LOCAL, "amqp://guest:guest@127.0.0.1:5672//")


def test_containers_when_nothing_local_answers_but_docker_does() -> None:
    choice = choose("PostgreSQL", "", "postgresql://local", no, yes)
    assert (choice.source, choice.url) == (CONTAINER, None)


def test_missing_says_what_is_missing_in_one_line() -> None:
    choice = choose("RabbitMQ", None, "amqp://guest:secret@127.0.0.1:5672//", no, no)
    assert choice.source == MISSING
    assert "RabbitMQ" in choice.reason and "Docker" in choice.reason
    assert "secret" not in choice.reason and "\n" not in choice.reason


def test_describe_hides_the_password() -> None:
    choice = Choice("RabbitMQ", ENVIRONMENT, "amqp://svc:hunter2@mq:5672/v", "")
    assert choice.describe() == "RabbitMQ: environment (amqp://svc:***@mq:5672/v)"


class FakeContainers:
    def postgres(self) -> str:
        return "postgresql+psycopg://postgres:postgres@localhost:32768"

    def rabbitmq(self) -> tuple[str, str]:
        return "amqp://guest:guest@localhost:32769//", "http://guest:guest@localhost:32770"


def test_resolve_points_the_tests_at_containers() -> None:
    choices = (Choice("PostgreSQL", CONTAINER, None, ""), Choice("RabbitMQ", CONTAINER, None, ""))
    env = testservers.resolve(choices, FakeContainers())
    assert env == {
        "TEST_DATABASE_URL": "postgresql+psycopg://postgres:postgres@localhost:32768",
        "TEST_AMQP_URL": "amqp://guest:guest@localhost:32769//",
        "RABBITMQ_MANAGEMENT_URL": "http://guest:guest@localhost:32770",
    }


def test_resolve_keeps_chosen_urls() -> None:
    choices = (
        Choice("PostgreSQL", LOCAL, "postgresql://l", ""),
        Choice("RabbitMQ", ENVIRONMENT, "amqp://e", ""),
    )
    assert testservers.resolve(choices, None) == {
        "TEST_DATABASE_URL": "postgresql://l",
        "TEST_AMQP_URL": "amqp://e",
    }


def test_resolve_refuses_containers_it_cannot_start() -> None:
    with pytest.raises(RuntimeError):
        testservers.resolve(
            (Choice("PostgreSQL", CONTAINER, None, ""), Choice("RabbitMQ", LOCAL, "amqp://l", "")),
            None,
        )


def test_choose_both_reads_the_test_variables() -> None:
    postgres, rabbitmq = testservers.choose_both(
        {"TEST_DATABASE_URL": "postgresql://x", "TEST_AMQP_URL": "amqp://y"}
    )
    assert (postgres.url, rabbitmq.url) == ("postgresql://x", "amqp://y")
