"""The test kit with ``async def`` handlers, and the redelivery helpers."""

import asyncio
import re
from pathlib import Path
from typing import Any

import pytest

from signup_contracts import Envelope, UserSignedUp
from signup_contracts.testing import (
    AsyncHandlerInRunningLoopError,
    InMemoryBroker,
    aassert_effect_once,
    aredeliver,
    arun_handler,
    assert_effect_once,
    redeliver,
    run_handler,
    space_provisioned,
    user_signed_up,
)


async def provision(event: Envelope[UserSignedUp]) -> Envelope[Any]:
    await asyncio.sleep(0)  # a real suspension point: the loop must run it
    return event.caused(space_provisioned(user_id=event.data.user_id).data, producer="p")


def test_the_broker_runs_an_async_handler_from_synchronous_code() -> None:
    broker, seen = InMemoryBroker(), list[str]()

    async def welcome(event: Envelope[UserSignedUp]) -> None:
        await asyncio.sleep(0)
        seen.append(event.data.email)

    broker.subscribe("accounts.*", welcome)
    broker.subscribe("accounts.*", provision)
    broker.publish(user_signed_up(email="grace@example.com"))
    assert seen == ["grace@example.com"]
    assert [e.type for e in broker.published_with("p.*")] == ["SpaceProvisioned"]


def test_run_handler_returns_what_an_async_handler_returned() -> None:
    signup = user_signed_up()
    [published] = run_handler(provision, signup)
    assert published.data.user_id == signup.data.user_id


def test_inside_a_running_loop_the_awaitable_forms_run_async_handlers() -> None:
    async def scenario() -> tuple[list[Envelope[Any]], list[str]]:
        broker, order = InMemoryBroker(), list[str]()

        async def first(event: Envelope[Any]) -> None:
            await asyncio.sleep(0)
            order.append("first")
            await broker.apublish(space_provisioned())  # publishing from a handler: queued

        broker.subscribe("accounts.#", first)
        broker.subscribe("#", lambda event: order.append(event.type))
        await broker.apublish(user_signed_up())
        return await arun_handler(provision, user_signed_up()), order

    published, order = asyncio.run(scenario())
    assert [e.type for e in published] == ["SpaceProvisioned"]
    assert order == ["first", "UserSignedUp", "SpaceProvisioned"]


def test_the_synchronous_form_inside_a_running_loop_says_what_to_use() -> None:
    async def scenario() -> None:
        run_handler(provision, user_signed_up())

    with pytest.raises(AsyncHandlerInRunningLoopError, match="arun_handler"):
        asyncio.run(scenario())


def test_redeliver_hands_the_same_message_again_and_records_failures() -> None:
    seen: list[Any] = []

    def flaky(event: Envelope[UserSignedUp]) -> None:
        seen.append(event.id)
        if len(seen) == 1:
            raise ConnectionError("database went away")

    signup = user_signed_up()
    result = redeliver(flaky, signup, times=3)
    assert seen == [signup.id] * 3
    assert [d.succeeded for d in result.deliveries] == [False, True, True]
    assert [type(e) for e in result.errors] == [ConnectionError]


class Repository:
    """A consumer's fake persistence with an inbox, as a consuming team would write it."""

    def __init__(self, deduplicate: bool) -> None:
        self.deduplicate, self.seen, self.welcomed = deduplicate, set[Any](), list[str]()

    def welcome(self, event: Envelope[UserSignedUp]) -> None:
        if self.deduplicate and event.id in self.seen:
            return
        self.seen.add(event.id)
        self.welcomed.append(event.data.email)


def test_assert_effect_once_passes_for_a_deduplicating_consumer() -> None:
    repo = Repository(deduplicate=True)
    result = assert_effect_once(repo.welcome, user_signed_up(), lambda: list(repo.welcomed))
    assert result.first_effect == result.last_effect == ["ada@example.com"]


def test_assert_effect_once_catches_a_consumer_that_repeats_its_effect() -> None:
    repo = Repository(deduplicate=False)
    with pytest.raises(AssertionError, match=r"effect changed .* deduplicate on event\.id"):
        assert_effect_once(repo.welcome, user_signed_up(), lambda: len(repo.welcomed))


def test_assert_effect_once_catches_a_consumer_that_publishes_again() -> None:
    repo = Repository(deduplicate=True)

    def handler(event: Envelope[UserSignedUp]) -> Envelope[Any]:
        repo.welcome(event)
        return event.caused(space_provisioned().data, producer="p")

    with pytest.raises(AssertionError, match=r"published again.*SpaceProvisioned \(delivery 2\)"):
        assert_effect_once(handler, user_signed_up(), lambda: len(repo.welcomed))


def test_assert_effect_once_after_a_failed_first_delivery() -> None:
    repo, calls = Repository(deduplicate=True), list[int]()

    def crashes_once_after_the_work(event: Envelope[UserSignedUp]) -> None:
        repo.welcome(event)
        calls.append(1)
        if len(calls) == 1:
            raise TimeoutError("ack lost")

    result = assert_effect_once(crashes_once_after_the_work, user_signed_up(), repo.welcomed.copy)
    assert len(result.errors) == 1 and result.last_effect == ["ada@example.com"]


def test_assert_effect_once_fails_when_the_last_delivery_fails() -> None:
    def always(event: Envelope[Any]) -> None:
        raise ValueError("bad")

    with pytest.raises(AssertionError, match="last of 2 deliveries failed"):
        assert_effect_once(always, user_signed_up(), lambda: None)
    with pytest.raises(ValueError, match="at least 1"):
        redeliver(always, user_signed_up(), times=0)


def test_the_async_redelivery_helpers() -> None:
    repo = Repository(deduplicate=False)

    async def welcome(event: Envelope[UserSignedUp]) -> None:
        await asyncio.sleep(0)
        repo.welcome(event)

    async def scenario() -> None:
        result = await aredeliver(welcome, user_signed_up(), times=2)
        assert len(result.deliveries) == 2 and not result.errors
        with pytest.raises(AssertionError, match="effect changed"):
            await aassert_effect_once(welcome, user_signed_up(), lambda: len(repo.welcomed))

    asyncio.run(scenario())
    repo.deduplicate = True
    assert_effect_once(welcome, user_signed_up(), lambda: len(repo.welcomed))  # sync form too


def test_the_readme_redelivery_example_runs() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    [example] = [
        block
        for block in re.findall(r"```python\n(.*?)```", readme, re.DOTALL)
        if "assert_effect_once(" in block
    ]
    namespace: dict[str, Any] = {}
    exec(compile(example, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    assert namespace["sent"] == ["ada@example.com"]
