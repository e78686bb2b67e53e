"""Vetting on the real stack: only a manager approves, decisions in every state, the partner lifecycle."""

from __future__ import annotations

import uuid

import pytest

from dealreg_devstack.procs import wait_until
from dealreg_shared.contracts import EventType, PublicKey
from dealreg_shared.signing import SigningKey
from dealreg_shared.topics import PARTNER_DECISIONS
from tests.conftest import unique
from tests.e2e.conftest import Pipeline
from tests.e2e.vetting_steps import (
    admin_value,
    application,
    decide,
    decide_partner,
    events,
    final_status,
    intake_sees,
    partner_topic,
    publish,
    refused,
    rejected_or_passed,
    submit,
    vetted,
)

pytestmark = pytest.mark.e2e


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
