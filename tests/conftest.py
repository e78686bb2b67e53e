"""Fixtures shared by every layer: the real stack, found in the environment, in containers, or started locally.

Unit tests request none of these and never touch the network.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord

from dealreg_devstack import kafka_local, postgres_local
from dealreg_devstack.provision import Stack
from dealreg_devstack.stack import resolve


class StackControl:
    """Restarting the broker and the database under the running services (the local stack only)."""

    def __init__(self, how: str) -> None:
        self.how = how

    def _require_local(self) -> None:
        if self.how != "local":
            pytest.fail(f"fault tests restart Kafka and Postgres: they need the local stack, not {self.how}")

    async def restart_kafka(self) -> None:
        self._require_local()
        kafka_local.down()
        await kafka_local.up()

    async def restart_postgres(self) -> None:
        self._require_local()
        postgres_local.down()
        await postgres_local.up()


_found: dict[str, str] = {}


@pytest.fixture(scope="session")
def stack_control(stack: Stack) -> StackControl:
    return StackControl(_found["how"])


@pytest.fixture(scope="session")
async def stack() -> AsyncIterator[Stack]:
    """A provisioned stack. One this session started locally is stopped at the end (DEALREG_KEEP_STACK=1 keeps it)."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # refused connections while the broker starts
    was_running = kafka_local.running() and postgres_local.running()
    with ExitStack() as containers:
        found, how = await resolve(containers)
        _found["how"] = how
        yield found
    if how == "local" and not was_running and os.environ.get("DEALREG_KEEP_STACK") != "1":
        kafka_local.down()
        postgres_local.down()


def unique(prefix: str) -> str:
    """Ids and domains no other test uses, so tests never clean up after each other."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def consumer_record(
    topic: str,
    value: bytes,
    headers: list[tuple[str, bytes]],
    *,
    offset: int = 0,
    partition: int = 0,
    key: bytes | None = b"k",
) -> ConsumerRecord[Any, Any]:
    """A record as the Kafka client hands it to a subscriber."""
    return ConsumerRecord(
        topic=topic,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=value,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(value),
        headers=headers,
    )
