"""Vetting on the real stack: every screening check on real-world domain shapes, never an approval without a manager,
decisions in every state, the partner lifecycle, and registrations' eligibility with partner-safe messages."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
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
    PARTNER_APPLICATIONS,
    PARTNER_DECISIONS,
    PARTNERS,
    REGISTRATION_STATUS,
    REGISTRATIONS_VETTED,
    Topic,
)
from tests.conftest import unique
from tests.e2e.conftest import Pipeline

pytestmark = pytest.mark.e2e


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


# ---- screening: every check, with the real-world shapes partners type ----------------------------------------

CASES: dict[str, tuple[Callable[[str, str], PartnerApplicationSubmitted], set[str], str]] = {
    # name: (application from a unique label and the incumbent partner's domain, flags expected, recommendation)
    "co_uk_upper_case": (
        lambda u, _: application(email=f"Sam.Patel@{u.upper()}.CO.UK", website=f"HTTPS://WWW.{u.upper()}.co.uk/About"),
        set(),
        "approve",
    ),
    "com_au_subdomain_email": (
        lambda u, _: application(email=f"ops@mail.{u}.com.au", website=f"{u}.com.au", country="AU"),
        set(),
        "approve",
    ),
    "idn": (
        lambda u, _: application(
            email=f"jörg@müller-{u}.de", website=f"https://www.MÜLLER-{u}.de/kontakt", country="DE"
        ),
        set(),
        "approve",
    ),
    "free_mail": (
        lambda u, _: application(email=f"{u}@GMail.com", website=f"https://{u}.co.uk"),
        {"free_mail", "domain_mismatch"},
        "review",
    ),
    "free_mail_japan": (
        lambda u, _: application(email=f"{u}@yahoo.co.jp", website=f"https://{u}.co.jp", country="JP"),
        {"free_mail", "domain_mismatch"},
        "review",
    ),
    "disposable": (
        lambda u, _: application(email=f"{u}@mailinator.com", website=f"https://{u}.com"),
        {"disposable_email", "free_mail", "domain_mismatch"},  # the free-mail list holds it too
        "reject",
    ),
    "invalid_email": (
        lambda u, _: application(email=f"sam@{u}.con", website=f"https://{u}.com"),
        {"invalid_email", "domain_mismatch"},
        "reject",
    ),
    "domain_mismatch": (
        lambda u, _: application(email=f"sam@{u}-traders.com", website=f"https://www.{u}.co.uk"),
        {"domain_mismatch"},
        "review",
    ),
    "already_partner": (
        lambda u, incumbent: application(email=f"new.team@{incumbent}", website=f"https://shop.{incumbent}/"),
        {"already_partner"},
        "reject",
    ),
    "deny_listed_domain": (
        lambda u, _: application(email=f"{u}@eu.RivalSoft.com", website="https://www.rivalsoft.com"),
        {"deny_listed"},
        "reject",
    ),
    "deny_listed_name": (
        lambda u, _: application(email=f"sam@{u}.co.uk", website=f"{u}.co.uk", company="RIVAL software"),
        {"deny_listed"},
        "reject",
    ),
    "outside_target_market": (
        lambda u, _: application(
            email=f"sam@{u}.com", website=f"https://{u}.com", country="US", product_lines=("hardware",)
        ),
        {"outside_target_market"},
        "review",
    ),
}


@pytest.fixture(scope="module")
async def screened(pipeline: Pipeline) -> dict[str, dict[str, Any]]:
    """Every case applied at once (one pass over the topic), then each test reads its own outcome."""
    incumbent = await pipeline.onboard("incumbent")
    incumbent_domain = incumbent.application.website.removeprefix("https://www.")
    apps = {name: make(unique("v"), incumbent_domain) for name, (make, _, _) in CASES.items()}
    for app in apps.values():
        await apply(pipeline.stack.kafka_bootstrap, app)
    ids = {str(app.application_id): name for name, app in apps.items()}
    records = await partner_topic(
        pipeline,
        lambda rs: ids.keys() <= {e["application_id"] for e in events(rs, "partner.application.vetted")},
    )
    return {
        ids[e["application_id"]]: e for e in events(records, "partner.application.vetted") if e["application_id"] in ids
    }


@pytest.mark.parametrize("case", list(CASES))
async def test_each_check_flags_its_case_with_evidence_and_a_recommendation(
    screened: dict[str, dict[str, Any]], case: str
) -> None:
    result = screened[case]
    _, expected, recommendation = CASES[case]
    assert set(result["flags"]) == expected
    assert result["recommendation"] == recommendation
    checks = {c["check"]: c for c in result["checks"]}
    assert set(checks) == {
        "invalid_email",
        "free_mail",
        "disposable_email",
        "domain_mismatch",
        "already_partner",
        "deny_listed",
        "outside_target_market",
    }
    assert all(c["evidence"] for c in checks.values())
    assert {name for name, c in checks.items() if not c["passed"]} == expected


async def test_real_world_domain_shapes_resolve_to_the_companys_registrable_domain(
    screened: dict[str, dict[str, Any]],
) -> None:
    assert screened["co_uk_upper_case"]["domain"].endswith(".co.uk")
    assert screened["com_au_subdomain_email"]["domain"].endswith(".com.au")
    assert not screened["com_au_subdomain_email"]["domain"].startswith("mail.")
    assert screened["idn"]["domain"].startswith("xn--mller-")
    assert screened["free_mail"]["domain"] != "gmail.com"  # the partner is its company, never its mail provider


async def test_an_application_breaking_the_contract_is_answered_with_what_is_wrong(pipeline: Pipeline) -> None:
    data = application(email="sam@example.net", website="https://x.com").model_dump(mode="json")
    data["contact"]["email"] = "sam at northwind"
    aid = data["application_id"]
    await publish(pipeline, PARTNER_APPLICATIONS, key=aid, type=EventType.PARTNER_APPLICATION_SUBMITTED, data=data)
    records = await partner_topic(
        pipeline, lambda rs: bool(events(rs, "partner.application.invalid", application_id=aid))
    )
    [answer] = events(records, "partner.application.invalid", application_id=aid)
    assert answer["reason_code"] == "invalid_payload"
    assert any(e.startswith("contact.email") for e in answer["errors"])


# ---- only a manager approves ---------------------------------------------------------------------------------


async def test_a_clean_application_waits_for_a_manager_and_only_the_decision_approves_it(pipeline: Pipeline) -> None:
    p = pipeline
    u = unique("clean")
    app = application(email=f"sam@{u}.co.uk", website=f"https://www.{u}.co.uk")
    result = await vetted(p, app)
    assert result["recommendation"] == "approve" and result["flags"] == []
    partner_id = result["partner_id"]
    # a barrier: vetting answers this decision on the partner's key, so on the same partition, after anything
    # it published for the partner before; no approval may be among what came first
    barrier = str(await decide(p, app.application_id, "approve", tier="no-such-tier"))
    records = await partner_topic(p, lambda rs: bool(events(rs, "decision.refused", decision_id=barrier)))
    assert events(records, "partner.approved", partner_id=partner_id) == []
    assert (
        await admin_value(p, "select status from vetting.applications where application_id = $1", app.application_id)
        == "pending"
    )
    assert await admin_value(p, "select count(*) from vetting.partners where partner_id = $1", partner_id) == 0
    assert await admin_value(p, "select count(*) from intake.partners where partner_id = $1", partner_id) == 0

    await decide(p, app.application_id, "approve", tier="gold")
    records = await partner_topic(p, lambda rs: bool(events(rs, "partner.approved", partner_id=partner_id)))
    [approved] = events(records, "partner.approved", partner_id=partner_id)
    assert approved["tier"] == "gold" and approved["region"] == "emea"
    assert approved["domain"] == f"{u}.co.uk"
    assert approved["public_keys"] == [k.model_dump() for k in app.public_keys]
    assert approved["contacts"] == [app.contact.model_dump(mode="json")]


async def test_decisions_in_every_state_apply_once_or_are_refused_with_the_reason(pipeline: Pipeline) -> None:
    p = pipeline
    u = unique("decide")
    first = application(email=f"sam@{u}.com.au", website=f"https://{u}.com.au", country="AU")
    rejected = application(email=f"kim@{u}-other.co.uk", website=f"https://{u}-other.co.uk")
    partner_id = (await vetted(p, first))["partner_id"]
    await vetted(p, rejected)

    assert "unknown tier 'diamond'" in await refused(
        p, await decide(p, first.application_id, "approve", tier="diamond")
    )
    approval = await decide(p, first.application_id, "approve")  # no tier: the program's default
    await decide(p, first.application_id, "approve", decision_id=approval)  # the manager's tool retried it
    assert await refused(p, await decide(p, first.application_id, "approve")) == "application already approved"
    last = await decide(p, first.application_id, "reject")
    assert await refused(p, last) == "application already approved"
    # the refusal of the last decision comes after every earlier answer on the partner's key (one partition)
    records = await partner_topic(p, lambda rs: bool(events(rs, "decision.refused", decision_id=str(last))))
    approvals = events(records, "partner.approved", partner_id=partner_id)
    assert [a["tier"] for a in approvals] == ["registered"]  # once, despite the retried decision
    assert events(records, "decision.refused", decision_id=str(approval)) == []

    await decide(p, rejected.application_id, "reject", reason="not a fit")
    aid = str(rejected.application_id)
    records = await partner_topic(p, lambda rs: bool(events(rs, "partner.application.rejected", application_id=aid)))
    assert events(records, "partner.application.rejected", application_id=aid)[0]["reason"] == "not a fit"
    assert await refused(p, await decide(p, rejected.application_id, "approve")) == "application already rejected"

    assert await refused(p, await decide(p, uuid.uuid4(), "approve")) == "unknown application"
    # the same company applies again once it is a partner: screening flags it and approval is refused
    again = await vetted(p, application(email=f"new@{u}.com.au", website=f"www.{u}.com.au", country="AU"))
    assert again["flags"] == ["already_partner"]
    reason = await refused(p, await decide(p, uuid.UUID(again["application_id"]), "approve"))
    assert reason == f"{u}.com.au is already partner {partner_id}"

    garbled = {"decision_id": str(uuid.uuid4()), "application_id": aid, "decision": "maybe", "manager_id": "m"}
    await publish(p, PARTNER_DECISIONS, key=aid, type=EventType.PARTNER_APPLICATION_DECIDED, data=garbled)
    assert (await refused(p, uuid.UUID(garbled["decision_id"]))).startswith("invalid decision: decision:")


# ---- suspension, reinstatement, key rotation -----------------------------------------------------------------


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


async def test_a_manager_suspends_reinstates_and_rotates_keys_and_intake_follows(pipeline: Pipeline) -> None:
    p = pipeline
    partner = await p.onboard("lifecycle")
    pid = partner.partner_id

    await decide_partner(p, pid, "suspend", reason="contract under review")
    records = await partner_topic(p, lambda rs: bool(events(rs, "partner.suspended", partner_id=pid)))
    assert events(records, "partner.suspended", partner_id=pid)[0]["reason"] == "contract under review"
    assert await refused(p, await decide_partner(p, pid, "suspend")) == "partner already suspended"
    await intake_sees(p, pid, active=False)
    status = await final_status(p, await submit(p, partner, partner.key), done=rejected_or_passed)
    assert (status["status"], status["reason_code"]) == ("rejected", "partner_inactive")

    await decide_partner(p, pid, "reinstate")
    await partner_topic(p, lambda rs: bool(events(rs, "partner.reinstated", partner_id=pid)))
    assert await refused(p, await decide_partner(p, pid, "reinstate")) == "partner is not suspended"
    await intake_sees(p, pid, active=True)

    rotated = SigningKey.generate("k2")
    new_keys = [PublicKey(key_id="k2", public_key=rotated.public_key_b64url).model_dump()]
    await decide_partner(p, pid, "update_keys", public_keys=new_keys)
    records = await partner_topic(p, lambda rs: bool(events(rs, "partner.keys.updated", partner_id=pid)))
    assert events(records, "partner.keys.updated", partner_id=pid)[0]["public_keys"] == new_keys

    async def intake_has_only_the_new_key() -> bool:
        query = "select array_agg(key_id) from intake.partner_keys where partner_id = $1"
        return await admin_value(p, query, pid) == ["k2"]

    await wait_until(intake_has_only_the_new_key, timeout_s=45, what="intake replaces the partner's keys")
    accepted = await final_status(p, await submit(p, partner, rotated), done=rejected_or_passed)
    assert accepted["status"] != "rejected"
    old = await final_status(p, await submit(p, partner, partner.key), done=rejected_or_passed)
    assert (old["status"], old["reason_code"]) == ("rejected", "unauthenticated")

    assert await refused(p, await decide_partner(p, unique("p-nobody-"), "suspend")) == "unknown partner"


# ---- registration eligibility --------------------------------------------------------------------------------


async def test_ineligible_registrations_are_rejected_with_a_reason_code_and_eligible_ones_carry_tier_and_region(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    registered = await p.onboard("starter", tier="registered")
    gold = await p.onboard("premier")
    own_domain = registered.application.website.removeprefix("https://www.")
    expected = {
        await submit(p, registered, registered.key, product_lines=("security",)): "not_entitled",
        await submit(p, registered, registered.key, amount="50000.01"): "not_entitled",
        await submit(p, registered, registered.key, domain=f"https://eu.{own_domain.upper()}/"): "customer_is_partner",
        await submit(p, gold, gold.key, contact_email=f"{unique('j')}@gmail.com", amount="150000.00"): "not_eligible",
    }
    for registration_id, reason in expected.items():
        status = await final_status(p, registration_id, done=rejected_or_passed)
        assert (status["status"], status["reason_code"], status["stage"]) == ("rejected", reason, "vetting")
        assert status["manager_detail"]["reason"]

    within = await submit(p, registered, registered.key, amount="50000.00")
    passed = await final_status(p, within, done=rejected_or_passed)
    assert passed["stage"] == "conflict" and passed["status"] != "rejected"
    rid = str(within)
    records = await collect(
        p.stack.kafka_bootstrap,
        REGISTRATIONS_VETTED,
        until=lambda rs: bool(events(rs, "registration.vetted", registration_id=rid)),
    )
    [forwarded] = events(records, "registration.vetted", registration_id=rid)
    assert (forwarded["partner_tier"], forwarded["partner_region"], forwarded["flags"]) == ("registered", "emea", [])


async def test_a_reserved_account_is_not_eligible_and_nothing_the_partner_hears_says_why(pipeline: Pipeline) -> None:
    p = pipeline
    partner = await p.onboard("reseller")
    by_domain = await submit(p, partner, partner.key, company="Globex Shop", domain="https://shop.GLOBEX.com/")
    by_name = await submit(
        p, partner, partner.key, company="INITECH holdings", domain=None, contact_email="cio@initech.example.org"
    )
    for registration_id in (by_domain, by_name):
        status = await final_status(p, registration_id, done=rejected_or_passed)
        assert (status["status"], status["reason_code"]) == ("rejected", "not_eligible")
        assert "reserved account" in status["manager_detail"]["reason"]
        assert status["partner_message"] == "This registration is not eligible for the partner program."

    def told(registration_id: uuid.UUID) -> tuple[list[str], list[str]]:
        """Every webhook and email the partner got about this registration."""
        rid = str(registration_id)
        hooks = [h.body.decode() for h in p.hooks_of(partner) if rid in h.body.decode()]
        mails = [m.subject + m.text for m in p.smtp.to(str(partner.application.contact.email)) if rid in m.text]
        return hooks, mails

    for registration_id in (by_domain, by_name):
        await p.eventually(
            lambda rid=registration_id: all(any("not_eligible" in m for m in got) for got in told(rid)),
            "the partner is told of the rejection by webhook and by email",
        )
        hooks, mails = told(registration_id)
        for message in hooks + mails:
            for secret in ("reserved", "vendor", "manager_detail", "house account"):
                assert secret not in message.lower()
