"""The transactional outbox: events are written with the state change, then relayed to Kafka by the service."""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass

import asyncpg
import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
)
from pydantic import BaseModel

from dealreg_shared.db import Conn
from dealreg_shared.envelope import CloudEvent, new_event
from dealreg_shared.metrics import OUTBOX_BACKLOG, OUTBOX_SET_ASIDE
from dealreg_shared.topics import Topic

log = structlog.get_logger(__name__)

# a record still to publish: the relay's select and its backlog count (and the partial index they use, plumbing
# migration 002, says the same)
TO_PUBLISH = "published_at is null and failed_at is null"
_BACKLOG_SQL = f"select count(*) from outbox where {TO_PUBLISH}"  # noqa: S608 (constants only)

# what the broker can never take, whatever the retries: the record itself is wrong for it
UNSENDABLE = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
    CorruptRecordException,
)


@dataclass(frozen=True)
class OutgoingRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]
    dedupe_key: str | None = None


def source_of(service: str) -> str:
    """The `ce_source` of the events a service emits."""
    return f"dealreg/{service}"


class Outbox:
    """The events one unit of work emits; `insert_outbox` writes them in that unit's transaction."""

    def __init__(self, *, service: str, cause: CloudEvent | None = None) -> None:
        self.source = source_of(service)
        self.cause = cause
        self.records: list[OutgoingRecord] = []
        self.events: list[CloudEvent] = []

    def emit(
        self, topic: Topic, *, key: str, type: str, data: BaseModel, correlation_id: str | None = None
    ) -> CloudEvent:
        correlation = correlation_id or (self.cause.correlation_id if self.cause else None)
        event, value = new_event(
            type=type,
            source=self.source,
            data=data,
            correlation_id=correlation,
            causation_id=self.cause.id if self.cause else None,
        )
        self.records.append(OutgoingRecord(topic.name, key.encode(), value, event.headers()))
        self.events.append(event)
        return event


def _encode_headers(headers: list[tuple[str, bytes]]) -> str:
    return json.dumps([[k, base64.b64encode(v).decode()] for k, v in headers])


def _decode_headers(text: str) -> list[tuple[str, bytes]]:
    return [(k, base64.b64decode(v)) for k, v in json.loads(text)]


async def insert_outbox(conn: Conn, records: list[OutgoingRecord]) -> None:
    """One statement for any number of records; their ids (the relay's publishing order) follow the list's."""
    if not records:
        return
    await conn.execute(
        "insert into outbox (topic, key, value, headers, dedupe_key) "
        "select topic, key, value, headers, dedupe_key from unnest($1::text[], $2::bytea[], $3::bytea[], "
        "$4::jsonb[], $5::text[]) with ordinality as r(topic, key, value, headers, dedupe_key, n) order by n "
        "on conflict (dedupe_key) do nothing",
        [r.topic for r in records],
        [r.key for r in records],
        [r.value for r in records],
        [_encode_headers(r.headers) for r in records],
        [r.dedupe_key for r in records],
    )


# Published events leave the outbox (Kafka holds them now): a delete is a small WAL record, where marking them
# wrote each row again with new index entries, and the table no longer grows for ever. Dead letters stay, marked:
# their dedupe key is what keeps a source record that comes again from being dead-lettered twice. The relay says
# which rows are which ($1 to delete, $2 to mark), so both go by id alone: asked "id = any($1) and dedupe_key is
# null" on an outbox never analyzed, Postgres read every row without a dedupe key (all of them) through the dedupe
# key's index to find the batch's hundred.
# One statement records the batch published last and takes the next: one round trip a cycle instead of two (on
# this kind of machine a loopback round trip costs more CPU than most of what a stage does with a record). Its
# select sees the table as it was before the statement's own delete and mark, hence the ids left out.
_NEXT_SQL = (
    "with gone as (delete from outbox where id = any($1::bigint[])), "  # noqa: S608 (constants only)
    "marked as (update outbox set published_at = now() where id = any($2::bigint[])) "
    "select id, topic, key, value, headers::text as headers, dedupe_key is not null as kept from outbox "
    f"where {TO_PUBLISH} and id <> all($1::bigint[]) and id <> all($2::bigint[]) order by id limit $3"
)

# Postgres settings of the relay's connection. Its statements find their rows by index (the unpublished ones by
# their partial index, the published by id), and the outbox is mostly dead rows between vacuums: a plan the
# connection keeps from when the table was young (or from statistics taken mid-burst) and that scans it reads
# every dead row at every batch, while the index paths stay cheap at any size.
RELAY_DB_SETTINGS = {"enable_seqscan": "off"}


