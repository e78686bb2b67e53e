"""A batch subscriber polls again as soon as a poll finds nothing: no pause on top of the poll's own wait."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from faststream.kafka.subscriber.usecase import BatchSubscriber

from dealreg_shared import kafka
from dealreg_shared.runtime import ServiceRuntime
from dealreg_shared.settings import ServiceSettings
from dealreg_shared.topics import REGISTRATIONS_RECEIVED


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class FakeConsumer:
    """`getmany` as aiokafka's: it waits up to its timeout (here: moves the clock) unless records are there."""

    def __init__(self, clock: FakeClock, answers: list[dict[str, list[str]]], *, waits: bool = True) -> None:
        self.clock, self.answers, self.waits = clock, answers, waits
        self.calls: list[tuple[int, int | None]] = []

    async def getmany(self, *, timeout_ms: int, max_records: int | None) -> dict[str, list[str]]:
        self.calls.append((timeout_ms, max_records))
        answer = self.answers.pop(0)
        if not answer and self.waits:
            self.clock.now += timeout_ms / 1000
        return answer


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(kafka, "_clock", fake)
    return fake


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(kafka.asyncio, "sleep", sleep)
    monkeypatch.setattr(anyio, "sleep", sleep)  # what FastStream's own poll pauses with
    return slept


def subscriber() -> BatchSubscriber:
    broker = kafka.make_broker("127.0.0.1:1", client_id="test")
    return kafka.poll_without_pause(
        broker.subscriber("t", batch=True, group_id="g", batch_timeout_ms=100, max_records=50)
    )


async def test_after_an_empty_poll_that_waited_its_time_the_next_poll_starts_at_once(
    clock: FakeClock, sleeps: list[float]
) -> None:
    sub = subscriber()
    consumer = FakeConsumer(clock, [{}, {"tp0": ["r1"]}])
    assert await sub.get_msg(consumer) == ()  # type: ignore[arg-type]
    assert sleeps == []  # FastStream's own poll sleeps batch_timeout_ms here
    assert await sub.get_msg(consumer) == ("r1",)  # type: ignore[arg-type]
    assert consumer.calls == [(100, 50), (100, 50)]


async def test_an_empty_poll_that_came_back_early_waits_out_its_time(clock: FakeClock, sleeps: list[float]) -> None:
    sub = subscriber()
    consumer = FakeConsumer(clock, [{}], waits=False)
    assert await sub.get_msg(consumer) == ()  # type: ignore[arg-type]
    assert sleeps == [pytest.approx(0.1)]  # never a busy loop


async def test_records_of_several_partitions_come_as_one_batch_in_partition_order(
    clock: FakeClock, sleeps: list[float]
) -> None:
    sub = subscriber()
    consumer = FakeConsumer(clock, [{"tp0": ["a", "b"], "tp1": ["c"]}])
    assert await sub.get_msg(consumer) == ("a", "b", "c")  # type: ignore[arg-type]
    assert sleeps == []


def test_every_subscriber_of_a_service_polls_without_the_pause() -> None:
    runtime = ServiceRuntime(service="intake", settings=ServiceSettings(), package="dealreg_intake")

    async def on_received(*_: Any) -> None:
        return None

    runtime.subscribe(REGISTRATIONS_RECEIVED, on_received)
    [sub] = runtime.broker.subscribers
    assert isinstance(sub, BatchSubscriber)
    assert sub.get_msg.__func__ is kafka._poll_batch  # type: ignore[attr-defined]
