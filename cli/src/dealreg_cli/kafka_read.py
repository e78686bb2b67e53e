"""Reading topics to their current end (the CLI works from topics, never from a service's schema)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import DefaultPartitioner

from dealreg_shared.topics import by_name


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]

    @property
    def data(self) -> Any:
        try:
            return json.loads(self.value)
        except (ValueError, RecursionError):  # topics can hold hostile records: they are no one's history
            return None


async def read_to_end(bootstrap: str, topic: str) -> list[Record]:
    """Every record the topic holds now (each partition's in offset order)."""
    return [r async for r in scan(bootstrap, topic)]


def partition_of(key: bytes, partitions: int) -> int:
    """Where the services' producers put a record with this key: murmur2 of its bytes, as aiokafka's and the Java
    client's default partitioners do."""
    return int(DefaultPartitioner()(key, list(range(partitions)), []))


async def partition_count(bootstrap: str, topic: str) -> int:
    """The topic's own partition count (an operator may have added some); LookupError for a topic not there."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="dealreg-cli")
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described["error_code"] or not described["partitions"]:
        raise LookupError(f"topic {topic} does not exist")
    return len(described["partitions"])


async def scan(
    bootstrap: str, topic: str, *, key: bytes | None = None, wanted: bytes | None = None
) -> AsyncIterator[Record]:
    """The records the topic holds now, one at a time (each partition's in offset order): what a command keeps is
    all it holds, however long the topic.

    `key`: only the partition the services' producers put that key in (`partition_of`), a topic's records about
    one thing without reading the others'. `wanted`: only records whose value or headers contain these bytes (an
    id), the rest passed over before anything is decoded; a value with JSON escapes is always kept, as its text
    may spell the id otherwise."""
    count = await partition_count(bootstrap, topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        client_id=f"dealreg-cli-{uuid.uuid4().hex[:6]}",
    )
    await consumer.start()
    try:
        partitions = [partition_of(key, count)] if key is not None else list(range(count))
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        remaining = {tp for tp in tps if ends[tp] > 0}
        for tp in tps:
            if ends[tp] > 0 and await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)
        while remaining:
            batch = await consumer.getmany(*remaining, timeout_ms=1000)
            for tp, items in batch.items():
                for r in items:
                    if r.offset >= ends[tp] or (wanted is not None and not _may_hold(r, wanted)):
                        continue
                    headers = {k: v.decode("utf-8", "replace") for k, v in (r.headers or ())}
                    yield Record(r.topic, r.partition, r.offset, r.timestamp, r.key, r.value or b"", headers)
                if await consumer.position(tp) >= ends[tp]:
                    remaining.discard(tp)
    finally:
        await consumer.stop()


def _may_hold(record: Any, wanted: bytes) -> bool:
    value = record.value or b""
    return wanted in value or b"\\u" in value or any(wanted in v for _, v in record.headers or () if v)


async def topic_overview(
    bootstrap: str, topics: list[str], groups: dict[str, list[str]]
) -> tuple[dict[str, int], dict[tuple[str, str], int | None]]:
    """Records held per topic (end minus beginning), and each group's lag on its topic (None: never committed)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="dealreg-cli")
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, client_id="dealreg-cli-status")
    await admin.start()
    await consumer.start()
    try:
        tps = [TopicPartition(t, p) for t in topics for p in range(by_name(t).partitions)]
        ends = await consumer.end_offsets(tps)
        begins = await consumer.beginning_offsets(tps)
        held = {t: sum(ends[tp] - begins[tp] for tp in tps if tp.topic == t) for t in topics}
        lags: dict[tuple[str, str], int | None] = {}
        for topic, group_ids in groups.items():
            for group in group_ids:
                committed = await admin.list_consumer_group_offsets(group)
                mine = {tp: meta.offset for tp, meta in committed.items() if tp.topic == topic}
                lags[(group, topic)] = (
                    sum(max(0, ends.get(tp, 0) - max(offset, 0)) for tp, offset in mine.items()) if mine else None
                )
        return held, lags
    finally:
        await consumer.stop()
        await admin.close()
