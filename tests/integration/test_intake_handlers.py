"""Intake's subscribers on a real Postgres: the partner projection, idempotency, and limits held by the database.

Two pools stand for two intake replicas: their records are processed at the same moment, on separate
connections, so only what Postgres enforces (the per-partner lock, the token bucket row) can keep the limits.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest
from aiokafka.structs import ConsumerRecord

from dealreg_devstack.provision import Stack
from dealreg_devstack.scenario import new_registration
from dealreg_intake.handlers import IntakeHandlers
from dealreg_intake.settings import IntakeConfig, TierLimits
from dealreg_shared.consumer import Handler, RecordProcessor, RetryPolicy
from dealreg_shared.contracts import (
    EventType,
    PartnerApproved,
    PartnerKeysUpdated,
    PartnerStatusChanged,
    PublicKey,
    RegistrationStatusChanged,
    RegistrationSubmitted,
    Status,
)
from dealreg_shared.db import create_pool, migrate, service_migrations
from dealreg_shared.envelope import new_event, utcnow
from dealreg_shared.partner import signed_submission
from dealreg_shared.regions import parse_regions
from dealreg_shared.signing import SigningKey
from dealreg_shared.topics import PARTNERS, REGISTRATION_STATUS, REGISTRATIONS_RECEIVED, REGISTRATIONS_SUBMITTED
from tests.conftest import unique

pytestmark = pytest.mark.integration

CONFIG = IntakeConfig(
    default_limits=TierLimits(submissions_per_minute=6000, burst=1000, max_active_registrations=1000),
    tiers={
        "throttled": TierLimits(submissions_per_minute=0.01, burst=4, max_active_registrations=1000),
        "capped": TierLimits(submissions_per_minute=6000, burst=1000, max_active_registrations=3),
    },
)
_offsets = itertools.count(1)


@dataclass
class Intake:
    """Intake's schema and two replicas' worth of processors on it."""

    schema: str
    pool: asyncpg.Pool
    replicas: list[RecordProcessor]
    handlers: IntakeHandlers

    async def feed(self, topic: str, value: bytes, headers: list[tuple[str, bytes]], *, replica: int = 0) -> None:
        handler: Handler = {
            REGISTRATIONS_SUBMITTED.name: self.handlers.on_registration_submitted,
            PARTNERS.name: self.handlers.on_partner_event,
            REGISTRATION_STATUS.name: self.handlers.on_registration_status,
        }[topic]
        offset = next(_offsets)
        record: ConsumerRecord[Any, Any] = ConsumerRecord(
            topic, offset % 6, offset, 0, 0, b"k", value, None, 1, len(value), headers
        )
        await self.replicas[replica].process(record, handler)

    async def publish(self, topic: str, type: str, data: Any) -> None:
        event, value = new_event(type=type, source="tests", data=data)
        await self.feed(topic, value, event.headers())

    async def submit(self, registration: RegistrationSubmitted | dict[str, Any], key: SigningKey, **kw: Any) -> str:
        """Sign and process; returns the record's ce_id."""
        _, value, headers = signed_submission(registration, key)
        await self.feed(REGISTRATIONS_SUBMITTED.name, value, headers, **kw)
        return dict(headers)["ce_id"].decode()

    async def outbox(self, topic: str) -> list[dict[str, Any]]:
        rows = await self.pool.fetch("select value from outbox where topic = $1 order by id", topic)
        return [json.loads(r["value"]) for r in rows]

    async def answers(self, registration_id: uuid.UUID | str) -> list[tuple[str, str | None]]:
        statuses = await self.outbox(REGISTRATION_STATUS.name)
        return [(s["status"], s["reason_code"]) for s in statuses if s["registration_id"] == str(registration_id)]

    async def forwarded(self, registration_id: uuid.UUID | str) -> int:
        received = await self.outbox(REGISTRATIONS_RECEIVED.name)
        return sum(r["registration_id"] == str(registration_id) for r in received)

    async def dead_letters(self) -> list[asyncpg.Record]:
        return await self.pool.fetch("select value from outbox where topic = $1", REGISTRATIONS_SUBMITTED.dlq.name)


@pytest.fixture
async def intake(stack: Stack) -> AsyncIterator[Intake]:
    schema = unique("t_intake_")
    admin = await asyncpg.connect(stack.admin_dealreg_dsn)
    try:
        await admin.execute(f"create schema {schema}")
        await migrate(admin, schema=schema, migrations=service_migrations("dealreg_intake"))
    finally:
        await admin.close()
    pools = [await create_pool(stack.admin_dealreg_dsn, schema=schema, max_size=10) for _ in range(2)]
    handlers = IntakeHandlers(config=CONFIG, regions=parse_regions(""))
    replicas = [
        RecordProcessor(pool=p, service="intake", retry=RetryPolicy(3, 0.001, 0.01), max_bytes=256 * 1024)
        for p in pools
    ]
    yield Intake(schema, pools[0], replicas, handlers)
    for pool in pools:
        await pool.close()


