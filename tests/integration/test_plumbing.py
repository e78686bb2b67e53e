"""The exactly-once plumbing on the real stack: inbox, outbox relay to Kafka, dead letters, retries."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from aiokafka.structs import ConsumerRecord

from dealreg_devstack.procs import wait_until
from dealreg_devstack.provision import Stack
from dealreg_devstack.topicreader import collect
from dealreg_shared.consumer import DLQ_VALUE_MAX_BYTES, Incoming, PoisonRecord, RecordProcessor, RetryPolicy
from dealreg_shared.contracts import DecisionRefused, EventType
from dealreg_shared.db import Conn
from dealreg_shared.envelope import new_event, utcnow
from dealreg_shared.kafka import ensure_topics, make_producer
from dealreg_shared.outbox import (
    _NEXT_SQL,
    TO_PUBLISH,
    Outbox,
    OutboxRelay,
    OutgoingRecord,
    insert_outbox,
)
from dealreg_shared.topics import REGISTRATION_DECISIONS, REGISTRATION_STATUS, Topic
from tests.conftest import consumer_record, unique
from tests.integration.conftest import Plumbing
from tests.integration.plans import buffers_prepared

pytestmark = pytest.mark.integration


def record_of(value: bytes, headers: list[tuple[str, bytes]], *, offset: int = 7) -> ConsumerRecord[Any, Any]:
    return consumer_record(REGISTRATION_DECISIONS.name, value, headers, offset=offset)


def refused_event(subject: str) -> tuple[list[tuple[str, bytes]], bytes]:
    event, value = new_event(
        type=EventType.DECISION_REFUSED,
        source="tests",
        data=DecisionRefused(
            decision_id=uuid.uuid4(), subject_id=subject, decision="approve", reason="r", occurred_at=utcnow()
        ),
    )
    return event.headers(), value


def processor(p: Plumbing, max_attempts: int = 3) -> RecordProcessor:
    return RecordProcessor(pool=p.pool, service="tests", retry=RetryPolicy(max_attempts, 0.001, 0.01), max_bytes=10_000)


async def outbox_rows(p: Plumbing) -> list[asyncpg.Record]:
    return await p.pool.fetch("select topic, key, value, headers::text as headers from outbox order by id")


@asynccontextmanager
async def relaying(plumbing: Plumbing, stack: Stack) -> AsyncIterator[None]:
    """The outbox relay on the plumbing's schema, as a service runs it, stopped gracefully afterwards."""
    producer = make_producer(stack.kafka_bootstrap, client_id="tests-relay")
    await producer.start()
    relay = OutboxRelay(dsn=plumbing.dsn, schema=plumbing.schema, producer=producer, idle_s=0.1)
    task = asyncio.create_task(relay.run())
    try:
        yield
    finally:
        relay.request_stop()
        await asyncio.wait_for(task, 10)
        await producer.stop()


async def own_topic(stack: Stack, prefix: str) -> tuple[str, Topic]:
    """A marker and a topic of the test's own: test events must not reach the services' topics."""
    marker = unique(prefix)
    topic = Topic(f"tests.relay.{marker}", 1, "marker", "relay test")
    await ensure_topics(stack.kafka_bootstrap, [topic])
    return marker, topic


