"""Reading a topic from the beginning until what we look for is there (for the demo, tests and operators)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer

from dealreg_shared.topics import Topic


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes
    headers: dict[str, str]
    offset: int
    partition: int

    @property
    def data(self) -> Any:
        return json.loads(self.value)


async def collect(
    bootstrap: str, topic: Topic | str, *, until: Callable[[list[Record]], bool], timeout_s: float = 30
) -> list[Record]:
    """All records of the topic (from the start, no group) once `until(records)` holds; TimeoutError otherwise."""
    name = topic if isinstance(topic, str) else topic.name
    consumer = AIOKafkaConsumer(
        name,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        client_id=f"dealreg-reader-{uuid.uuid4().hex[:6]}",
    )
    await consumer.start()
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            batch = await consumer.getmany(timeout_ms=500)
            for items in batch.values():
                for r in items:
                    headers = {k: v.decode("utf-8", "replace") for k, v in (r.headers or ())}
                    records.append(Record(r.topic, r.key, r.value or b"", headers, r.offset, r.partition))
            if until(records):
                return records
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name}: condition not met after {timeout_s:.0f}s ({len(records)} records read)")
    finally:
        await consumer.stop()
