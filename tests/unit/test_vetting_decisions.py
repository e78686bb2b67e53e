"""Managers' decisions in every state: which apply, and why the others are refused."""

from __future__ import annotations

import uuid

import pytest

from dealreg_shared.contracts import PartnerDecided
from dealreg_vetting.config import VettingConfig
from dealreg_vetting.decisions import refuse_application_decision, refuse_partner_decision
from dealreg_vetting.eligibility import PartnerStanding

CONFIG = VettingConfig()
ACTIVE = PartnerStanding("p-nw-0123456789", "northwind.co.uk", "gold", "emea", active=True)
SUSPENDED = PartnerStanding("p-nw-0123456789", "northwind.co.uk", "gold", "emea", active=False)


def refusal(status: str | None, decision: str, *, tier: str = "gold", partner: str | None = None) -> str | None:
    return refuse_application_decision(
        status=status, decision=decision, tier=tier, config=CONFIG, domain="northwind.co.uk", domain_partner=partner
    )


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_pending_application_takes_either_decision(decision: str) -> None:
    assert refusal("pending", decision) is None


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_decision_on_an_unknown_application_is_refused(decision: str) -> None:
    assert refusal(None, decision) == "unknown application"


@pytest.mark.parametrize("status", ["approved", "rejected"])
@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_decided_application_refuses_every_further_decision(status: str, decision: str) -> None:
    assert refusal(status, decision) == f"application already {status}"


def test_an_approval_with_a_tier_the_program_lacks_is_refused_naming_the_tiers() -> None:
    reason = refusal("pending", "approve", tier="diamond")
    assert reason is not None and "diamond" in reason and "gold" in reason


def test_approving_a_second_partner_for_one_domain_is_refused_but_rejecting_is_not() -> None:
    reason = refusal("pending", "approve", partner="p-nw-9999999999")
    assert reason == "northwind.co.uk is already partner p-nw-9999999999"
    assert refusal("pending", "reject", partner="p-nw-9999999999") is None


def partner_decision(decision: str) -> PartnerDecided:
    keys = [{"key_id": "k2", "public_key": "B" * 43}] if decision == "update_keys" else None
    return PartnerDecided.model_validate(
        {
            "decision_id": str(uuid.uuid4()),
            "partner_id": ACTIVE.partner_id,
            "decision": decision,
            "manager_id": "maria",
            "public_keys": keys,
        }
    )


@pytest.mark.parametrize(
    ("standing", "decision", "expected"),
    [
        (None, "suspend", "unknown partner"),
        (None, "reinstate", "unknown partner"),
        (None, "update_keys", "unknown partner"),
        (ACTIVE, "suspend", None),
        (ACTIVE, "reinstate", "partner is not suspended"),
        (ACTIVE, "update_keys", None),
        (SUSPENDED, "suspend", "partner already suspended"),
        (SUSPENDED, "reinstate", None),
        (SUSPENDED, "update_keys", None),
    ],
)
def test_partner_decisions_apply_only_where_they_change_something(
    standing: PartnerStanding | None, decision: str, expected: str | None
) -> None:
    assert refuse_partner_decision(standing, partner_decision(decision)) == expected