async def approve(
    intake: Intake, *, tier: str = "gold", keys: list[SigningKey] | None = None
) -> tuple[str, SigningKey]:
    partner_id = unique("p-")
    key = SigningKey.generate("k1")
    await intake.publish(
        PARTNERS.name,
        EventType.PARTNER_APPROVED,
        PartnerApproved(
            partner_id=partner_id,
            application_id=uuid.uuid4(),
            company_name="Northwind Traders Ltd",
            domain="northwind.co.uk",
            tier=tier,
            region="emea",
            contacts=[],
            public_keys=[PublicKey(key_id=k.key_id, public_key=k.public_key_b64url) for k in keys or [key]],
        ),
    )
    return partner_id, (keys or [key])[0]


def registration(partner_id: str) -> RegistrationSubmitted:
    name = unique("contoso")
    return new_registration(
        partner_id, company="Contoso GmbH", domain=f"{name}.de", country="DE", contact_email=f"jana@{name}.de"
    )


async def test_an_approved_partners_signed_registration_is_stored_answered_and_forwarded_once(intake: Intake) -> None:
    partner_id, key = await approve(intake)
    reg = registration(partner_id)
    await intake.submit(reg, key)
    assert await intake.answers(reg.registration_id) == [("received", None)]
    assert await intake.forwarded(reg.registration_id) == 1
    [forwarded] = [r for r in await intake.outbox(REGISTRATIONS_RECEIVED.name)]
    assert forwarded["customer_key"] == reg.customer.domain and forwarded["region"] == "emea"


async def test_a_redelivered_record_changes_nothing(intake: Intake) -> None:
    partner_id, key = await approve(intake)
    reg = registration(partner_id)
    _, value, headers = signed_submission(reg, key)
    for replica in (0, 1, 0):  # the same record read again, by either replica
        await intake.feed(REGISTRATIONS_SUBMITTED.name, value, headers, replica=replica)
    assert await intake.answers(reg.registration_id) == [("received", None)]
    assert await intake.forwarded(reg.registration_id) == 1


async def test_the_same_content_resubmitted_in_any_serialization_is_a_no_op(intake: Intake) -> None:
    partner_id, key = await approve(intake)
    reg = registration(partner_id)
    await intake.submit(reg, key)
    await intake.submit(reg, key)  # a partner's retry: a new event id, the same bytes
    reordered = json.loads(json.dumps(reg.model_dump(mode="json"), sort_keys=True))
    value = json.dumps(reordered, indent=1).encode()
    event, _ = new_event(
        type=EventType.REGISTRATION_SUBMITTED,
        source=f"partners/{partner_id}",
        data=reordered,
        extensions={"ce_keyid": "k1", "ce_signature": key.sign(value)},
    )
    await intake.feed(REGISTRATIONS_SUBMITTED.name, value, event.headers())
    assert await intake.answers(reg.registration_id) == [("received", None)]
    assert await intake.forwarded(reg.registration_id) == 1


async def test_changed_content_under_a_known_id_is_refused_and_the_original_stands(intake: Intake) -> None:
    partner_id, key = await approve(intake)
    reg = registration(partner_id)
    await intake.submit(reg, key)
    await intake.submit(reg.model_copy(update={"submitted_at": utcnow()}), key)
    assert await intake.answers(reg.registration_id) == [
        ("received", None),
        ("rejected", "conflicting_resubmission"),
    ]
    assert await intake.forwarded(reg.registration_id) == 1


async def test_the_partner_projection_follows_key_rotation_suspension_and_reinstatement(intake: Intake) -> None:
    partner_id, old_key = await approve(intake)
    new_key = SigningKey.generate("k2")
    await intake.publish(
        PARTNERS.name,
        EventType.PARTNER_KEYS_UPDATED,
        PartnerKeysUpdated(
            partner_id=partner_id, public_keys=[PublicKey(key_id="k2", public_key=new_key.public_key_b64url)]
        ),
    )
    retired, rotated = registration(partner_id), registration(partner_id)
    await intake.submit(retired, old_key)
    await intake.submit(rotated, new_key)
    assert await intake.answers(retired.registration_id) == [("rejected", "unauthenticated")]
    assert await intake.answers(rotated.registration_id) == [("received", None)]

    await intake.publish(PARTNERS.name, EventType.PARTNER_SUSPENDED, PartnerStatusChanged(partner_id=partner_id))
    while_suspended = registration(partner_id)
    await intake.submit(while_suspended, new_key)
    assert await intake.answers(while_suspended.registration_id) == [("rejected", "partner_inactive")]

    await intake.publish(PARTNERS.name, EventType.PARTNER_REINSTATED, PartnerStatusChanged(partner_id=partner_id))
    reinstated = registration(partner_id)
    await intake.submit(reinstated, new_key)
    assert await intake.answers(reinstated.registration_id) == [("received", None)]


