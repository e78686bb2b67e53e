"""Conflict's pure decisions: which active registrations collide with a new one, and what follows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dealreg_conflict.domain import Candidate, Outcome, Policy, decide, detect_conflicts
from dealreg_shared.contracts import ReasonCode, Status

NOW = datetime(2026, 11, 23, 10, 15, 1, tzinfo=UTC)
FIRST_COME = Policy(protection_days=90, resolution="first_come", approval="auto", extension_cap_days=90)
REVIEW = Policy(protection_days=90, resolution="manager_review", approval="auto", extension_cap_days=90)
MANUAL = Policy(protection_days=60, resolution="first_come", approval="manual", extension_cap_days=90)

NEW = Candidate("reg-new", "p-northwind", "contoso.de", frozenset({"analytics", "storage"}))


def _other(
    registration_id: str = "reg-old",
    partner_id: str = "p-fabrikam",
    customer_key: str = "contoso.de",
    product_lines: frozenset[str] = frozenset({"analytics"}),
) -> Candidate:
    return Candidate(registration_id, partner_id, customer_key, product_lines, status="approved")


def test_detect_conflicts_finds_same_customer_with_an_overlapping_product_line() -> None:
    other = _other()
    assert detect_conflicts(NEW, [other]) == [other]


def test_detect_conflicts_ignores_another_customer_even_with_the_same_product_line() -> None:
    assert detect_conflicts(NEW, [_other(customer_key="fabrikam.com")]) == []


def test_detect_conflicts_ignores_the_same_customer_without_an_overlapping_product_line() -> None:
    assert detect_conflicts(NEW, [_other(product_lines=frozenset({"security"}))]) == []


def test_detect_conflicts_ignores_the_registration_itself() -> None:
    itself = Candidate("reg-new", "p-northwind", "contoso.de", frozenset({"analytics"}))
    assert detect_conflicts(NEW, [itself]) == []


def test_detect_conflicts_keeps_only_the_colliding_ones_in_order() -> None:
    a = _other("reg-a", "p-a")
    b = _other("reg-b", "p-b", customer_key="other.com")
    c = _other("reg-c", "p-c", product_lines=frozenset({"storage", "network"}))
    d = _other("reg-d", "p-d", product_lines=frozenset({"network"}))
    assert detect_conflicts(NEW, [a, b, c, d]) == [a, c]


def test_detect_conflicts_with_no_active_registrations_is_empty() -> None:
    assert detect_conflicts(NEW, []) == []


def test_decide_approves_a_clear_registration_with_protection_from_now() -> None:
    outcome = decide(NEW, [], FIRST_COME, NOW)
    assert outcome.status == Status.APPROVED
    assert outcome.reason_code is None
    assert outcome.protected_until == NOW + timedelta(days=90)
    assert outcome.creates_opportunity
    assert (NOW + timedelta(days=90)).date().isoformat() in outcome.partner_message


@pytest.mark.parametrize("days", [1, 30, 365])
def test_decide_uses_the_policys_protection_days(days: int) -> None:
    policy = Policy(protection_days=days, resolution="first_come", approval="auto", extension_cap_days=0)
    assert decide(NEW, [], policy, NOW).protected_until == NOW + timedelta(days=days)


def test_decide_rejects_another_partners_overlapping_registration_under_first_come() -> None:
    other = _other("reg-old", "p-fabrikam")
    outcome = decide(NEW, detect_conflicts(NEW, [other]), FIRST_COME, NOW)
    assert outcome.status == Status.REJECTED
    assert outcome.reason_code == ReasonCode.REGISTERED_BY_ANOTHER_PARTNER
    assert outcome.protected_until is None
    assert not outcome.creates_opportunity
    assert outcome.manager_detail["competing_registration_id"] == "reg-old"
    assert outcome.manager_detail["competing_partner_id"] == "p-fabrikam"
    assert outcome.manager_detail["overlapping_product_lines"] == ["analytics"]
    assert outcome.manager_detail["match"] == "domain"


def test_the_partner_message_of_a_conflict_names_no_other_partner_or_registration() -> None:
    for policy in (FIRST_COME, REVIEW):
        outcome = decide(NEW, [_other("reg-old", "p-fabrikam")], policy, NOW)
        assert "p-fabrikam" not in outcome.partner_message
        assert "reg-old" not in outcome.partner_message
        assert "fabrikam" not in outcome.partner_message.lower()


def test_manager_detail_lists_every_competing_registration() -> None:
    conflicts = [_other("reg-a", "p-a"), _other("reg-b", "p-b")]
    outcome = decide(NEW, conflicts, FIRST_COME, NOW)
    assert outcome.manager_detail["competing"] == [
        {"registration_id": "reg-a", "partner_id": "p-a"},
        {"registration_id": "reg-b", "partner_id": "p-b"},
    ]


def test_a_name_keyed_conflict_is_reported_as_a_name_match() -> None:
    new = Candidate("reg-new", "p-northwind", "name:de:contoso gmbh", frozenset({"analytics"}))
    other = _other(customer_key="name:de:contoso gmbh")
    outcome = decide(new, detect_conflicts(new, [other]), FIRST_COME, NOW)
    assert outcome.manager_detail["match"] == "name"


def test_a_name_keyed_conflict_with_a_dot_in_the_name_is_still_a_name_match() -> None:
    new = Candidate("reg-new", "p-northwind", "name:us:acme inc.", frozenset({"analytics"}))
    other = _other(customer_key="name:us:acme inc.")
    assert decide(new, [other], FIRST_COME, NOW).manager_detail["match"] == "name"


def test_decide_rejects_the_same_partners_second_registration_as_duplicate_of_own() -> None:
    own = _other("reg-earlier", "p-northwind")
    outcome = decide(NEW, detect_conflicts(NEW, [own]), FIRST_COME, NOW)
    assert outcome.status == Status.REJECTED
    assert outcome.reason_code == ReasonCode.DUPLICATE_OF_OWN
    assert outcome.manager_detail["earlier_registration_id"] == "reg-earlier"
    assert not outcome.creates_opportunity


def test_duplicate_of_own_wins_over_a_conflict_with_another_partner() -> None:
    outcome = decide(NEW, [_other("reg-x", "p-fabrikam"), _other("reg-earlier", "p-northwind")], REVIEW, NOW)
    assert outcome.reason_code == ReasonCode.DUPLICATE_OF_OWN


def test_duplicate_of_own_applies_under_manager_review_too() -> None:
    outcome = decide(NEW, [_other("reg-earlier", "p-northwind")], REVIEW, NOW)
    assert outcome.status == Status.REJECTED
    assert outcome.reason_code == ReasonCode.DUPLICATE_OF_OWN


def test_manager_review_puts_a_conflicting_registration_under_review_with_the_competing_detail() -> None:
    outcome = decide(NEW, [_other("reg-old", "p-fabrikam")], REVIEW, NOW)
    assert outcome.status == Status.UNDER_REVIEW
    assert outcome.reason_code is None
    assert outcome.protected_until is None
    assert not outcome.creates_opportunity
    assert outcome.manager_detail["competing_registration_id"] == "reg-old"
    assert outcome.manager_detail["competing_partner_id"] == "p-fabrikam"


def test_manual_approval_puts_a_clear_registration_under_review() -> None:
    outcome = decide(NEW, [], MANUAL, NOW)
    assert outcome.status == Status.UNDER_REVIEW
    assert outcome.protected_until is None
    assert not outcome.creates_opportunity


def test_manual_approval_still_rejects_a_first_come_conflict() -> None:
    outcome = decide(NEW, [_other()], MANUAL, NOW)
    assert outcome.status == Status.REJECTED
    assert outcome.reason_code == ReasonCode.REGISTERED_BY_ANOTHER_PARTNER


def test_only_an_approved_outcome_creates_an_opportunity() -> None:
    for status in Status:
        assert Outcome(status, "m").creates_opportunity is (status == Status.APPROVED)


# matching customers, territories, managers' decisions, locks (the deepened rules)

from dealreg_conflict.domain import (  # noqa: E402
    Match,
    Territory,
    blocking_keys,
    match_customer,
    refuse_decision,
)


def _reg(
    rid: str, partner: str, *, domain: str | None = None, name: str = "", country: str = "DE", region: str = "emea"
) -> Candidate:
    key = domain or f"name:{country.lower()}:{name}"
    return Candidate(rid, partner, key, frozenset({"analytics"}), "approved", domain, name, country, region)


def test_the_same_registrable_domain_is_the_same_customer_whatever_the_names() -> None:
    assert match_customer(
        _reg("a", "p", domain="contoso.de", name="contoso"), _reg("b", "q", domain="contoso.de", name="x")
    ) == Match("domain")


def test_two_different_domains_are_two_customers_even_with_identical_names() -> None:
    assert (
        match_customer(_reg("a", "p", domain="a.de", name="phoenix"), _reg("b", "q", domain="b.de", name="phoenix"))
        is None
    )


def test_without_a_domain_on_one_side_names_decide_within_a_country() -> None:
    with_domain = _reg("a", "p", domain="contoso.de", name="contoso pharmaceuticals")
    assert match_customer(_reg("b", "q", name="contoso pharmaceutcals"), with_domain) == Match(
        "name", pytest.approx(97.8, abs=0.1)
    )
    assert match_customer(_reg("b", "q", name="contoso pharmaceuticals", country="AT"), with_domain) is None
    assert match_customer(_reg("b", "q", name="contoso digital"), with_domain) is None


def test_registrations_that_can_match_share_a_blocking_key() -> None:
    pairs = [
        (_reg("a", "p", domain="contoso.de", name="contoso"), _reg("b", "q", domain="contoso.de", name="other")),
        (_reg("a", "p", domain="contoso.de", name="contoso pharma"), _reg("b", "q", name="contoso pharmaa")),
        (_reg("a", "p", name="wide world importers"), _reg("b", "q", name="world wide importers")),
    ]
    for a, b in pairs:
        assert match_customer(a, b) is not None
        assert set(blocking_keys(a)) & set(blocking_keys(b))


TERRITORY = Territory("t1", "p-holder", "analytics", NOW - timedelta(days=1), NOW + timedelta(days=10), country="NZ")


def test_another_partners_registration_inside_a_territory_is_rejected_under_a_reject_policy() -> None:
    reg = _reg("r", "p-other", name="kiwi", country="NZ", region="apac")
    outcome = decide(reg, [], FIRST_COME, NOW, [TERRITORY])
    assert (outcome.status, outcome.reason_code) == (Status.REJECTED, ReasonCode.EXCLUSIVE_TERRITORY)
    assert outcome.manager_detail["territory_partner_id"] == "p-holder"
    assert "p-holder" not in outcome.partner_message


def test_a_territory_is_held_for_review_under_a_review_policy_and_the_partner_hears_nothing_of_it() -> None:
    policy = Policy(90, "first_come", "auto", 90, territory_conflict="review")
    outcome = decide(_reg("r", "p-other", name="kiwi", country="NZ"), [], policy, NOW, [TERRITORY])
    assert (outcome.status, outcome.reason_code) == (Status.UNDER_REVIEW, None)
    assert outcome.manager_detail["held_for"] == "exclusive_territory"
    assert "territory" not in outcome.partner_message


def test_a_territory_binds_neither_its_holder_nor_other_lines_nor_other_places_nor_after_its_end() -> None:
    assert (
        decide(_reg("r", "p-holder", name="kiwi", country="NZ"), [], FIRST_COME, NOW, [TERRITORY]).status == "approved"
    )
    assert decide(_reg("r", "p-x", name="kiwi", country="AU"), [], FIRST_COME, NOW, [TERRITORY]).status == "approved"
    other_line = Candidate("r", "p-x", "k", frozenset({"storage"}), country="NZ")
    assert decide(other_line, [], FIRST_COME, NOW, [TERRITORY]).status == "approved"
    later = NOW + timedelta(days=10)
    assert decide(_reg("r", "p-x", name="kiwi", country="NZ"), [], FIRST_COME, later, [TERRITORY]).status == "approved"


def test_a_region_territory_covers_every_country_of_the_region() -> None:
    region_wide = Territory("t2", "p-holder", "analytics", NOW, NOW + timedelta(days=5), region="apac")
    outcome = decide(_reg("r", "p-x", name="kiwi", country="JP", region="apac"), [], FIRST_COME, NOW, [region_wide])
    assert outcome.reason_code == ReasonCode.EXCLUSIVE_TERRITORY


def test_duplicate_of_own_comes_before_a_territory() -> None:
    own = _reg("earlier", "p-x", name="kiwi", country="NZ")
    outcome = decide(_reg("r", "p-x", name="kiwi", country="NZ"), [own], FIRST_COME, NOW, [TERRITORY])
    assert outcome.reason_code == ReasonCode.DUPLICATE_OF_OWN


def _refusal(
    decision: str, status: str | None, *, until: datetime | None = None, used: int = 0, days: int | None = None
) -> str | None:
    return refuse_decision(
        decision, status=status, protected_until=until, extended_days=used, extend_days=days, policy=REVIEW, now=NOW
    )


@pytest.mark.parametrize("status", ["approved", "expiring", "rejected", "expired"])
def test_approve_and_reject_apply_only_under_review(status: str) -> None:
    assert _refusal("approve", "under_review") is None and _refusal("reject", "under_review") is None
    assert _refusal("approve", status) == f"registration is {status}, not under review"
    assert _refusal("reject", status) == f"registration is {status}, not under review"


def test_extend_applies_to_protected_registrations_within_the_total_cap() -> None:
    until = NOW + timedelta(days=3)
    assert _refusal("extend", "approved", until=until, days=90) is None
    assert _refusal("extend", "expiring", until=until, used=80, days=10) is None
    assert "1 to 10 days" in (_refusal("extend", "expiring", until=until, used=80, days=11) or "")
    assert "not protected" in (_refusal("extend", "under_review", days=1) or "")
    assert "not protected" in (_refusal("extend", "expired", until=NOW - timedelta(days=1), days=1) or "")
    assert "lapsed" in (_refusal("extend", "approved", until=NOW, days=1) or "")
    assert _refusal("extend", None, days=1) == "unknown registration"
