"""Offsets on the real broker: committed a little after the batches are applied, at a stop, and never past a batch
that failed (it is read again)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from dealreg_devstack.procs import wait_until
from dealreg_devstack.provision import Stack
from dealreg_shared.kafka import DeferredCommits, ensure_topics, make_producer, rewind
from dealreg_shared.topics import Topic
from tests.conftest import unique

pytestmark = pytest.mark.integration


class Topical:
    """A topic of the test's own (one partition) holding `count` records, and a group to read it in."""

    def __init__(self, stack: Stack, count: int) -> None:
        marker = unique("commits-")
        self.stack, self.count = stack, count
        self.topic = Topic(f"tests.commits.{marker}", 1, "marker", "offset commits test")
        self.tp = TopicPartition(self.topic.name, 0)
        self.group = f"tests-{marker}"

    async def fill(self) -> None:
        await ensure_topics(self.stack.kafka_bootstrap, [self.topic])
        producer = make_producer(self.stack.kafka_bootstrap, client_id="tests-commits")
        await producer.start()
        try:
            for i in range(self.count):
                await producer.send(self.topic.name, value=f"r{i}".encode(), key=b"k")
            await producer.flush()
        finally:
            await producer.stop()

    async def consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            self.topic.name,
            bootstrap_servers=self.stack.kafka_bootstrap,
            group_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        await consumer.start()
        return consumer

    async def committed(self) -> int | None:
        """The group's committed offset, as a consumer joining it would start from."""
        reader = AIOKafkaConsumer(bootstrap_servers=self.stack.kafka_bootstrap, group_id=self.group)
        await reader.start()
        try:
            reader.assign([self.tp])
            committed: int | None = await reader.committed(self.tp)
            return committed
        finally:
            await reader.stop()


async def batches(consumer: AIOKafkaConsumer, count: int, size: int) -> AsyncIterator[list[Any]]:
    """The topic's first `count` records, `size` at a time."""
    read = 0
    while read < count:
        got = await consumer.getmany(timeout_ms=1000, max_records=min(size, count - read))
        for records in got.values():
            read += len(records)
            yield records


@pytest.fixture
async def topical(stack: Stack) -> Topical:
    t = Topical(stack, 30)
    await t.fill()
    return t


async def test_applied_batches_are_committed_together_within_the_interval_not_one_by_one(topical: Topical) -> None:
    commits = DeferredCommits(interval_s=0.2)
    consumer = await topical.consumer()
    calls: list[dict[TopicPartition, int]] = []
    commit = consumer.commit

    async def counted(offsets: dict[TopicPartition, int]) -> None:
        calls.append(offsets)
        await commit(offsets)

    consumer.commit = counted  # type: ignore[method-assign]
    committing = asyncio.create_task(commits.run())
    try:
        applied = 0
        async for records in batches(consumer, topical.count, 3):
            commits.applied(consumer, records)
            applied += 1

        async def all_committed() -> bool:
            return await topical.committed() == topical.count

        await wait_until(all_committed, timeout_s=10, what="the applied offsets committed")
    finally:
        committing.cancel()
        await consumer.stop()
    assert applied == 10
    assert 1 <= len(calls) < applied, calls  # a commit per interval, not per batch
    assert calls[-1] == {topical.tp: topical.count}


async def test_a_consumer_commits_what_it_applied_as_it_stops(topical: Topical) -> None:
    commits = DeferredCommits(interval_s=3600)  # no periodic commit in this test's time: only the stop's
    consumer = await topical.consumer()
    try:
        async for records in batches(consumer, 12, 4):
            commits.applied(consumer, records)
        assert await topical.committed() is None  # nothing yet: the interval has not passed
    finally:
        await consumer.stop()
    assert await topical.committed() == 12  # where the group goes on, after a deploy or a scale-out


async def test_a_batch_that_failed_is_read_again_and_nothing_past_what_was_applied_is_committed(
    topical: Topical,
) -> None:
    commits = DeferredCommits(interval_s=3600)
    consumer = await topical.consumer()
    try:
        [first] = [b async for b in batches(consumer, 5, 5)]
        commits.applied(consumer, first)
        [failed] = [b async for b in batches(consumer, 5, 5)]  # its handler raised: not applied
        rewind(consumer, failed)
        [again] = [b async for b in batches(consumer, 5, 5)]
    finally:
        await consumer.stop()
    assert [r.offset for r in failed] == [r.offset for r in again] == [5, 6, 7, 8, 9]
    assert await topical.committed() == 5