class OutboxRelay:
    """Publishes the outbox in commit order. One relay per schema holds the advisory lock; replicas stand by."""

    def __init__(
        self, *, dsn: str, schema: str, producer: AIOKafkaProducer, batch_size: int = 500, idle_s: float = 1.0
    ) -> None:
        self.dsn = dsn
        self.schema = schema
        self.producer = producer
        self.batch_size = batch_size
        self.idle_s = idle_s
        self._wake = asyncio.Event()
        self._stopping = False
        # published, acknowledged by the broker, recorded with the next batch's select: (to delete, to mark)
        self._unrecorded: tuple[list[int], list[int]] = ([], [])

    async def run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            try:
                await self._lead()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox_relay_retrying", error=repr(exc), retry_in_s=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            else:
                backoff = 0.2

    def request_stop(self) -> None:
        """Graceful stop: `run` publishes what is already committed, then returns."""
        self._stopping = True
        self._wake.set()

    async def _lead(self) -> None:
        conn = await self.connect()
        try:
            lock = f"dealreg.outbox.{self.schema}"
            while not await conn.fetchval("select pg_try_advisory_lock(hashtext($1))", lock):
                if self._stopping:
                    return
                await self._sleep_or_wake()
            await conn.add_listener(f"{self.schema}_outbox", lambda *_: self._wake.set())
            log.info("outbox_relay_leading", schema=self.schema)
            while True:
                published = await self.publish_batch(conn)
                if published == 0 and self._stopping:
                    return
                if published < self.batch_size and not self._stopping:
                    # None (or a short batch): that was all the outbox held when it was read. What commits later
                    # wakes the relay (its NOTIFY); the next statement records this batch and takes those, or, with
                    # nothing new, the idle wake's does (within idle_s). Going round at once after a short batch cost
                    # a statement that found nothing, and at moderate rates most batches are short.
                    OUTBOX_BACKLOG.labels(self.schema).set(0)  # all it held is published
                    await self._sleep_or_wake()
        finally:
            await conn.close(timeout=5)

    async def connect(self) -> asyncpg.Connection:
        """The relay's own connection (its advisory lock, its listener, its prepared statements)."""
        settings = {"search_path": self.schema, "application_name": f"dealreg-{self.schema}-outbox"}
        return await asyncpg.connect(self.dsn, server_settings={**settings, **RELAY_DB_SETTINGS})

    async def _set_aside(self, conn: Conn, refused: list[tuple[asyncpg.Record, BaseException]]) -> None:
        """Records the broker can never take: kept with the error, out of the relay's way."""
        await conn.execute(
            "update outbox o set failed_at = now(), error = f.error "
            "from unnest($1::bigint[], $2::text[]) as f(id, error) where o.id = f.id",
            [r["id"] for r, _ in refused],
            [repr(exc)[:2000] for _, exc in refused],
        )
        for r, exc in refused:
            OUTBOX_SET_ASIDE.labels(self.schema).inc()
            log.error(
                "outbox_record_set_aside", outbox_id=r["id"], topic=r["topic"], bytes=len(r["value"]), error=repr(exc)
            )

    async def _sleep_or_wake(self) -> None:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=self.idle_s)
        except TimeoutError:
            pass
        self._wake.clear()

    async def publish_batch(self, conn: Conn) -> int:
        """Records the batch published last, publishes the next in order; how many records it took (0: none left,
        and everything published is recorded)."""
        gone, kept = self._unrecorded
        rows = await conn.fetch(_NEXT_SQL, gone, kept, self.batch_size)
        self._unrecorded = ([], [])
        if len(rows) < self.batch_size:
            OUTBOX_BACKLOG.labels(self.schema).set(len(rows))
        else:
            OUTBOX_BACKLOG.labels(self.schema).set(await conn.fetchval(_BACKLOG_SQL))
        if not rows:
            return 0
        sending: list[tuple[asyncpg.Record, asyncio.Future[object]]] = []
        refused: list[tuple[asyncpg.Record, BaseException]] = []
        for r in rows:
            try:
                future = await self.producer.send(
                    r["topic"], value=r["value"], key=r["key"], headers=_decode_headers(r["headers"])
                )
            except UNSENDABLE as exc:  # refused before it was sent: larger than a produce request
                refused.append((r, exc))
            else:
                sending.append((r, future))
        outcomes = await asyncio.gather(*(f for _, f in sending), return_exceptions=True)
        gone, kept = [], []  # published: to delete; published dead letters: to mark, kept for their dedupe key
        retry: BaseException | None = None
        for (r, _), outcome in zip(sending, outcomes, strict=True):
            if isinstance(outcome, UNSENDABLE):
                refused.append((r, outcome))
            elif isinstance(outcome, BaseException):
                retry = retry or outcome
            else:
                (kept if r["kept"] else gone).append(r["id"])
        # recorded by the next call: at once after a full batch or a retry, otherwise at the next wake (see _lead)
        self._unrecorded = (gone, kept)
        if refused:
            await self._set_aside(conn, refused)
        if retry is not None:  # anything else may pass (the broker away): what is left is tried again
            raise retry
        log.debug("outbox_published", count=len(rows))
        return len(rows)
