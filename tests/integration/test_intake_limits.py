"""Intake's limits on a real Postgres with two replicas at once: rate, capacity, and what frees capacity."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dealreg_devstack.provision import Stack
from dealreg_shared.contracts import (
    EventType,
    RegistrationStatusChanged,
    Status,
)
from dealreg_shared.envelope import utcnow
from dealreg_shared.topics import REGISTRATION_STATUS
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
