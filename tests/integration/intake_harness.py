"""A harness for intake's subscribers on a real Postgres: its own schema, two replicas' worth of processors.

Two pools stand for two intake replicas: their records are processed at the same moment, on separate
connections, so only what Postgres enforces (the per-partner lock, the token bucket row) can keep the limits.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from dealreg_devstack.provision import Stack
from dealreg_devstack.scenario import new_registration
from dealreg_intake.handlers import IntakeHandlers
from dealreg_intake.settings import IntakeConfig, TierLimits
from dealreg_shared.consumer import Handler, RecordProcessor, RetryPolicy
from dealreg_shared.contracts import (
    EventType,
    PartnerApproved,
    PublicKey,
    RegistrationSubmitted,
)
from dealreg_shared.db import create_pool, migrate, service_migrations
from dealreg_shared.envelope import new_event
from dealreg_shared.partner import signed_submission
from dealreg_shared.regions import parse_regions
from dealreg_shared.signing import SigningKey
from dealreg_shared.topics import PARTNERS, REGISTRATION_STATUS, REGISTRATIONS_RECEIVED, REGISTRATIONS_SUBMITTED
from tests.conftest import consumer_record, unique

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
        record = consumer_record(topic, value, headers, offset=offset, partition=offset % 6)
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


@asynccontextmanager
async def running_intake(stack: Stack) -> AsyncIterator[Intake]:
    """A fresh intake schema, migrated, and two processors on it; the pools closed afterwards."""
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
