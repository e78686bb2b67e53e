"""Intake's limits on a real Postgres with two replicas at once: rate, capacity, and what frees capacity."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from dealreg_devstack.provision import Stack
from dealreg_shared.contracts import (
    EventType,
    RegistrationStatusChanged,
    Status,
)
from dealreg_shared.db import migrate, service_migrations
from dealreg_shared.envelope import utcnow
from dealreg_shared.topics import REGISTRATION_STATUS
from tests.conftest import unique
from tests.integration.intake_harness import Intake, approve, registration, running_intake

pytestmark = pytest.mark.integration


@pytest.fixture
async def intake(stack: Stack) -> AsyncIterator[Intake]:
    async with running_intake(stack) as harness:
        yield harness


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


async def test_a_retry_of_the_same_content_costs_the_partner_no_submission(intake: Intake) -> None:
    partner_id, key = await approve(intake, tier="throttled")  # a burst of 4
    first = registration(partner_id)
    for _ in range(6):
        await intake.submit(first, key)
    more = [registration(partner_id) for _ in range(3)]
    for reg in more:
        await intake.submit(reg, key)
    assert [await intake.answers(r.registration_id) for r in (first, *more)] == [[("received", None)]] * 4


async def test_the_capacity_cap_holds_when_two_replicas_take_one_partners_submissions_at_once(intake: Intake) -> None:
    partner_id, key = await approve(intake, tier="capped")  # at most 3 active registrations
    wave = [registration(partner_id) for _ in range(10)]
    await asyncio.gather(*(intake.submit(reg, key, replica=i % 2) for i, reg in enumerate(wave)))
    answers = {reg.registration_id: await intake.answers(reg.registration_id) for reg in wave}
    received = [rid for rid, a in answers.items() if a == [("received", None)]]
    assert len(received) == 3
    assert all(a == [("rejected", "capacity_exceeded")] for rid, a in answers.items() if rid not in received)
    assert await intake.pool.fetchval("select count(*) from registrations where partner_id = $1", partner_id) == 3


def status_event(registration_id: uuid.UUID, partner_id: str, status: Status, stage: Any) -> RegistrationStatusChanged:
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
    own = status_event(held[0].registration_id, partner_id, Status.REJECTED, "intake")
    await intake.publish(REGISTRATION_STATUS.name, EventType.REGISTRATION_STATUS_CHANGED, own)
    approved = status_event(held[0].registration_id, partner_id, Status.APPROVED, "conflict")
    await intake.publish(REGISTRATION_STATUS.name, EventType.REGISTRATION_STATUS_CHANGED, approved)
    still_blocked = registration(partner_id)
    await intake.submit(still_blocked, key)
    assert await intake.answers(still_blocked.registration_id) == [("rejected", "capacity_exceeded")]

    for reg, status in ((held[0], Status.REJECTED), (held[1], Status.EXPIRED)):
        changed = status_event(reg.registration_id, partner_id, status, "conflict")
        await intake.publish(REGISTRATION_STATUS.name, EventType.REGISTRATION_STATUS_CHANGED, changed)
    freed = [registration(partner_id) for _ in range(3)]
    for reg in freed:
        await intake.submit(reg, key)
    assert [await intake.answers(r.registration_id) for r in freed] == [
        [("received", None)],
        [("received", None)],
        [("rejected", "capacity_exceeded")],
    ]


async def test_each_partners_active_count_is_kept_as_registrations_come_close_and_reopen(intake: Intake) -> None:
    """Capacity reads a kept count, not `count(*)` at every batch: it must always equal the count."""

    async def kept_and_counted() -> list[tuple[str, int, int]]:
        rows = await intake.pool.fetch(
            "select p.partner_id, coalesce(c.n, 0) as kept, "
            "(select count(*) from registrations r where r.partner_id = p.partner_id and r.active) as counted "
            "from partners p left join partner_active_registrations c using (partner_id) order by 1"
        )
        return [(r["partner_id"], r["kept"], r["counted"]) for r in rows]

    partners = [await approve(intake) for _ in range(3)]
    regs = {pid: [registration(pid) for _ in range(4)] for pid, _ in partners}
    for pid, key in partners:
        for i, reg in enumerate(regs[pid]):
            await intake.submit(reg, key, replica=i % 2)
        await intake.submit(regs[pid][0], key)  # a redelivered submission: stored once, counted once
    assert [(kept, counted) for _, kept, counted in await kept_and_counted()] == [(4, 4)] * 3

    first, second = partners[0][0], partners[1][0]
    closing = [
        (regs[first][0], first, Status.REJECTED),
        (regs[first][1], first, Status.EXPIRED),
        (regs[second][0], second, Status.APPROVED),  # still active
        (regs[second][1], second, Status.REJECTED),
        (regs[second][1], second, Status.REJECTED),  # the same status twice: freed once
    ]
    for reg, pid, status in closing:
        changed = status_event(reg.registration_id, pid, status, "conflict")
        await intake.publish(REGISTRATION_STATUS.name, EventType.REGISTRATION_STATUS_CHANGED, changed)
    # a rejected registration a manager approves after all is active again
    reopened = status_event(regs[first][0].registration_id, first, Status.APPROVED, "conflict")
    await intake.publish(REGISTRATION_STATUS.name, EventType.REGISTRATION_STATUS_CHANGED, reopened)
    third = partners[2][0]
    assert {pid: (kept, counted) for pid, kept, counted in await kept_and_counted()} == {
        first: (3, 3),
        second: (3, 3),
        third: (4, 4),
    }


async def test_upgrading_counts_the_active_registrations_already_stored(stack: Stack) -> None:
    schema = unique("t_intake_")
    migrations = service_migrations("dealreg_intake")
    before = [m for m in migrations if not m.name.endswith("active_counts")]
    admin = await asyncpg.connect(stack.admin_dealreg_dsn)
    try:
        await admin.execute(f"create schema {schema}")
        await migrate(admin, schema=schema, migrations=before)
        await admin.execute(
            f"insert into {schema}.registrations (registration_id, partner_id, content_sha256, customer_key, region, "
            "received_at, data, active) select gen_random_uuid(), 'p-' || (i % 3), '', 'c' || i, 'emea', now(), "
            "'{}', i % 4 <> 0 from generate_series(1, 40) i"
        )
        [applied] = await migrate(admin, schema=schema, migrations=migrations)
        assert applied.endswith("active_counts")
        counts = await admin.fetch(f"select partner_id, n from {schema}.partner_active_registrations order by 1")
        expected = await admin.fetch(
            f"select partner_id, count(*) as n from {schema}.registrations where active group by 1 order by 1"
        )
        assert [tuple(r) for r in counts] == [tuple(r) for r in expected] and len(expected) == 3
    finally:
        await admin.execute(f"drop schema {schema} cascade")
        await admin.close()