async def test_partner_events_for_a_partner_intake_never_saw_are_ignored_not_dead_lettered(intake: Intake) -> None:
    stranger = unique("p-")
    await intake.publish(PARTNERS.name, EventType.PARTNER_SUSPENDED, PartnerStatusChanged(partner_id=stranger))
    await intake.publish(
        PARTNERS.name,
        EventType.PARTNER_KEYS_UPDATED,
        PartnerKeysUpdated(partner_id=stranger, public_keys=[PublicKey(key_id="k1", public_key="A" * 43)]),
    )
    assert await intake.pool.fetchval("select count(*) from outbox") == 0
    assert await intake.pool.fetchval("select count(*) from partners where partner_id = $1", stranger) == 0


async def test_a_partner_cannot_submit_in_another_partners_name_even_with_the_same_key_id(intake: Intake) -> None:
    victim, _ = await approve(intake)
    _, attacker_key = await approve(intake)  # its own key is also called k1
    forged = registration(victim)
    await intake.submit(forged, attacker_key)
    assert await intake.answers(forged.registration_id) == [("rejected", "unauthenticated")]
    assert await intake.pool.fetchval("select count(*) from registrations where partner_id = $1", victim) == 0


async def test_the_rate_limit_holds_when_two_replicas_take_one_partners_flood_at_once(intake: Intake) -> None:
    partner_id, key = await approve(intake, tier="throttled")  # a burst of 4, then almost nothing
    flood = [registration(partner_id) for _ in range(12)]
    await asyncio.gather(*(intake.submit(reg, key, replica=i % 2) for i, reg in enumerate(flood)))
    answers = [a for reg in flood for a in await intake.answers(reg.registration_id)]
    assert sorted(answers, key=str) == sorted([("received", None)] * 4 + [("rejected", "rate_limited")] * 8, key=str)
    # the partner's next try is limited too: the bucket is empty for everyone, not per replica
    late = registration(partner_id)
    await intake.submit(late, key, replica=1)
    assert await intake.answers(late.registration_id) == [("rejected", "rate_limited")]


async def test_the_capacity_cap_holds_when_two_replicas_take_one_partners_submissions_at_once(intake: Intake) -> None:
    partner_id, key = await approve(intake, tier="capped")  # at most 3 active registrations
    wave = [registration(partner_id) for _ in range(10)]
    await asyncio.gather(*(intake.submit(reg, key, replica=i % 2) for i, reg in enumerate(wave)))
    answers = {reg.registration_id: await intake.answers(reg.registration_id) for reg in wave}
    received = [rid for rid, a in answers.items() if a == [("received", None)]]
    assert len(received) == 3
    assert all(a == [("rejected", "capacity_exceeded")] for rid, a in answers.items() if rid not in received)
    assert await intake.pool.fetchval("select count(*) from registrations where partner_id = $1", partner_id) == 3


async def status_event(registration_id: uuid.UUID, partner_id: str, status: Status, stage: Any) -> Any:
    return RegistrationStatusChanged(
        registration_id=registration_id,
        partner_id=partner_id,
        status=status,
        stage=stage,
        partner_message="-",
        occurred_at=utcnow(),
    )


