"""Intake's limits and exactly-once behaviour across processes: two replicas, a restart, a redelivery."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from dealreg_devstack.launcher import ServiceProcess, start_service, wait_ready
from dealreg_devstack.procs import wait_until
from dealreg_devstack.scenario import ScenarioPartner
from dealreg_shared.contracts import RegistrationSubmitted
from dealreg_shared.partner import PartnerClient, signed_submission
from dealreg_shared.topics import REGISTRATION_STATUS, REGISTRATIONS_RECEIVED, REGISTRATIONS_SUBMITTED
from tests.e2e.conftest import Pipeline
from tests.e2e.intake_helpers import (
    SUBMITTED_GROUP,
    admin_fetchval,
    answers,
    group_state,
    log_events,
    read_to_end,
    registration_for,
    send,
)
from tests.e2e.test_pipeline import statuses_of, wait_statuses

pytestmark = pytest.mark.e2e


async def wait_group(p: Pipeline, *, members: int) -> None:
    async def settled() -> bool:
        state, count = await group_state(p.stack.kafka_bootstrap, SUBMITTED_GROUP)
        return count == members and state == ("Stable" if members else "Empty")

    await wait_until(settled, timeout_s=60, what=f"intake's consumer group settles with {members} member(s)")


@asynccontextmanager
async def second_intake(p: Pipeline) -> AsyncIterator[ServiceProcess]:
    """A second intake replica in the same consumer group, sharing the partitions once the group is stable."""
    first = p.services["intake"]
    second = start_service(
        p.stack, "intake", log_dir=first.log_path.parent, extra_env=p.service_env["intake"], replica=1
    )
    try:
        await wait_ready([second])
        await wait_group(p, members=2)
        yield second
    finally:
        second.stop()
        await wait_group(p, members=1)


def handled_by(process: ServiceProcess, partner_id: str, since: int) -> int:
    """How many of the partner's submissions this replica answered."""
    return sum(
        e.get("partner_id") == partner_id and e.get("event") in ("registration_received", "registration_rejected")
        for e in log_events(process.log_path, since=since)
    )


async def flood(p: Pipeline, partner: ScenarioPartner, count: int) -> list[str]:
    """`count` submissions at once, spread over every partition (a partner may choose any record key)."""
    registrations = [registration_for(partner.partner_id) for _ in range(count)]
    for i, registration in enumerate(registrations):
        record_key, value, headers = signed_submission(registration, partner.key)
        await send(p, value, headers, key=record_key + str(i).encode(), partition=i % 6)
    return [str(r.registration_id) for r in registrations]


async def test_rate_limit_and_capacity_cap_hold_across_two_intake_replicas(pipeline: Pipeline) -> None:
    p = pipeline
    throttled = await p.onboard("throttled", tier="throttled")  # a burst of 4, then next to nothing
    capped = await p.onboard("capped", tier="capped")  # at most 3 active registrations
    first = p.services["intake"]
    async with second_intake(p) as second:
        since = (first.log_path.stat().st_size, second.log_path.stat().st_size)
        limited_ids = await flood(p, throttled, 12)
        capped_ids = await flood(p, capped, 10)
        got = await answers(p, limited_ids + capped_ids)
        for partner in (throttled, capped):
            # both replicas took a share of the same partner's submissions at the same time
            assert handled_by(first, partner.partner_id, since[0]) > 0
            assert handled_by(second, partner.partner_id, since[1]) > 0

    limited = sorted(got[r][0] for r in limited_ids)
    assert limited == sorted([("received", None)] * 4 + [("rejected", "rate_limited")] * 8)
    full = sorted(got[r][0] for r in capped_ids)
    assert full == sorted([("received", None)] * 3 + [("rejected", "capacity_exceeded")] * 7)
    stored = "select count(*) from intake.registrations where partner_id = $1"
    assert await admin_fetchval(p, stored, capped.partner_id) == 3


