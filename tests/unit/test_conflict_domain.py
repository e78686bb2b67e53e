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
