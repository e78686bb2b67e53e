"""Vetting's subscribers on real Postgres (a throwaway schema with vetting's migrations), through the RecordProcessor.

The end-to-end tests run one program configuration; these run others: a program that flags free-mail contacts on
large deals instead of rejecting them, and decisions replayed against the store.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from pydantic import BaseModel

from dealreg_devstack.provision import Stack
from dealreg_devstack.scenario import new_partner, new_registration
from dealreg_shared.consumer import Handler, RecordProcessor, RetryPolicy
from dealreg_shared.contracts import EventType, PartnerApplicationDecided
from dealreg_shared.db import create_pool, migrate, service_migrations
from dealreg_shared.envelope import new_event, utcnow
from dealreg_shared.regions import parse_regions
from dealreg_shared.topics import PARTNER_APPLICATIONS, PARTNER_DECISIONS, REGISTRATIONS_RECEIVED, Topic
from dealreg_vetting.applications import Onboarding
from dealreg_vetting.config import VettingConfig
from dealreg_vetting.registrations import Eligibility
from tests.conftest import consumer_record, unique

pytestmark = pytest.mark.integration

FLAGGING = VettingConfig.model_validate({"large_deals": {"threshold": "100000", "free_mail_contact": "flag"}})


@pytest.fixture
async def pool(stack: Stack) -> AsyncIterator[asyncpg.Pool]:
    schema = unique("t_vetting_")
    admin = await asyncpg.connect(stack.admin_dealreg_dsn)
    await admin.execute(f"create schema {schema}")
    await migrate(admin, schema=schema, migrations=service_migrations("dealreg_vetting"))
    await admin.close()
    pool = await create_pool(stack.admin_dealreg_dsn, schema=schema)
    yield pool
    await pool.close()


async def deliver(
    pool: asyncpg.Pool, topic: Topic, type: str, data: BaseModel | dict[str, Any], handler: Handler
) -> None:
    event, value = new_event(type=type, source="tests", data=data)
    record = consumer_record(topic.name, value, event.headers())
    processor = RecordProcessor(pool=pool, service="vetting", retry=RetryPolicy(2, 0.001, 0.01), max_bytes=100_000)
    await processor.process(record, handler)


async def emitted(pool: asyncpg.Pool, ce_type: str) -> list[dict[str, Any]]:
    """The data of the events of this type in the outbox, in order (headers are stored as [name, base64])."""
    rows = await pool.fetch("select value, headers::text as headers from outbox order by id")
    out = []
    for row in rows:
        headers = {name: base64.b64decode(value).decode() for name, value in json.loads(row["headers"])}
        if headers.get("ce_type") == ce_type:
            out.append(json.loads(row["value"]))
    return out


async def approved_partner(pool: asyncpg.Pool, onboarding: Onboarding) -> str:
    name = unique("flagco")
    partner = new_partner(
        company="Flag Co",
        website=f"https://{name}.co.uk",
        contact_name="Sam",
        email=f"sam@{name}.co.uk",
        country="GB",
        webhook_url=None,
    )
    app = partner.application
    await deliver(
        pool, PARTNER_APPLICATIONS, EventType.PARTNER_APPLICATION_SUBMITTED, app, onboarding.on_partner_application
    )
    decided = PartnerApplicationDecided(
        decision_id=uuid.uuid4(), application_id=app.application_id, decision="approve", tier="gold", manager_id="m"
    )
    await deliver(
        pool, PARTNER_DECISIONS, EventType.PARTNER_APPLICATION_DECIDED, decided, onboarding.on_partner_decision
    )
    [approved] = await emitted(pool, EventType.PARTNER_APPROVED)
    return str(approved["partner_id"])


def received(partner_id: str, *, contact_email: str, amount: str) -> dict[str, Any]:
    submitted = new_registration(
        partner_id, company="Contoso", domain="contoso.de", country="DE", contact_email=contact_email, amount=amount
    ).model_dump(mode="json")
    return {
        **submitted,
        "received_at": utcnow().isoformat(),
        "customer_key": "contoso.de",
        "registrable_domain": "contoso.de",
        "region": "emea",
    }


async def test_a_program_that_flags_passes_a_large_free_mail_deal_on_with_the_flag_and_keeps_the_evidence(
    pool: asyncpg.Pool,
) -> None:
    onboarding = Onboarding(FLAGGING, parse_regions(""))
    partner_id = await approved_partner(pool, onboarding)
    eligibility = Eligibility(FLAGGING)
    large = received(partner_id, contact_email="jana@gmail.com", amount="150000.00")
    small = received(partner_id, contact_email="jana@gmail.com", amount="90000.00")
    for registration in (large, small):
        await deliver(
            pool,
            REGISTRATIONS_RECEIVED,
            EventType.REGISTRATION_RECEIVED,
            registration,
            eligibility.on_registration_received,
        )
    vetted = {v["registration_id"]: v for v in await emitted(pool, EventType.REGISTRATION_VETTED)}
    assert vetted[large["registration_id"]]["flags"] == ["free_mail_contact"]
    assert vetted[small["registration_id"]]["flags"] == []
    assert await emitted(pool, EventType.REGISTRATION_STATUS_CHANGED) == []  # flagged, not rejected
    row = await pool.fetchrow(
        "select eligible, flags, detail from screened_registrations where registration_id = $1",
        uuid.UUID(large["registration_id"]),
    )
    assert row["eligible"] and row["flags"] == ["free_mail_contact"] and "gmail.com" in row["detail"]


async def test_a_decision_replayed_under_a_new_event_id_applies_once(pool: asyncpg.Pool) -> None:
    onboarding = Onboarding(FLAGGING, parse_regions(""))
    partner_id = await approved_partner(pool, onboarding)
    [decision_id] = await pool.fetch("select decision_id from decisions")
    again = PartnerApplicationDecided.model_validate(
        {
            "decision_id": decision_id["decision_id"],
            "application_id": (
                await pool.fetchval("select application_id from partners where partner_id = $1", partner_id)
            ),
            "decision": "approve",
            "tier": "gold",
            "manager_id": "m",
        }
    )
    await deliver(pool, PARTNER_DECISIONS, EventType.PARTNER_APPLICATION_DECIDED, again, onboarding.on_partner_decision)
    assert len(await emitted(pool, EventType.PARTNER_APPROVED)) == 1
    assert await emitted(pool, EventType.DECISION_REFUSED) == []
    assert await pool.fetchval("select outcome from decisions") == "applied"
