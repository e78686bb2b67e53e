"""Building blocks of scenarios (the demo, the end-to-end tests): partners that apply and register, managers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Literal

import asyncpg
from aiokafka import AIOKafkaProducer

from dealreg_devstack.procs import wait_until
from dealreg_devstack.provision import Stack
from dealreg_shared.contracts import (
    Contact,
    Customer,
    EventType,
    Money,
    OpportunityDetails,
    PartnerApplicationDecided,
    PartnerApplicationSubmitted,
    PublicKey,
    RegistrationSubmitted,
    TargetMarkets,
)
from dealreg_shared.contracts.registrations import CustomerContact
from dealreg_shared.envelope import utcnow
from dealreg_shared.kafka import publish_event
from dealreg_shared.partner import apply
from dealreg_shared.signing import SigningKey
from dealreg_shared.topics import PARTNER_DECISIONS


@dataclass
class ScenarioPartner:
    """A partner company as its own systems see it: its key pair and its application."""

    key: SigningKey
    application: PartnerApplicationSubmitted
    partner_id: str = ""

    @property
    def name(self) -> str:
        return self.application.company_name


def new_partner(
    *, company: str, website: str, contact_name: str, email: str, country: str, webhook_url: str | None
) -> ScenarioPartner:
    key = SigningKey.generate("k1")
    application = PartnerApplicationSubmitted(
        application_id=uuid.uuid4(),
        company_name=company,
        website=website,
        contact=Contact(name=contact_name, email=email),
        country=country,
        target_markets=TargetMarkets(product_lines=["analytics"], industries=["manufacturing"]),
        public_keys=[PublicKey(key_id=key.key_id, public_key=key.public_key_b64url)],
        webhook_url=webhook_url,
        submitted_at=utcnow(),
    )
    return ScenarioPartner(key, application)


def new_registration(
    partner_id: str,
    *,
    company: str,
    domain: str | None,
    country: str,
    contact_email: str,
    product_lines: tuple[str, ...] = ("analytics",),
    amount: str = "48000.00",
) -> RegistrationSubmitted:
    return RegistrationSubmitted(
        registration_id=uuid.uuid4(),
        partner_id=partner_id,
        submitted_at=utcnow(),
        customer=Customer(
            company_name=company,
            domain=domain,
            country=country,
            contact=CustomerContact(name="Jana Weber", email=contact_email),
        ),
        opportunity=OpportunityDetails(
            product_lines=list(product_lines),
            estimated_value=Money(amount=Decimal(amount), currency="EUR"),
            expected_close_date=date.today() + timedelta(days=90),
            description="Analytics rollout for 3 plants",
        ),
    )


async def decide_application(
    producer: AIOKafkaProducer,
    application_id: uuid.UUID,
    *,
    decision: Literal["approve", "reject"] = "approve",
    tier: str = "gold",
) -> None:
    """What a channel manager publishes (from the CLI or a one-click link)."""
    await publish_event(
        producer,
        PARTNER_DECISIONS,
        key=str(application_id),
        type=EventType.PARTNER_APPLICATION_DECIDED,
        source="dealreg/managers",
        data=PartnerApplicationDecided(
            decision_id=uuid.uuid4(),
            application_id=application_id,
            decision=decision,
            tier=tier,
            manager_id="maria.rossi@vendor.example",
            reason="vetting checks passed",
        ),
        correlation_id=str(application_id),
    )


async def intake_knows_partner(admin_dealreg_dsn: str, partner_id: str) -> bool:
    """Operator's look (as admin): has intake's projection caught up with the approval?"""
    conn = await asyncpg.connect(admin_dealreg_dsn)
    try:
        return bool(await conn.fetchval("select active from intake.partners where partner_id = $1", partner_id))
    finally:
        await conn.close()


async def onboard(
    partner: ScenarioPartner,
    *,
    stack: Stack,
    producer: AIOKafkaProducer,
    approved_partner_id: Callable[[], str | None],
    timeout_s: float = 60,
    tier: str = "gold",
) -> str:
    """Apply, have a manager approve, and wait until intake will take the partner's submissions.

    `approved_partner_id` reads the partner id from what the partner was told (its webhook or email).
    """
    await apply(stack.kafka_bootstrap, partner.application)

    async def approval_seen() -> bool:
        return approved_partner_id() is not None

    # the manager decides once vetting has screened the application
    await wait_until(
        lambda: application_screened(stack.admin_dealreg_dsn, partner.application.application_id),
        timeout_s=timeout_s,
        what=f"{partner.name}'s application is screened",
    )
    await decide_application(producer, partner.application.application_id, tier=tier)
    await wait_until(approval_seen, timeout_s=timeout_s, what=f"{partner.name} is told of the approval")
    partner.partner_id = approved_partner_id() or ""
    await wait_until(
        lambda: intake_knows_partner(stack.admin_dealreg_dsn, partner.partner_id),
        timeout_s=timeout_s,
        what=f"intake learns of {partner.name}",
    )
    return partner.partner_id


async def application_screened(admin_dealreg_dsn: str, application_id: uuid.UUID) -> bool:
    conn = await asyncpg.connect(admin_dealreg_dsn)
    try:
        return bool(
            await conn.fetchval("select true from vetting.applications where application_id = $1", application_id)
        )
    finally:
        await conn.close()
