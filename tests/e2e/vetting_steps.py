"""Steps the vetting end-to-end tests share: applying, deciding as a manager, submitting, reading answers."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
from pydantic import BaseModel

from dealreg_devstack.procs import wait_until
from dealreg_devstack.scenario import ScenarioPartner, new_registration
from dealreg_devstack.topicreader import Record, collect
from dealreg_shared.contracts import (
    Contact,
    EventType,
    PartnerApplicationDecided,
    PartnerApplicationSubmitted,
    PartnerDecided,
    PublicKey,
    TargetMarkets,
)
from dealreg_shared.envelope import new_event, utcnow
from dealreg_shared.partner import PartnerClient, apply
from dealreg_shared.signing import SigningKey
from dealreg_shared.topics import (
    PARTNER_DECISIONS,
    PARTNERS,
    REGISTRATION_STATUS,
    Topic,
)
from tests.conftest import unique
from tests.e2e.conftest import Pipeline


def application(
    *,
    email: str,
    website: str,
    company: str | None = None,
    country: str = "GB",
    product_lines: tuple[str, ...] = ("analytics",),
    industries: tuple[str, ...] = ("manufacturing",),
) -> PartnerApplicationSubmitted:
    key = SigningKey.generate("k1")
    return PartnerApplicationSubmitted(
        application_id=uuid.uuid4(),
        company_name=company or f"Applicant {uuid.uuid4().hex[:6]} Ltd",
        website=website,
        contact=Contact(name="Sam Patel", email=email),
        country=country,
        target_markets=TargetMarkets(product_lines=list(product_lines), industries=list(industries)),
        public_keys=[PublicKey(key_id=key.key_id, public_key=key.public_key_b64url)],
        submitted_at=utcnow(),
    )


async def publish(p: Pipeline, topic: Topic, *, key: str, type: str, data: BaseModel | dict[str, Any]) -> None:
    event, value = new_event(type=type, source="dealreg/tests", data=data)
    await p.producer.send_and_wait(topic.name, value=value, key=key.encode(), headers=event.headers())


async def decide(p: Pipeline, application_id: uuid.UUID, decision: str, **extra: Any) -> uuid.UUID:
    decided = PartnerApplicationDecided.model_validate(
        {
            "decision_id": extra.pop("decision_id", uuid.uuid4()),
            "application_id": application_id,
            "decision": decision,
            "manager_id": "maria.rossi@vendor.example",
            **extra,
        }
    )
    await publish(
        p, PARTNER_DECISIONS, key=str(application_id), type=EventType.PARTNER_APPLICATION_DECIDED, data=decided
    )
    return decided.decision_id


async def decide_partner(p: Pipeline, partner_id: str, decision: str, **extra: Any) -> uuid.UUID:
    decided = PartnerDecided.model_validate(
        {"decision_id": uuid.uuid4(), "partner_id": partner_id, "decision": decision, "manager_id": "maria", **extra}
    )
    await publish(p, PARTNER_DECISIONS, key=partner_id, type=EventType.PARTNER_DECIDED, data=decided)
    return decided.decision_id


def events(records: list[Record], type: str, **match: str) -> list[dict[str, Any]]:
    return [
        r.data
        for r in records
        if r.headers.get("ce_type") == type and all(str(r.data.get(k)) == v for k, v in match.items())
    ]


async def partner_topic(p: Pipeline, until: Callable[[list[Record]], bool]) -> list[Record]:
    return await collect(p.stack.kafka_bootstrap, PARTNERS, until=until, timeout_s=45)


async def vetted(p: Pipeline, app: PartnerApplicationSubmitted) -> dict[str, Any]:
    await apply(p.stack.kafka_bootstrap, app)
    aid = str(app.application_id)
    records = await partner_topic(p, lambda rs: bool(events(rs, "partner.application.vetted", application_id=aid)))
    [found] = events(records, "partner.application.vetted", application_id=aid)
    return found


async def refused(p: Pipeline, decision_id: uuid.UUID) -> str:
    did = str(decision_id)
    records = await partner_topic(p, lambda rs: bool(events(rs, "decision.refused", decision_id=did)))
    [found] = events(records, "decision.refused", decision_id=did)
    return str(found["reason"])


async def admin_value(p: Pipeline, query: str, *args: Any) -> Any:
    conn = await asyncpg.connect(p.stack.admin_dealreg_dsn)
    try:
        return await conn.fetchval(query, *args)
    finally:
        await conn.close()


async def intake_sees(p: Pipeline, partner_id: str, *, active: bool) -> None:
    async def probe() -> bool:
        return await admin_value(p, "select active from intake.partners where partner_id = $1", partner_id) is active

    await wait_until(probe, timeout_s=45, what=f"intake sees {partner_id} active={active}")


async def submit(p: Pipeline, partner: ScenarioPartner, key: SigningKey, **overrides: Any) -> uuid.UUID:
    customer = unique("cust")
    registration = new_registration(
        partner.partner_id,
        company=overrides.pop("company", f"Customer {customer}"),
        domain=overrides.pop("domain", f"{customer}.de"),
        country="DE",
        contact_email=overrides.pop("contact_email", f"buyer@{customer}.de"),
        **overrides,
    )
    async with PartnerClient(bootstrap=p.stack.kafka_bootstrap, key=key) as client:
        await client.submit(registration)
    return registration.registration_id


async def final_status(
    p: Pipeline, registration_id: uuid.UUID, *, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    rid = str(registration_id)
    records = await collect(
        p.stack.kafka_bootstrap,
        REGISTRATION_STATUS,
        until=lambda rs: any(done(s) for s in events(rs, "registration.status-changed", registration_id=rid)),
        timeout_s=45,
    )
    return next(s for s in events(records, "registration.status-changed", registration_id=rid) if done(s))


def rejected_or_passed(status: dict[str, Any]) -> bool:
    return status["status"] == "rejected" or status["stage"] == "conflict"