async def test_a_registration_rejected_or_expired_later_frees_its_partners_capacity(intake: Intake) -> None:
    partner_id, key = await approve(intake, tier="capped")
    held = [registration(partner_id) for _ in range(3)]
    for reg in held:
        await intake.submit(reg, key)
    blocked = registration(partner_id)
    await intake.submit(blocked, key)
    assert await intake.answers(blocked.registration_id) == [("rejected", "capacity_exceeded")]

    # intake's own answers about a submission never free anything: only later stages' decisions do
    own = await status_event(held[0].registration_id, partner_id, Status.REJECTED, "intake")
    await intake.publish(REGISTRATION_STATUS.name, EventType.REGISTRATION_STATUS_CHANGED, own)
    approved = await status_event(held[0].registration_id, partner_id, Status.APPROVED, "conflict")
    await intake.publish(REGISTRATION_STATUS.name, EventType.REGISTRATION_STATUS_CHANGED, approved)
    still_blocked = registration(partner_id)
    await intake.submit(still_blocked, key)
    assert await intake.answers(still_blocked.registration_id) == [("rejected", "capacity_exceeded")]

    for reg, status in ((held[0], Status.REJECTED), (held[1], Status.EXPIRED)):
        changed = await status_event(reg.registration_id, partner_id, status, "conflict")
        await intake.publish(REGISTRATION_STATUS.name, EventType.REGISTRATION_STATUS_CHANGED, changed)
    freed = [registration(partner_id) for _ in range(3)]
    for reg in freed:
        await intake.submit(reg, key)
    assert [await intake.answers(r.registration_id) for r in freed] == [
        [("received", None)],
        [("received", None)],
        [("rejected", "capacity_exceeded")],
    ]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("customer", "company_name"), "Contoso\x00GmbH"),
        (("customer", "company_name"), "Contoso \ud800"),
        (("opportunity", "description"), "x" * 100_000),
        (("customer", "domain"), "https://contoso.de/\x00"),
        (("customer", "\x00"), "x"),
    ],
)
async def test_hostile_text_from_an_authenticated_partner_is_answered_as_invalid_without_a_database_error(
    intake: Intake, path: tuple[str, str], value: str
) -> None:
    partner_id, key = await approve(intake)
    data = registration(partner_id).model_dump(mode="json")
    data[path[0]][path[1]] = value
    raw = json.dumps(data).encode()  # \u0000 and \ud800 escapes, as a hostile client writes them
    event, _ = new_event(
        type=EventType.REGISTRATION_SUBMITTED,
        source=f"partners/{partner_id}",
        data={},
        extensions={"ce_keyid": "k1", "ce_signature": key.sign(raw)},
    )
    await intake.feed(REGISTRATIONS_SUBMITTED.name, raw, event.headers())
    assert await intake.answers(data["registration_id"]) == [("rejected", "invalid_payload")]
    assert await intake.dead_letters() == []


@pytest.mark.parametrize(
    "data",
    [
        {"registration_id": "x'; drop table registrations; --", "partner_id": "p-x"},
        {"registration_id": str(uuid.uuid4()), "partner_id": "p'; drop table partners; --"},
        {"registration_id": str(uuid.uuid4())},
    ],
)
async def test_a_submission_naming_no_one_to_answer_is_dead_lettered(intake: Intake, data: dict[str, Any]) -> None:
    event, value = new_event(type=EventType.REGISTRATION_SUBMITTED, source="partners/x", data=data)
    await intake.feed(REGISTRATIONS_SUBMITTED.name, value, event.headers())
    assert len(await intake.dead_letters()) == 1
    assert await intake.outbox(REGISTRATION_STATUS.name) == []
    assert await intake.pool.fetchval("select count(*) from registrations") == 0


async def test_another_event_type_on_the_submissions_topic_is_dead_lettered(intake: Intake) -> None:
    partner_id, key = await approve(intake)
    _, value, headers = signed_submission(registration(partner_id), key)
    headers = [(k, b"registration.decided" if k == "ce_type" else v) for k, v in headers]
    await intake.feed(REGISTRATIONS_SUBMITTED.name, value, headers)
    assert len(await intake.dead_letters()) == 1
    assert await intake.outbox(REGISTRATION_STATUS.name) == []


@pytest.mark.parametrize(
    ("hostile", "broken_value"),
    [
        # undecodable bytes carrying a header name that jsonb (where dead letters wait) cannot store as it is
        ([("x-trace\x00", b"1")], b"\xff not json"),
        ([("ce_id", b"abc\x00def")], None),  # an event id no text column can hold
        ([("ce_id", b"x" * 5000)], None),  # nor an index entry
    ],
)
async def test_a_record_with_hostile_headers_is_dead_lettered_at_once_and_keeps_them(
    intake: Intake, hostile: list[tuple[str, bytes]], broken_value: bytes | None
) -> None:
    partner_id, key = await approve(intake)
    _, value, headers = signed_submission(registration(partner_id), key)
    value = broken_value or value
    names = {name for name, _ in hostile}
    headers = [(k, v) for k, v in headers if k not in names] + hostile
    # a dead letter that cannot be written would be retried for ever and stop the partition
    await asyncio.wait_for(intake.feed(REGISTRATIONS_SUBMITTED.name, value, headers), timeout=10)
    [letter] = await intake.pool.fetch(
        "select value, headers::text as headers from outbox where topic = $1", REGISTRATIONS_SUBMITTED.dlq.name
    )
    assert letter["value"] == value
    assert "dlq_error" in letter["headers"]
    assert await intake.outbox(REGISTRATION_STATUS.name) == []
