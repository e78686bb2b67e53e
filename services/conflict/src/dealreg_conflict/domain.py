"""Conflict's decisions, free of I/O: does a registration collide with an active one, and what follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from dealreg_shared.contracts import ReasonCode, Status


@dataclass(frozen=True)
class Policy:
    protection_days: int
    resolution: Literal["first_come", "manager_review"]
    approval: Literal["auto", "manual"]
    extension_cap_days: int


@dataclass(frozen=True)
class Candidate:
    """A registration being decided, or an active one it may collide with."""

    registration_id: str
    partner_id: str
    customer_key: str
    product_lines: frozenset[str]
    status: str = "new"


@dataclass(frozen=True)
class Outcome:
    status: Status
    partner_message: str
    reason_code: ReasonCode | None = None
    manager_detail: dict[str, Any] = field(default_factory=dict)
    protected_until: datetime | None = None

    @property
    def creates_opportunity(self) -> bool:
        return self.status == Status.APPROVED


def detect_conflicts(new: Candidate, active: list[Candidate]) -> list[Candidate]:
    """Active registrations of the same customer that share at least one product line with `new`."""
    return [
        other
        for other in active
        if other.registration_id != new.registration_id
        and other.customer_key == new.customer_key
        and other.product_lines & new.product_lines
    ]


def decide(new: Candidate, conflicts: list[Candidate], policy: Policy, now: datetime) -> Outcome:
    own = [c for c in conflicts if c.partner_id == new.partner_id]
    others = [c for c in conflicts if c.partner_id != new.partner_id]
    if own:
        return Outcome(
            Status.REJECTED,
            "You already registered this customer deal; the earlier registration stands.",
            ReasonCode.DUPLICATE_OF_OWN,
            {"earlier_registration_id": own[0].registration_id, "match": "customer_key"},
        )
    if others:
        detail = {
            "competing_registration_id": others[0].registration_id,
            "competing_partner_id": others[0].partner_id,
            "competing": [{"registration_id": c.registration_id, "partner_id": c.partner_id} for c in others],
            "match": "domain" if "." in new.customer_key and not new.customer_key.startswith("name:") else "name",
            "overlapping_product_lines": sorted(new.product_lines & others[0].product_lines),
        }
        if policy.resolution == "first_come":
            return Outcome(
                Status.REJECTED,
                "This customer deal is already registered by another partner.",
                ReasonCode.REGISTERED_BY_ANOTHER_PARTNER,
                detail,
            )
        return Outcome(
            Status.UNDER_REVIEW,
            "Your registration is being reviewed by the channel team.",
            manager_detail=detail,
        )
    if policy.approval == "manual":
        return Outcome(Status.UNDER_REVIEW, "Your registration is being reviewed by the channel team.")
    until = now + timedelta(days=policy.protection_days)
    return Outcome(
        Status.APPROVED,
        f"Your registration is approved and protected until {until.date().isoformat()}.",
        protected_until=until,
    )
