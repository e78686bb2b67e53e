"""Run handlers against their one-record handlers: the same records, applied both ways, must leave the same state.

Each side gets a fresh schema of the service, seeded alike; the records are applied there in one batch, once by
the handler record by record and once by the run handler in one go. What the schemas then hold (every table,
the outbox included) is compared, less what differs between any two runs: serial ids, times from the clock, fresh
event ids. The run handler is watched too: if it failed, the processor's fallback would make the two sides agree.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from pydantic import BaseModel

from dealreg_devstack.provision import Stack
from dealreg_shared.consumer import Handler, Incoming, RecordProcessor, RetryPolicy, RunHandler
from dealreg_shared.db import Conn, create_pool, migrate, service_migrations
from dealreg_shared.envelope import decode_event, new_event
from dealreg_shared.outbox import Outbox
from dealreg_shared.topics import Topic
from tests.conftest import consumer_record, unique

# what differs between two applications of the same records: when, and the ids of what is new
_VOLATILE_HEADERS = {"ce_id", "ce_time"}


def record(topic: Topic, type: str, data: BaseModel | dict[str, Any], *, offset: int, key: bytes = b"k") -> Any:
    event, value = new_event(type=type, source="tests", data=data)
    return consumer_record(topic.name, value, event.headers(), offset=offset, key=key)


def incoming_of(topic: Topic, type: str, data: BaseModel | dict[str, Any]) -> tuple[Any, Incoming]:
    """A record and what the processor makes of it, for calling a handler directly (seeding a schema)."""
    rec = record(topic, type, data, offset=0)
    return rec, Incoming(decode_event(rec.value, rec.headers, max_bytes=10**6), rec.value, rec.key, topic.name, 0, 0)


@asynccontextmanager
async def service_schema(stack: Stack, package: str) -> AsyncIterator[asyncpg.Pool]:
    schema = unique("t_run_")
    admin = await asyncpg.connect(stack.admin_dealreg_dsn)
    try:
        await admin.execute(f"create schema {schema}")
        await migrate(admin, schema=schema, migrations=service_migrations(package))
    finally:
        await admin.close()
    pool = await create_pool(stack.admin_dealreg_dsn, schema=schema)
    try:
        yield pool
    finally:
        await pool.close()


def _clock_time(name: str) -> bool:
    """A time read from the clock, or counted from one (protection ends, expiry starts)."""
    return name.endswith(("_at", "_until")) or name == "expiring_from"


def _steady(value: Any) -> Any:
    """A value less its volatile parts: keys naming a time (`*_at`) dropped, JSON text parsed the same way."""
    if isinstance(value, bytes) and value[:1] in (b"[", b"{"):
        value = value.decode()
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return _steady(json.loads(value))
        except ValueError:
            return value
    if isinstance(value, dict):
        return {k: _steady(v) for k, v in value.items() if not _clock_time(k) and k not in _VOLATILE_HEADERS}
    if isinstance(value, list | tuple):
        if len(value) == 2 and value[0] in _VOLATILE_HEADERS:  # an outbox header, [name, base64 value]
            return None
        return [_steady(v) for v in value]
    return value


async def snapshot(pool: asyncpg.Pool) -> dict[str, list[dict[str, Any]]]:
    """Every table of the schema, rows in key order, without serial ids and clock times."""
    tables = [
        r["table_name"]
        for r in await pool.fetch(
            "select table_name from information_schema.tables where table_schema = current_schema() "
            "and table_type = 'BASE TABLE' order by table_name"
        )
    ]
    out: dict[str, list[dict[str, Any]]] = {}
    for table in tables:
        rows = await pool.fetch(f"select * from {table} order by 1")
        out[table] = [
            {k: _steady(v) for k, v in row.items() if k not in ("id", "lease_token") and not _clock_time(k)}
            for row in rows
        ]
    return out


@dataclass
class Watched:
    """A run handler, with what it was given and how it ended."""

    handler: RunHandler
    runs: list[int] = field(default_factory=list)
    failures: list[BaseException] = field(default_factory=list)

    async def __call__(self, conn: Conn, run: Sequence[tuple[Incoming, Outbox]]) -> None:
        self.runs.append(len(run))
        try:
            await self.handler(conn, run)
        except BaseException as exc:
            self.failures.append(exc)
            raise


async def both_ways(
    stack: Stack,
    service: str,
    *,
    seed: Callable[[asyncpg.Pool], Awaitable[None]],
    records: list[Any],
    handler: Handler,
    run_handler: RunHandler,
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, list[dict[str, Any]]]]:
    """The schemas' snapshots after the records were applied record by record, then as one run (which the run
    handler must have applied, all of them, without failing)."""
    watched = Watched(run_handler)
    snapshots = []
    for run in (None, watched):
        async with service_schema(stack, f"dealreg_{service}") as pool:
            await seed(pool)
            processor = RecordProcessor(pool=pool, service=service, retry=RetryPolicy(2, 0.001, 0.01), max_bytes=10**6)
            await processor.process_batch(records, handler, run)
            snapshots.append(await snapshot(pool))
    assert watched.runs == [len(records)], watched.runs
    assert watched.failures == [], watched.failures
    return snapshots[0], snapshots[1]
