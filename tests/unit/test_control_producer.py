"""ControlProducer: records handed over in call order, Faust's commit waits for them."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from streams.control_producer import ControlProducer


class FakeAiokafka:
    def __init__(self) -> None:
        self.sent: list[tuple[str, int, bytes]] = []
        self.futures: list[asyncio.Future[Any]] = []

    async def send(self, topic: str, value: bytes, *, partition: int, headers: Any) -> Any:
        self.sent.append((topic, partition, value))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return future


class FakeFaustProducer:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def flush(self) -> None:
        self.log.append("flush")

    async def commit_transactions(self, *args: Any, **kwargs: Any) -> None:
        self.log.append("commit")


def control_with(fake: FakeAiokafka, failures: list[BaseException]) -> ControlProducer:
    control = ControlProducer("unused:9092", on_failure=failures.append)

    async def started() -> Any:
        return fake

    control._started = started  # type: ignore[method-assign]
    return control


async def test_faust_commits_only_after_every_control_record_is_delivered() -> None:
    fake, failures, log = FakeAiokafka(), [], []
    control = control_with(fake, failures)
    producer = FakeFaustProducer(log)
    control.install_commit_hook(producer)
    control.install_commit_hook(producer)  # idempotent
    for partition in range(3):
        control.send_soon("co-purchases", partition, b"x")
    commit = asyncio.ensure_future(producer.commit_transactions({}, "group"))
    flush = asyncio.ensure_future(producer.flush())
    await asyncio.sleep(0.01)
    assert [p for _, p, _ in fake.sent] == [0, 1, 2]  # in call order
    assert log == []  # neither commit nor flush before delivery
    for future in fake.futures:
        future.set_result(None)
    await asyncio.wait_for(asyncio.gather(commit, flush), 1)
    assert sorted(log) == ["commit", "flush"]
    assert failures == []


async def test_an_undelivered_control_record_fails_the_commit_and_reports() -> None:
    fake, failures, log = FakeAiokafka(), [], []
    control = control_with(fake, failures)
    producer = FakeFaustProducer(log)
    control.install_commit_hook(producer)
    control.send_soon("clock-ticks", 0, b"t")
    await asyncio.sleep(0.01)
    fake.futures[0].set_exception(RuntimeError("broker gone"))
    with pytest.raises(RuntimeError, match="not delivered"):
        await producer.flush()
    assert log == [] and len(failures) == 1
    with pytest.raises(RuntimeError):
        control.send_soon("clock-ticks", 1, b"t")