async def test_a_redelivered_event_changes_nothing_the_second_time(plumbing: Plumbing) -> None:
    calls: list[str] = []

    async def handler(conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        calls.append(incoming.event.id)
        outbox.emit(
            REGISTRATION_STATUS, key="r1", type="test.emitted", data=DecisionRefused.model_validate(incoming.event.data)
        )

    headers, value = refused_event("s1")
    proc = processor(plumbing)
    await proc.process(record_of(value, headers, offset=1), handler)
    await proc.process(record_of(value, headers, offset=1), handler)
    assert len(calls) == 1
    rows = await outbox_rows(plumbing)
    assert [r["topic"] for r in rows] == [REGISTRATION_STATUS.name]


async def test_published_events_leave_the_outbox_and_a_published_dead_letter_stays_to_dedupe_its_source(
    plumbing: Plumbing, stack: Stack
) -> None:
    marker, topic = await own_topic(stack, "gone-")
    events = [OutgoingRecord(topic.name, marker.encode(), f"event {i}".encode(), []) for i in range(3)]
    dead_letter = OutgoingRecord(topic.name, marker.encode(), b"dead letter", [], dedupe_key=f"dlq:{marker}:0:42")
    async with plumbing.pool.acquire() as conn, conn.transaction():
        await insert_outbox(conn, [*events, dead_letter])

    async with relaying(plumbing, stack):
        records = await collect(stack.kafka_bootstrap, topic, until=lambda rs: len(rs) >= 4, timeout_s=30)

        async def settled() -> bool:  # the relay records what it published once Kafka has acknowledged it
            return bool(await plumbing.pool.fetchval("select count(*) = 1 from outbox where published_at is not null"))

        await wait_until(settled, timeout_s=10, what="the relay's bookkeeping")
        # the same source record dead-lettered again (a redelivery): its kept row refuses it
        async with plumbing.pool.acquire() as conn, conn.transaction():
            await insert_outbox(conn, [dead_letter])
        left = await plumbing.pool.fetch("select value, published_at from outbox")
    assert [r.value for r in records] == [b"event 0", b"event 1", b"event 2", b"dead letter"]
    assert [(r["value"], r["published_at"] is not None) for r in left] == [(b"dead letter", True)]


async def test_a_record_the_broker_can_never_take_is_set_aside_and_the_rest_go_on(
    plumbing: Plumbing, stack: Stack
) -> None:
    marker, topic = await own_topic(stack, "aside-")
    huge = b"A" * 2_000_000  # over a produce request (1 MB): it can never be sent, however often it is tried
    async with plumbing.pool.acquire() as conn, conn.transaction():
        await insert_outbox(
            conn,
            [
                OutgoingRecord(topic.name, marker.encode(), b"before", []),
                OutgoingRecord(topic.name, marker.encode(), huge, []),
                OutgoingRecord(topic.name, marker.encode(), b"after", []),
            ],
        )
    async with relaying(plumbing, stack):
        await collect(stack.kafka_bootstrap, topic, until=lambda rs: len(rs) >= 2, timeout_s=30)
        # the relay goes on: a record committed later goes out too
        async with plumbing.pool.acquire() as conn, conn.transaction():
            await insert_outbox(conn, [OutgoingRecord(topic.name, marker.encode(), b"later", [])])
        records = await collect(stack.kafka_bootstrap, topic, until=lambda rs: len(rs) >= 3, timeout_s=30)

        async def settled() -> bool:  # the relay records what it published once Kafka has acknowledged it
            return bool(await plumbing.pool.fetchval("select count(*) = 1 from outbox"))

        await wait_until(settled, timeout_s=10, what="the relay's bookkeeping")
        left = await plumbing.pool.fetch("select value, published_at, failed_at, error from outbox")
    assert [r.value for r in records] == [b"before", b"after", b"later"]
    [aside] = left  # kept, with why, for operators
    assert aside["value"] == huge and aside["published_at"] is None and aside["failed_at"] is not None
    assert "MessageSizeTooLargeError" in aside["error"]


async def test_undecodable_bytes_become_one_dead_letter_with_the_error_and_source(plumbing: Plumbing) -> None:
    async def handler(conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        raise AssertionError("must not be called for undecodable bytes")

    headers, _ = refused_event("s2")
    proc = processor(plumbing)
    for _ in range(2):  # redelivered: still one dead letter
        await proc.process(record_of(b"\xff\xfenot json", headers, offset=42), handler)
    rows = await outbox_rows(plumbing)
    assert [r["topic"] for r in rows] == [REGISTRATION_DECISIONS.dlq.name]
    assert rows[0]["value"] == b"\xff\xfenot json"
    assert rows[0]["key"] == b"k"
    assert "dlq_error" in rows[0]["headers"] and "dlq_source_offset" in rows[0]["headers"]


async def test_a_record_too_large_for_a_produce_request_is_dead_lettered_cut_with_its_size_and_digest(
    plumbing: Plumbing,
) -> None:
    async def handler(conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        raise AssertionError("must not be called for a record over the size limit")

    headers, _ = refused_event("s-huge")
    huge = b'{"x": "' + b"A" * 2_000_000 + b'"}'
    await processor(plumbing).process(record_of(huge, headers, offset=43), handler)
    [row] = await outbox_rows(plumbing)
    assert row["value"] == huge[:DLQ_VALUE_MAX_BYTES]
    letter = {name: base64.b64decode(value) for name, value in json.loads(row["headers"])}
    assert letter["dlq_value_truncated_from"] == str(len(huge)).encode()
    assert letter["dlq_value_sha256"] == hashlib.sha256(huge).hexdigest().encode()


async def test_a_poison_record_is_dead_lettered_after_bounded_retries(plumbing: Plumbing) -> None:
    attempts: list[int] = []

    async def handler(conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        attempts.append(1)
        raise ValueError("this record can never work")

    headers, value = refused_event("s3")
    await processor(plumbing, max_attempts=3).process(record_of(value, headers, offset=3), handler)
    assert len(attempts) == 3
    rows = await outbox_rows(plumbing)
    assert [r["topic"] for r in rows] == [REGISTRATION_DECISIONS.dlq.name]
    # the failed attempts left no trace in the inbox: a fixed consumer could replay it
    assert await plumbing.pool.fetchval("select count(*) from inbox") == 0


async def test_a_contract_violation_is_dead_lettered_without_retrying(plumbing: Plumbing) -> None:
    attempts: list[int] = []

    async def handler(conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        attempts.append(1)
        raise PoisonRecord("not a decision")

    headers, value = refused_event("s4")
    await processor(plumbing, max_attempts=5).process(record_of(value, headers, offset=4), handler)
    assert len(attempts) == 1
    assert [r["topic"] for r in await outbox_rows(plumbing)] == [REGISTRATION_DECISIONS.dlq.name]


@pytest.mark.parametrize(
    "failure",
    [
        ConnectionRefusedError("database went away"),
        # e.g. the shared lock table full: the server's resource, not the record's fault
        asyncpg.exceptions.OutOfMemoryError("out of shared memory"),
    ],
    ids=["connection", "server-resources"],
)
async def test_a_transient_failure_is_retried_past_max_attempts_and_never_dead_lettered(
    plumbing: Plumbing, failure: Exception
) -> None:
    attempts: list[int] = []

    async def handler(conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        attempts.append(1)
        if len(attempts) <= 6:
            raise failure
        outbox.emit(
            REGISTRATION_STATUS, key="r", type="test.ok", data=DecisionRefused.model_validate(incoming.event.data)
        )

    headers, value = refused_event("s5")
    await processor(plumbing, max_attempts=2).process(record_of(value, headers, offset=5), handler)
    assert len(attempts) == 7
    assert [r["topic"] for r in await outbox_rows(plumbing)] == [REGISTRATION_STATUS.name]


async def test_a_batch_applies_around_its_bad_records_in_order_and_each_event_once(plumbing: Plumbing) -> None:
    """One batch: good records, the same event twice, a record that always fails, undecodable bytes, more good.

    Every good event is applied once and emits in the batch's order; the failing and undecodable records are
    dead-lettered; the failure rolled back nothing of its neighbours."""
    calls: list[str] = []

    async def handler(conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        subject = DecisionRefused.model_validate(incoming.event.data).subject_id
        calls.append(subject)
        if subject == "bad":
            raise ValueError("this record can never work")
        await conn.execute("create table if not exists seen (subject text primary key)")
        await conn.execute("insert into seen values ($1)", subject)
        outbox.emit(
            REGISTRATION_STATUS, key=subject, type="test.ok", data=DecisionRefused.model_validate(incoming.event.data)
        )

    events = {name: refused_event(name) for name in ("a", "b", "bad", "c", "d")}
    batch = [
        record_of(events["a"][1], events["a"][0], offset=10),
        record_of(events["b"][1], events["b"][0], offset=11),
        record_of(events["a"][1], events["a"][0], offset=12),  # the same event again, in the same batch
        record_of(events["bad"][1], events["bad"][0], offset=13),
        record_of(events["c"][1], events["c"][0], offset=14),
        record_of(b"\xff not json", events["c"][0], offset=15),
        record_of(events["d"][1], events["d"][0], offset=16),
    ]
    await processor(plumbing, max_attempts=2).process_batch(batch, handler)

    rows = await outbox_rows(plumbing)
    assert [(r["topic"], r["key"]) for r in rows] == [
        (REGISTRATION_STATUS.name, b"a"),
        (REGISTRATION_STATUS.name, b"b"),
        (REGISTRATION_DECISIONS.dlq.name, b"k"),
        (REGISTRATION_STATUS.name, b"c"),
        (REGISTRATION_DECISIONS.dlq.name, b"k"),
        (REGISTRATION_STATUS.name, b"d"),
    ]
    assert sorted(r["subject"] for r in await plumbing.pool.fetch("select subject from seen")) == ["a", "b", "c", "d"]
    # each good event's effects are committed once, whatever attempts the failure caused around them
    assert await plumbing.pool.fetchval("select count(*) from inbox") == 4
    assert calls.count("bad") >= 2  # its own bounded attempts on the one-record path

    # the whole batch delivered again (the offset was not committed): nothing applied or emitted twice
    calls.clear()
    await processor(plumbing, max_attempts=2).process_batch(batch, handler)
    assert [c for c in calls if c != "bad"] == []
    assert len(await outbox_rows(plumbing)) == len(rows)


async def test_records_the_subscriber_skips_leave_no_inbox_row_and_the_rest_apply_in_order(plumbing: Plumbing) -> None:
    calls: list[str] = []

    async def handler(conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        calls.append(DecisionRefused.model_validate(incoming.event.data).subject_id)

    events = [refused_event(name) for name in ("a", "skip-1", "b", "skip-2", "c")]
    batch = [record_of(value, headers, offset=20 + i) for i, (headers, value) in enumerate(events)]

    def skip(record: ConsumerRecord[Any, Any]) -> bool:
        return record.offset in (21, 23)

    await processor(plumbing).process_batch(batch, handler, skip=skip)
    assert calls == ["a", "b", "c"]
    assert await plumbing.pool.fetchval("select count(*) from inbox") == 3

    calls.clear()  # a batch of skipped records only: nothing is applied or recorded
    await processor(plumbing).process_batch([batch[1], batch[3]], handler, skip=skip)
    assert calls == []
    assert await plumbing.pool.fetchval("select count(*) from inbox") == 3


async def test_a_record_whose_event_cannot_be_stored_is_dead_lettered_and_its_batch_goes_on(plumbing: Plumbing) -> None:
    async def handler(conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        subject = DecisionRefused.model_validate(incoming.event.data).subject_id
        outbox.emit(
            REGISTRATION_STATUS, key=subject, type="test.ok", data=DecisionRefused.model_validate(incoming.event.data)
        )
        if subject == "unstorable":  # a topic name Postgres cannot hold: the batch's one outbox statement fails
            outbox.records.append(OutgoingRecord("bad\x00topic", b"k", b"v", []))

    events = [refused_event(name) for name in ("a", "unstorable", "b", "c")]
    batch = [record_of(value, headers, offset=20 + i) for i, (headers, value) in enumerate(events)]
    await processor(plumbing, max_attempts=2).process_batch(batch, handler)
    rows = await outbox_rows(plumbing)
    assert [(r["topic"], r["key"]) for r in rows] == [
        (REGISTRATION_STATUS.name, b"a"),
        (REGISTRATION_DECISIONS.dlq.name, b"k"),
        (REGISTRATION_STATUS.name, b"b"),
        (REGISTRATION_STATUS.name, b"c"),
    ]


async def test_the_relay_publishes_committed_events_in_order_and_nothing_rolled_back(
    plumbing: Plumbing, stack: Stack
) -> None:
    marker, topic = await own_topic(stack, "relay-")
    committed = Outbox(service="tests")
    for i in range(5):
        committed.emit(
            topic,
            key=marker,
            type=f"test.n{i}",
            data=DecisionRefused(
                decision_id=uuid.uuid4(), subject_id=marker, decision=str(i), reason="", occurred_at=utcnow()
            ),
        )
    rolled_back = Outbox(service="tests")
    rolled_back.emit(
        topic,
        key=marker,
        type="test.rolled-back",
        data=DecisionRefused(
            decision_id=uuid.uuid4(), subject_id=marker, decision="x", reason="", occurred_at=utcnow()
        ),
    )
    async with plumbing.pool.acquire() as conn:
        async with conn.transaction():
            await insert_outbox(conn, committed.records)
        with pytest.raises(RuntimeError):
            async with conn.transaction():
                await insert_outbox(conn, rolled_back.records)
                raise RuntimeError("abort")

    async with relaying(plumbing, stack):
        records = await collect(
            stack.kafka_bootstrap,
            topic,
            until=lambda rs: sum(r.key == marker.encode() for r in rs) >= 5,
            timeout_s=30,
        )
    ours = [r for r in records if r.key == marker.encode()]
    assert [r.headers["ce_type"] for r in ours] == [f"test.n{i}" for i in range(5)]
    assert await plumbing.pool.fetchval("select count(*) from outbox where published_at is null") == 0


async def test_after_a_short_batch_the_relay_waits_for_the_next_commit_and_records_the_batch_with_it(
    plumbing: Plumbing, stack: Stack
) -> None:
    """A batch smaller than the relay's batch size was all the outbox held: the relay does not go round at once
    with a statement that would only record it and find nothing. The next commit's notification wakes it, and one
    statement records the batch and takes the new records; a graceful stop records the last. Each cycle of the
    relay is one `publish_batch` (one statement)."""
    marker, topic = await own_topic(stack, "short-")
    cycles = 0

    class CountingRelay(OutboxRelay):
        async def publish_batch(self, conn: Conn) -> int:
            nonlocal cycles
            cycles += 1
            return await super().publish_batch(conn)

    async def commit(name: str) -> None:
        records = [OutgoingRecord(topic.name, marker.encode(), f"{name}{i}".encode(), []) for i in range(3)]
        async with plumbing.pool.acquire() as conn, conn.transaction():
            await insert_outbox(conn, records)

    async def published(count: int) -> list[bytes]:
        records = await collect(stack.kafka_bootstrap, topic, until=lambda rs: len(rs) >= count, timeout_s=30)
        return [r.value for r in records]

    async def looked_once() -> bool:
        return cycles == 1

    async def left() -> list[bytes]:
        return [r["value"] for r in await plumbing.pool.fetch("select value from outbox order by id")]

    producer = make_producer(stack.kafka_bootstrap, client_id="tests-relay")
    await producer.start()
    relay = CountingRelay(dsn=plumbing.dsn, schema=plumbing.schema, producer=producer, idle_s=60)
    task = asyncio.create_task(relay.run())
    try:
        await wait_until(looked_once, timeout_s=30, what="the relay leading, the outbox empty")
        await commit("a")
        assert await published(3) == [b"a0", b"a1", b"a2"]
        await commit("b")
        assert await published(6) == [b"a0", b"a1", b"a2", b"b0", b"b1", b"b2"]
        # the statement that took b's records recorded a's; b's wait for the next wake
        assert await left() == [b"b0", b"b1", b"b2"]
        assert cycles == 3  # the first look, a's batch, b's: none that found nothing in between
    finally:
        relay.request_stop()
        await asyncio.wait_for(task, 10)
        await producer.stop()
    assert cycles == 4  # the stop's, which recorded b's batch
    assert await left() == []


async def test_the_relays_statements_prepared_on_a_young_outbox_go_by_index_once_it_has_churned(
    plumbing: Plumbing, stack: Stack
) -> None:
    """The relay's connection lives as long as the service and keeps what it prepared, planned while the outbox was
    young (a fresh deployment; every benchmark run). Once thousands of published events have come and gone (dead
    rows until a vacuum), taking the next batch and recording it published must still go by index, not read the
    whole table at every batch until Postgres happens to analyze it."""
    marker, topic = await own_topic(stack, "churn-")
    await plumbing.pool.execute("alter table outbox set (autovacuum_enabled = false)")  # no analyze meanwhile
    producer = make_producer(stack.kafka_bootstrap, client_id="tests-relay")
    await producer.start()
    relay = OutboxRelay(dsn=plumbing.dsn, schema=plumbing.schema, producer=producer)
    conn = await relay.connect()  # the connection the relay publishes on, with its settings
    letters = iter(range(1_000_000))

    async def commit(events: int) -> None:  # events, and a dead letter with them
        dead = OutgoingRecord(topic.name, marker.encode(), b"dead letter", [], dedupe_key=f"dlq:{next(letters)}")
        records = [OutgoingRecord(topic.name, marker.encode(), b"e" * 800, []) for _ in range(events)]
        async with plumbing.pool.acquire() as c, c.transaction():
            await insert_outbox(c, [*records, dead])

    try:
        for _ in range(8):  # past the five custom plans after which Postgres may keep a generic one
            await commit(3)
            assert await relay.publish_batch(conn) == 4
        for _ in range(40):
            await commit(249)
            assert await relay.publish_batch(conn) == 250
        await commit(99)
        assert await relay.publish_batch(conn) == 100  # published; recorded with the next batch's select
        unrecorded = f"select id, dedupe_key is not null as kept from outbox where {TO_PUBLISH}"
        published = await plumbing.pool.fetch(unrecorded)
        gone, kept = [r["id"] for r in published if not r["kept"]], [r["id"] for r in published if r["kept"]]
        await commit(99)
        pages = await plumbing.pool.fetchval("select pg_relation_size('outbox') / 8192")
        cost = await buffers_prepared(conn, _NEXT_SQL, gone, kept, 500)  # run, then rolled back
        assert await relay.publish_batch(conn) == 100  # the batch before recorded, this one published
        assert await relay.publish_batch(conn) == 0  # and recorded: nothing is left to publish
        left = await plumbing.pool.fetchval(f"select count(*) from outbox where {TO_PUBLISH}")
    finally:
        await conn.close()
        await producer.stop()
    assert (len(gone), len(kept), left) == (99, 1, 0)
    # a hundred rows deleted or marked by id and the next hundred found by the partial index: 377 buffers when
    # written; a plan that reads the outbox touches every page of its 10,000 dead rows, 1,273 (the delete went
    # through the dedupe key's index to every row without one, 1,447; all scanned the table once the relay's
    # connection allowed it, 2,708)
    assert pages > 1000
    assert cost < 600, (cost, pages)
