"""PostgreSQL and RabbitMQ in containers for the tests, where a Docker engine answers.

A pytest plugin of its own: ``signup_shared.pytest_servers`` registers it only when the server
selection needs containers, so machines without Docker never import testcontainers.
"""

from typing import Any

from testcontainers.community.postgres import PostgresContainer
from testcontainers.community.rabbitmq import RabbitMqContainer

POSTGRES_IMAGE = "postgres:15-alpine"
RABBITMQ_IMAGE = "rabbitmq:3.10-management"


class TestContainers:
    """Containers started for one test session, stopped at its end."""

    __test__ = False

    def __init__(self) -> None:
        self._running: list[Any] = []

    def postgres(self) -> str:
        container = PostgresContainer(
            POSTGRES_IMAGE,
            username="postgres",
            password="postgres",  # noqa: S106 a throwaway container of one test session
            driver="psycopg",
        )
        container.start()
        self._running.append(container)
        url: str = container.get_connection_url()
        return url.rsplit("/", 1)[0]

    def rabbitmq(self) -> tuple[str, str]:
        """The AMQP URL and the management API URL of a fresh broker."""
        container = RabbitMqContainer(RABBITMQ_IMAGE).with_exposed_ports(15672)
        container.start()
        self._running.append(container)
        host = container.get_container_host_ip()
        amqp = f"amqp://guest:guest@{host}:{container.get_exposed_port(5672)}//"
        management = f"http://guest:guest@{host}:{container.get_exposed_port(15672)}"
        return amqp, management

    def stop(self) -> None:
        while self._running:
            self._running.pop().stop()


SESSION = TestContainers()


def pytest_unconfigure() -> None:
    SESSION.stop()