async def test_a_registration_rejected_by_a_later_stage_no_longer_counts_against_capacity(pipeline: Pipeline) -> None:
    p = pipeline
    rival = await p.onboard("first-come")
    capped = await p.onboard("capped-release", tier="capped")  # at most 3 active registrations

    async def submit_as(partner: ScenarioPartner, registration: RegistrationSubmitted) -> str:
        async with PartnerClient(bootstrap=p.stack.kafka_bootstrap, key=partner.key) as client:
            await client.submit(registration)
        return str(registration.registration_id)

    taken = registration_for(rival.partner_id)
    await submit_as(rival, taken)
    await p.eventually(
        lambda: any(h.json["data"].get("status") == "approved" for h in p.hooks_of(rival)), "the rival is protected"
    )
    held = [await submit_as(capped, registration_for(capped.partner_id)) for _ in range(2)]
    # the same customer as the rival's: received by intake, then rejected by conflict
    same_customer = registration_for(capped.partner_id)
    same_customer = same_customer.model_copy(update={"customer": taken.customer})
    lost = await submit_as(capped, same_customer)
    [*_, last] = await wait_statuses(p, lost, count=2)
    assert (last["stage"], last["reason_code"]) == ("conflict", "registered_by_another_partner")
    await wait_until(lambda: inactive(p, lost), timeout_s=45, what="intake learns the registration is no longer active")

    third = await submit_as(capped, registration_for(capped.partner_id))
    fourth = await submit_as(capped, registration_for(capped.partner_id))
    got = await answers(p, [*held, lost, third, fourth])
    assert [got[r][0] for r in (*held, lost, third)] == [("received", None)] * 4
    assert got[fourth] == [("rejected", "capacity_exceeded")]


async def inactive(p: Pipeline, registration_id: str) -> bool:
    query = "select not active from intake.registrations where registration_id = $1::uuid"
    return bool(await admin_fetchval(p, query, registration_id))


async def rewind(p: Pipeline, partition: int, offset: int) -> None:
    """Move intake's committed offset back (its group must be empty): Kafka will deliver those records again."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=p.stack.kafka_bootstrap, group_id=SUBMITTED_GROUP, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tp = TopicPartition(REGISTRATIONS_SUBMITTED.name, partition)
        consumer.assign([tp])
        await consumer.commit({tp: offset})
    finally:
        await consumer.stop()


async def test_a_redelivered_submission_changes_nothing_and_the_projection_survives_a_restart(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    partner = await p.onboard("redelivered")
    registration = registration_for(partner.partner_id)
    key, value, headers = signed_submission(registration, partner.key)
    sent = await p.producer.send_and_wait(REGISTRATIONS_SUBMITTED.name, value=value, key=key, headers=headers)
    rid, event_id = str(registration.registration_id), dict(headers)["ce_id"].decode()
    assert (await answers(p, [rid]))[rid] == [("received", None)]

    old = p.services["intake"]
    old.stop()
    try:
        await wait_group(p, members=0)
        await rewind(p, sent.partition, sent.offset)
    finally:
        # a log file of its own (earlier tests may have restarted intake under another name): read from its start
        since = 0
        p.services["intake"] = start_service(
            p.stack,
            "intake",
            log_dir=old.log_path.parent,
            extra_env=p.service_env["intake"],
            replica=uuid.uuid4().int % 10**6 + 1000,
        )
        await wait_ready([p.services["intake"]])

    def reread() -> bool:
        return any(
            e.get("event") == "event_already_applied" and e.get("event_id") == event_id
            for e in log_events(p.services["intake"].log_path, since=since)
        )

    await p.eventually(reread, "the restarted intake reads the same record again")
    # the partner is still known after the restart: its next registration goes through
    after = registration_for(partner.partner_id)
    async with PartnerClient(bootstrap=p.stack.kafka_bootstrap, key=partner.key) as client:
        await client.submit(after)
    assert (await answers(p, [after.registration_id]))[str(after.registration_id)] == [("received", None)]

    # whatever the re-read emitted was published before the later registration's answer: read it all
    statuses = await read_to_end(p.stack.kafka_bootstrap, REGISTRATION_STATUS)
    intake_answers = [s for s in statuses_of(statuses, rid) if s["stage"] == "intake"]
    assert [(s["status"], s["reason_code"]) for s in intake_answers] == [("received", None)]
    forwarded = await read_to_end(p.stack.kafka_bootstrap, REGISTRATIONS_RECEIVED)
    assert sum(r.data["registration_id"] == rid for r in forwarded) == 1
