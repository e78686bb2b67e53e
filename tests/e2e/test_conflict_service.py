"""Conflict as processes on the real stack: matching, every policy branch, territories, managers' decisions."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from dealreg_shared.envelope import utcnow
from tests.conftest import unique
from tests.e2e.conflict_checks import (
    conflict_statuses,
    decided,
    opportunities_of,
    partner_view,
    refused,
    row_of,
)
from tests.e2e.conflict_support import publish_decision, publish_vetted, vetted
from tests.e2e.conftest import Conflict

pytestmark = pytest.mark.e2e


def _near(moment: str, expected: datetime) -> bool:
    return abs(datetime.fromisoformat(moment) - expected) < timedelta(minutes=5)


async def test_a_clear_registration_is_approved_for_its_regions_protection_with_exactly_one_opportunity(
    conflict: Conflict,
) -> None:
    c = conflict
    reg = vetted(unique("p-a-"), company=f"Contoso {unique('')} GmbH", domain=f"{unique('contoso')}.de")
    await publish_vetted(c.producer, reg)
    await publish_vetted(c.producer, reg)  # redelivered by vetting with a new event id: changes nothing
    # same key, so the same partition, after the copy: once it is decided, the copy has been too
    marker = vetted(
        reg.partner_id, company=f"Marker {unique('')}", domain=reg.customer.domain, product_lines=("marker",)
    )
    await publish_vetted(c.producer, marker)
    status = await decided(c, reg)
    assert (status["status"], status["reason_code"]) == ("approved", None)
    assert _near(status["protected_until"], utcnow() + timedelta(days=30))
    await decided(c, marker)
    await c.opportunities.wait_for("the opportunity", lambda: opportunities_of(c, reg.registration_id))
    assert len(conflict_statuses(c, reg.registration_id)) == 1
    assert len(opportunities_of(c, reg.registration_id)) == 1
    assert opportunities_of(c, reg.registration_id)[0]["customer"]["customer_key"] == reg.customer_key


async def test_first_come_rejects_another_partner_with_the_domain_written_differently_and_names_no_one(
    conflict: Conflict,
) -> None:
    c = conflict
    customer = unique("contoso")
    first = vetted(unique("p-first-"), company=f"Contoso GmbH {unique('')}", domain=f"{customer}.de")
    await publish_vetted(c.producer, first)
    assert (await decided(c, first))["status"] == "approved"
    second = vetted(
        unique("p-second-"), company=f"Kontoso Deutschland {unique('')}", domain=f"https://eu.{customer.upper()}.de/x"
    )
    await publish_vetted(c.producer, second)
    status = await decided(c, second)
    assert (status["status"], status["reason_code"]) == ("rejected", "registered_by_another_partner")
    assert status["manager_detail"]["competing_registration_id"] == str(first.registration_id)
    assert status["manager_detail"]["competing_partner_id"] == first.partner_id
    assert status["manager_detail"]["match"] == "domain"
    for secret in (first.partner_id, str(first.registration_id), first.customer.company_name):
        assert secret not in partner_view(status)
    assert opportunities_of(c, second.registration_id) == []


@pytest.mark.parametrize(
    ("first_name", "second_name"),
    [
        ("Müller Maschinenbau {u} GmbH & Co. KG", "MULLER MASCHINENBAU {u}"),
        ("The {u} Trading Company", "{u} Trading Co., Ltd."),
        ("Procter & Gamble {u}", "Procter and Gamble {u} Inc"),
    ],
)
async def test_the_same_company_written_differently_without_a_domain_collides_by_name(
    conflict: Conflict, first_name: str, second_name: str
) -> None:
    c = conflict
    u = unique("n")
    first = vetted(unique("p-first-"), company=first_name.format(u=u), country="AT")
    second = vetted(unique("p-second-"), company=second_name.format(u=u), country="AT")
    assert first.customer_key != second.customer_key  # only the name matching can find it
    await publish_vetted(c.producer, first)
    assert (await decided(c, first))["status"] == "approved"
    await publish_vetted(c.producer, second)
    status = await decided(c, second)
    assert (status["status"], status["reason_code"]) == ("rejected", "registered_by_another_partner")
    assert status["manager_detail"]["match"] == "name"


async def test_a_registration_with_a_domain_collides_with_one_of_the_same_name_without_a_domain(
    conflict: Conflict,
) -> None:
    c = conflict
    u = unique("fabrikam")
    first = vetted(unique("p-first-"), company=f"{u} Solutions AG", domain=f"{u}.ch", country="CH")
    second = vetted(unique("p-second-"), company=f"{u} Solutions", country="CH")
    await publish_vetted(c.producer, first)
    await decided(c, first)
    await publish_vetted(c.producer, second)
    assert (await decided(c, second))["reason_code"] == "registered_by_another_partner"


@pytest.mark.parametrize(
    ("first", "second", "countries"),
    [
        ("Delta {u} Air Lines", "Delta {u} Faucet", ("US", "US")),
        ("Deutsche {u} Bank", "Deutsche {u} Bahn", ("DE", "DE")),
        ("Contoso {u}", "Contoso {u} Digital", ("DE", "DE")),
        ("Contoso {u} GmbH", "Contoso {u} GmbH", ("DE", "AT")),
    ],
    ids=["look-alike", "one-word-changed", "extension", "other-country"],
)
async def test_look_alikes_and_namesakes_abroad_do_not_collide(
    conflict: Conflict, first: str, second: str, countries: tuple[str, str]
) -> None:
    c = conflict
    u = unique("")
    a = vetted(unique("p-a-"), company=first.format(u=u), country=countries[0])
    b = vetted(unique("p-b-"), company=second.format(u=u), country=countries[1])
    await publish_vetted(c.producer, a)
    await decided(c, a)
    await publish_vetted(c.producer, b)
    assert (await decided(c, b))["status"] == "approved"


async def test_two_different_domains_are_two_customers_even_under_one_name(conflict: Conflict) -> None:
    c = conflict
    u = unique("")
    a = vetted(unique("p-a-"), company=f"Phoenix {u} Consulting", domain=f"phoenix{u}.de")
    b = vetted(unique("p-b-"), company=f"Phoenix {u} Consulting GmbH", domain=f"phoenix-{u}-consulting.de")
    await publish_vetted(c.producer, a)
    await decided(c, a)
    await publish_vetted(c.producer, b)
    assert (await decided(c, b))["status"] == "approved"


async def test_without_a_common_product_line_the_same_customer_is_no_conflict(conflict: Conflict) -> None:
    c = conflict
    domain = f"{unique('tailspin')}.com"
    a = vetted(unique("p-a-"), company=f"Tailspin {unique('')}", domain=domain, product_lines=("analytics",))
    b = vetted(unique("p-b-"), company=f"Tailspin {unique('')}", domain=domain, product_lines=("storage", "network"))
    await publish_vetted(c.producer, a)
    await decided(c, a)
    await publish_vetted(c.producer, b)
    assert (await decided(c, b))["status"] == "approved"


async def test_the_same_partner_registering_the_same_deal_again_is_duplicate_of_own(conflict: Conflict) -> None:
    c = conflict
    partner, domain = unique("p-own-"), f"{unique('wingtip')}.com"
    a = vetted(partner, company=f"Wingtip Toys {unique('')}", domain=domain)
    b = vetted(partner, company=f"Wingtip Toys Inc {unique('')}", domain=f"www.{domain}")
    await publish_vetted(c.producer, a)
    await decided(c, a)
    await publish_vetted(c.producer, b)
    status = await decided(c, b)
    assert (status["status"], status["reason_code"]) == ("rejected", "duplicate_of_own")
    assert status["manager_detail"]["earlier_registration_id"] == str(a.registration_id)


async def test_manager_review_holds_the_later_registration_with_both_sides_and_approval_is_refused_while_the_other_is_protected(  # noqa: E501
    conflict: Conflict,
) -> None:
    c = conflict
    domain = f"{unique('adatum')}.com"
    a = vetted(unique("p-a-"), company=f"Adatum {unique('')}", domain=domain, region="review")
    b = vetted(unique("p-b-"), company=f"Adatum Corp {unique('')}", domain=domain, region="review")
    await publish_vetted(c.producer, a)
    assert (await decided(c, a))["status"] == "approved"
    await publish_vetted(c.producer, b)
    held = await decided(c, b)
    assert (held["status"], held["reason_code"]) == ("under_review", None)
    assert held["manager_detail"]["competing_registration_id"] == str(a.registration_id)
    assert held["manager_detail"]["competing_partner_id"] == a.partner_id
    assert a.partner_id not in partner_view(held)
    refusal = await refused(c, await publish_decision(c.producer, b.registration_id, "approve"))
    assert str(a.registration_id) in refusal["reason"]
    await publish_decision(c.producer, b.registration_id, "reject")
    rejected = await decided(c, b, count=2)
    assert (rejected["status"], rejected["reason_code"]) == ("rejected", "rejected_by_manager")
    assert opportunities_of(c, b.registration_id) == []


async def test_under_review_on_both_sides_approving_one_rejects_the_other_and_creates_one_opportunity(
    conflict: Conflict,
) -> None:
    c = conflict
    domain = f"{unique('litware')}.com"
    a = vetted(unique("p-a-"), company=f"Litware {unique('')}", domain=domain, region="review_manual")
    b = vetted(unique("p-b-"), company=f"Litware Inc {unique('')}", domain=domain, region="review_manual")
    await publish_vetted(c.producer, a)
    assert (await decided(c, a))["status"] == "under_review"
    await publish_vetted(c.producer, b)
    assert (await decided(c, b))["status"] == "under_review"
    await publish_decision(c.producer, b.registration_id, "approve")
    approved = await decided(c, b, count=2)
    assert approved["status"] == "approved"
    assert _near(approved["protected_until"], utcnow() + timedelta(days=30))
    loser = await decided(c, a, count=2)
    assert (loser["status"], loser["reason_code"]) == ("rejected", "registered_by_another_partner")
    assert b.partner_id not in partner_view(loser)
    await c.opportunities.wait_for("b's opportunity", lambda: opportunities_of(c, b.registration_id))
    assert opportunities_of(c, a.registration_id) == []
    late = await refused(c, await publish_decision(c.producer, a.registration_id, "approve"))
    assert "rejected" in late["reason"]


async def test_manual_approval_waits_for_a_manager_and_every_decision_applies_only_where_valid(
    conflict: Conflict,
) -> None:
    c = conflict
    reg = vetted(
        unique("p-m-"), company=f"Proseware {unique('')}", domain=f"{unique('proseware')}.com", region="manual"
    )
    await publish_vetted(c.producer, reg)
    assert (await decided(c, reg))["status"] == "under_review"
    early = await refused(c, await publish_decision(c.producer, reg.registration_id, "extend", extend_days=5))
    assert "under_review, not protected" in early["reason"]
    await publish_decision(c.producer, reg.registration_id, "approve")
    approved = await decided(c, reg, count=2)
    assert approved["status"] == "approved"
    assert _near(approved["protected_until"], utcnow() + timedelta(days=60))  # the manual region's 60 days
    await c.opportunities.wait_for("the opportunity", lambda: opportunities_of(c, reg.registration_id))
    again = await refused(c, await publish_decision(c.producer, reg.registration_id, "approve"))
    assert "not under review" in again["reason"]
    late_reject = await refused(c, await publish_decision(c.producer, reg.registration_id, "reject"))
    assert "not under review" in late_reject["reason"]
    await publish_decision(c.producer, reg.registration_id, "extend", extend_days=15)
    extended = await decided(c, reg, count=3)
    until = datetime.fromisoformat(approved["protected_until"]) + timedelta(days=15)
    assert datetime.fromisoformat(extended["protected_until"]) == until
    over = await refused(c, await publish_decision(c.producer, reg.registration_id, "extend", extend_days=6))
    assert "cap 20 days" in over["reason"]  # 15 of the region's 20 are used
    await publish_decision(c.producer, reg.registration_id, "extend", extend_days=5)
    assert datetime.fromisoformat((await decided(c, reg, count=4))["protected_until"]) == until + timedelta(days=5)
    assert len(opportunities_of(c, reg.registration_id)) == 1
    assert (await row_of(c, reg.registration_id))["extended_days"] == 20


async def test_a_decision_about_an_unknown_or_rejected_registration_is_refused(conflict: Conflict) -> None:
    c = conflict
    unknown = vetted(unique("p-x-"), company=f"Nobody {unique('')}")
    assert (await refused(c, await publish_decision(c.producer, unknown.registration_id, "approve")))["reason"] == (
        "unknown registration"
    )
    partner, domain = unique("p-r-"), f"{unique('coho')}.com"
    first, dup = (
        vetted(partner, company=f"Coho {unique('')}", domain=domain),
        vetted(partner, company=f"Coho {unique('')}", domain=domain),
    )
    await publish_vetted(c.producer, first)
    await decided(c, first)
    await publish_vetted(c.producer, dup)
    assert (await decided(c, dup))["reason_code"] == "duplicate_of_own"
    for decision in ("approve", "reject", "extend"):
        refusal = await refused(c, await publish_decision(c.producer, dup.registration_id, decision, extend_days=1))
        assert "rejected" in refusal["reason"]
