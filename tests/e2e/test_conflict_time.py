"""Time on the real stack with a controlled clock: reminders, expiry, extensions, escalation, lapsing territories."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest

from dealreg_shared.envelope import utcnow
from tests.conftest import unique
from tests.e2e.conflict_checks import conflict_statuses, decided, partner_view, refused
from tests.e2e.conflict_support import grant_territory, publish_decision, publish_vetted, set_clock_offset, vetted
from tests.e2e.conftest import Conflict

pytestmark = pytest.mark.e2e


@pytest.fixture
async def clock(conflict: Conflict) -> AsyncIterator[Conflict]:
    """The conflict replicas, with their clock put back to the real time after the test."""
    yield conflict
    await set_clock_offset(conflict.stack.admin_dealreg_dsn, timedelta(0))


async def test_protection_is_reminded_extended_within_the_cap_and_expires_freeing_the_customer(
    clock: Conflict,
) -> None:
    c = clock
    domain = f"{unique('fourthcoffee')}.com"
    reg = vetted(unique("p-a-"), company=f"Fourth Coffee {unique('')}", domain=domain)
    await publish_vetted(c.producer, reg)
    approved = await decided(c, reg)
    assert approved["status"] == "approved", approved
    until = datetime.fromisoformat(approved["protected_until"])

    await set_clock_offset(c.stack.admin_dealreg_dsn, timedelta(days=24))  # 6 days left, notice is 5
    rival = vetted(unique("p-b-"), company=f"Fourth Coffee {unique('')}", domain=domain)
    await publish_vetted(c.producer, rival)
    assert (await decided(c, rival))["reason_code"] == "registered_by_another_partner"
    assert [s["status"] for s in conflict_statuses(c, reg.registration_id)] == ["approved"]

    await set_clock_offset(c.stack.admin_dealreg_dsn, timedelta(days=26))
    expiring = await decided(c, reg, count=2)
    assert expiring["status"] == "expiring"
    assert str(until.date()) in expiring["partner_message"]

    await publish_decision(c.producer, reg.registration_id, "extend", extend_days=10)
    extended = await decided(c, reg, count=3)
    assert (extended["status"], datetime.fromisoformat(extended["protected_until"])) == (
        "approved",
        until + timedelta(days=10),
    )
    over = await refused(c, await publish_decision(c.producer, reg.registration_id, "extend", extend_days=11))
    assert "1 to 10 days" in over["reason"]

    await set_clock_offset(c.stack.admin_dealreg_dsn, timedelta(days=41))  # past the extended end
    statuses = [s["status"] for s in conflict_statuses(c, reg.registration_id)]
    expired = await decided(c, reg, count=4 if statuses[-1] != "expiring" else 5)
    assert expired["status"] == "expired"
    late = await refused(c, await publish_decision(c.producer, reg.registration_id, "extend", extend_days=1))
    assert "expired" in late["reason"]

    newcomer = vetted(unique("p-c-"), company=f"Fourth Coffee {unique('')}", domain=domain)
    await publish_vetted(c.producer, newcomer)
    assert (await decided(c, newcomer))["status"] == "approved"  # the customer is free again


async def test_a_review_past_the_regions_sla_escalates_to_its_lead_once(clock: Conflict) -> None:
    c = clock
    domain = f"{unique('humongous')}.com"
    first = vetted(unique("p-a-"), company=f"Humongous {unique('')}", domain=domain, region="review")
    held = vetted(unique("p-b-"), company=f"Humongous Insurance {unique('')}", domain=domain, region="review")
    await publish_vetted(c.producer, first)
    await decided(c, first)
    await publish_vetted(c.producer, held)
    assert (await decided(c, held))["status"] == "under_review"

    await set_clock_offset(c.stack.admin_dealreg_dsn, timedelta(hours=23))
    probe = vetted(unique("p-probe-"), company=f"Probe {unique('')}", domain=f"{unique('probe')}.com", region="review")
    await publish_vetted(c.producer, probe)  # decided by the moved clock; no escalation before the SLA
    await decided(c, probe)
    assert len(conflict_statuses(c, held.registration_id)) == 1

    await set_clock_offset(c.stack.admin_dealreg_dsn, timedelta(hours=25))
    escalation = await decided(c, held, count=2)
    assert (escalation["status"], escalation["reason_code"]) == ("under_review", "review_overdue")
    assert escalation["manager_detail"]["escalated_to"] == "review-lead@vendor.example"
    assert first.partner_id not in partner_view(escalation)

    # a second held pair, decided now: its escalation at +49h proves the sweeper ran again past the first's
    domain2 = f"{unique('humongous')}.com"
    first2 = vetted(unique("p-a-"), company=f"Humongous {unique('')}", domain=domain2, region="review")
    held2 = vetted(unique("p-b-"), company=f"Humongous {unique('')}", domain=domain2, region="review")
    await publish_vetted(c.producer, first2)
    await decided(c, first2)
    await publish_vetted(c.producer, held2)
    assert (await decided(c, held2))["status"] == "under_review"
    await set_clock_offset(c.stack.admin_dealreg_dsn, timedelta(hours=50))
    assert (await decided(c, held2, count=2))["reason_code"] == "review_overdue"
    assert [s["reason_code"] for s in conflict_statuses(c, held.registration_id)] == [None, "review_overdue"]


async def test_an_exclusive_territory_lapses_by_itself_at_its_end(clock: Conflict) -> None:
    c = clock
    holder, line, now = unique("p-holder-"), unique("line-"), utcnow()
    territory_id = unique("t-")
    await grant_territory(
        c.producer,
        territory_id,
        holder,
        product_line=line,
        country="SG",
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=2),
    )
    before = vetted(
        unique("p-a-"),
        company=f"Lion City {unique('')}",
        domain=f"{unique('lion')}.sg",
        country="SG",
        product_lines=(line,),
    )
    await publish_vetted(c.producer, before)
    # the grant and the registration travel on different topics: retry until the territory is in force
    status = await decided(c, before)
    while status["reason_code"] != "exclusive_territory":
        before = vetted(
            unique("p-a-"),
            company=f"Lion City {unique('')}",
            domain=f"{unique('lion')}.sg",
            country="SG",
            product_lines=(line,),
        )
        await publish_vetted(c.producer, before)
        status = await decided(c, before)
    await set_clock_offset(c.stack.admin_dealreg_dsn, timedelta(days=3))
    after = vetted(
        unique("p-a-"),
        company=f"Merlion {unique('')}",
        domain=f"{unique('merlion')}.sg",
        country="SG",
        product_lines=(line,),
    )
    await publish_vetted(c.producer, after)
    assert (await decided(c, after))["status"] == "approved"
