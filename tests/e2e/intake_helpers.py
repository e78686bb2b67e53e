"""What the intake end-to-end tests share: reading answers, publishing raw records, watching intake's processes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from dealreg_devstack.scenario import ScenarioPartner, new_registration
from dealreg_devstack.topicreader import Record, collect
from dealreg_shared.contracts import RegistrationSubmitted
from dealreg_shared.envelope import new_event
from dealreg_shared.signing import SigningKey
from dealreg_shared.topics import REGISTRATION_STATUS, REGISTRATIONS_RECEIVED, REGISTRATIONS_SUBMITTED, Topic
from tests.conftest import unique
from tests.e2e.conftest import Pipeline
from tests.e2e.test_pipeline import statuses_of

SUBMITTED_GROUP = f"dealreg-intake.{REGISTRATIONS_SUBMITTED.name}"  # the runtime names groups service.topic


def registration_for(partner_id: str) -> RegistrationSubmitted:
    """A registration of a customer no other test uses."""
    name = unique("cust")
    return new_registration(
        partner_id, company=f"Customer {name}", domain=f"{name}.com", country="US", contact_email=f"buyer@{name}.com"
    )


def signed_raw(partner_id: str, value: bytes, key: SigningKey | None) -> list[tuple[str, bytes]]:
    """Headers of a submission whose value is exactly `value`, signed by `key` (or not signed at all)."""
    extensions = {"ce_keyid": key.key_id, "ce_signature": key.sign(value)} if key else {}
    event, _ = new_event(type="registration.submitted", source=f"partners/{partner_id}", data={}, extensions=extensions)
    return event.headers()


async def send(p: Pipeline, value: bytes, headers: list[tuple[str, bytes]], *, key: bytes, partition: int) -> None:
    await p.producer.send_and_wait(
        REGISTRATIONS_SUBMITTED.name, value=value, key=key, headers=headers, partition=partition
    )


async def answers(p: Pipeline, registration_ids: Iterable[uuid.UUID | str], *, each: int = 1) -> dict[str, list[Any]]:
    """Intake's answers (status events of stage intake) per registration, once each has at least `each`."""
    wanted = [str(r) for r in registration_ids]

    def intake_statuses(records: list[Any], rid: str) -> list[dict[str, Any]]:
        return [s for s in statuses_of(records, rid) if s["stage"] == "intake"]

    records = await collect(
        p.stack.kafka_bootstrap,
        REGISTRATION_STATUS,
        until=lambda rs: all(len(intake_statuses(rs, rid)) >= each for rid in wanted),
        timeout_s=60,
    )
    return {rid: [(s["status"], s["reason_code"]) for s in intake_statuses(records, rid)] for rid in wanted}


async def admin_fetchval(p: Pipeline, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(p.stack.admin_dealreg_dsn)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def nothing_went_past_intake(p: Pipeline, registration_ids: list[str]) -> None:
    """None of these registrations was stored, forwarded, or seen by vetting."""
    ids = [uuid.UUID(r) for r in registration_ids]
    assert (
        await admin_fetchval(p, "select count(*) from intake.registrations where registration_id = any($1)", ids) == 0
    )
    forwarded = await admin_fetchval(
        p,
        "select count(*) from intake.outbox where topic = $2 "
        "and convert_from(value, 'UTF8')::jsonb->>'registration_id' = any($1)",
        registration_ids,
        REGISTRATIONS_RECEIVED.name,
    )
    assert forwarded == 0
    screened = "select count(*) from vetting.screened_registrations where registration_id = any($1)"
    assert await admin_fetchval(p, screened, ids) == 0


async def group_state(bootstrap: str, group: str) -> tuple[str, int]:
    """The consumer group's state and how many members it has."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="tests-group-watch")
    await admin.start()
    try:
        [response] = await admin.describe_consumer_groups([group])
        described = response.groups[0]
        return described[2], len(described[5])
    finally:
        await admin.close()


def log_events(log_path: Path, *, since: int = 0) -> list[dict[str, Any]]:
    """The JSON log lines a service process wrote after byte `since`."""
    with log_path.open("rb") as log:
        log.seek(since)
        lines = log.read().splitlines()
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except ValueError:
            continue  # a library's plain line
    return events


def partner_of(p: Pipeline, partner: ScenarioPartner) -> list[dict[str, Any]]:
    """What the partner's own webhook endpoint was told, newest last."""
    return [h.json["data"] for h in p.hooks_of(partner)]


async def read_to_end(bootstrap: str, topic: Topic) -> list[Record]:
    """Every record the topic holds now, from the first offset to the end of each partition."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic.name, i) for i in range(topic.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        records: list[Record] = []

        async def behind() -> bool:
            return any([await consumer.position(tp) < ends[tp] for tp in partitions])

        while await behind():
            batch = await consumer.getmany(timeout_ms=1000)
            for items in batch.values():
                records += [
                    Record(
                        r.topic,
                        r.key,
                        r.value or b"",
                        {k: v.decode("utf-8", "replace") for k, v in r.headers or ()},
                        r.offset,
                        r.partition,
                    )
                    for r in items
                ]
        return records
    finally:
        await consumer.stop()
