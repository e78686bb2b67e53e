"""Conflict's decisions, free of I/O: does a registration collide with another or a territory, and what follows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from dealreg_conflict.matching import compare_names, name_keys
from dealreg_shared.contracts import ReasonCode, Status

ACTIVE = ("under_review", "approved", "expiring")
REVIEWING = "Your registration is being reviewed by the channel team."
TAKEN = "This customer deal is already registered by another partner."
NOT_ELIGIBLE = "This customer deal is not eligible for registration: it falls in a partner's exclusive territory."


@dataclass(frozen=True)
class Policy:
    """One region's rules (see policies.py for where they come from)."""

    protection_days: int
    resolution: Literal["first_come", "manager_review"]
    approval: Literal["auto", "manual"]
    extension_cap_days: int
    exclusivity_cap_days: int = 365
    review_sla_hours: int = 48
    expiring_notice_days: int = 14
    territory_conflict: Literal["reject", "review"] = "reject"
    review_lead: str = ""


@dataclass(frozen=True)
class Candidate:
    """A registration being decided, or an active one it may collide with."""

    registration_id: str
    partner_id: str
    customer_key: str
    product_lines: frozenset[str]
    status: str = "new"
    domain: str | None = None  # registrable domain
    name: str = ""  # cleaned company name (matching.clean_company_name)
    country: str = ""
    region: str = ""


@dataclass(frozen=True)
class Match:
    how: Literal["domain", "name"]
    score: float = 100.0


@dataclass(frozen=True)
class Territory:
    """A partner's exclusivity for one product line in a region or a country, from start to end."""

    territory_id: str
    partner_id: str
    product_line: str
    starts_at: datetime
    ends_at: datetime
    region: str | None = None
    country: str | None = None

    def covers(self, reg: Candidate, now: datetime) -> bool:
        where = (self.country is not None and self.country == reg.country) or (
            self.region is not None and self.region == reg.region
        )
        return where and self.product_line in reg.product_lines and self.starts_at <= now < self.ends_at


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


def match_customer(new: Candidate, other: Candidate) -> Match | None:
    """Same customer? Registrable domains decide when both registrations carry one; else company names
    within one country.

    Two different registrable domains are two customers even under one name: "Phoenix Consulting" is a name
    many firms share, a domain one owns. Names decide only where a domain is missing on either side.
    """
    if new.domain and other.domain:
        return Match("domain") if new.domain == other.domain else None
    if new.customer_key == other.customer_key:
        return Match("name" if new.customer_key.startswith("name:") or "." not in new.customer_key else "domain")
    if not new.name or not other.name or new.country != other.country:
        return None
    names = compare_names(new.name, other.name)
    return Match("name", names.score) if names.matches else None


def detect_conflicts(new: Candidate, active: list[Candidate]) -> list[Candidate]:
    """Active registrations of the same customer that share at least one product line with `new`."""
    return [
        other
        for other in active
        if other.registration_id != new.registration_id
        and other.product_lines & new.product_lines
        and match_customer(new, other) is not None
    ]


def _how(new: Candidate, other: Candidate) -> str:
    match = match_customer(new, other)
    return match.how if match else "name"


def _competing(new: Candidate, others: list[Candidate]) -> dict[str, Any]:
    first = others[0]
    match = match_customer(new, first) or Match("name")
    return {
        "competing_registration_id": first.registration_id,
        "competing_partner_id": first.partner_id,
        "competing": [{"registration_id": c.registration_id, "partner_id": c.partner_id} for c in others],
        "match": match.how,
        "match_score": round(match.score, 1),
        "overlapping_product_lines": sorted(new.product_lines & first.product_lines),
    }


def decide(
    new: Candidate,
    conflicts: list[Candidate],
    policy: Policy,
    now: datetime,
    territories: list[Territory] | None = None,
) -> Outcome:
    own = [c for c in conflicts if c.partner_id == new.partner_id]
    others = [c for c in conflicts if c.partner_id != new.partner_id]
    if own:
        return Outcome(
            Status.REJECTED,
            "You already registered this customer deal; the earlier registration stands.",
            ReasonCode.DUPLICATE_OF_OWN,
            {"earlier_registration_id": own[0].registration_id, "match": _how(new, own[0])},
        )
    blocking = [t for t in territories or [] if t.partner_id != new.partner_id and t.covers(new, now)]
    if blocking:
        t = blocking[0]
        detail = {
            "territory_id": t.territory_id,
            "territory_partner_id": t.partner_id,
            "territory_product_line": t.product_line,
            "territory_ends_at": t.ends_at.isoformat(),
        }
        if policy.territory_conflict == "reject":
            return Outcome(Status.REJECTED, NOT_ELIGIBLE, ReasonCode.EXCLUSIVE_TERRITORY, detail)
        # held, not refused: the partner hears "under review" and nothing of the territory
        return Outcome(Status.UNDER_REVIEW, REVIEWING, manager_detail={**detail, "held_for": "exclusive_territory"})
    if others:
        detail = _competing(new, others)
        if policy.resolution == "first_come":
            return Outcome(Status.REJECTED, TAKEN, ReasonCode.REGISTERED_BY_ANOTHER_PARTNER, detail)
        return Outcome(Status.UNDER_REVIEW, REVIEWING, manager_detail=detail)
    if policy.approval == "manual":
        return Outcome(Status.UNDER_REVIEW, REVIEWING)
    until = now + timedelta(days=policy.protection_days)
    return Outcome(
        Status.APPROVED,
        f"Your registration is approved and protected until {until.date().isoformat()}.",
        protected_until=until,
    )


def refuse_decision(
    decision: str,
    *,
    status: str | None,
    protected_until: datetime | None,
    extended_days: int,
    extend_days: int | None,
    policy: Policy,
    now: datetime,
) -> str | None:
    """Why a manager's decision cannot apply to a registration in this state, or None when it can."""
    if status is None:
        return "unknown registration"
    if decision in ("approve", "reject"):
        return None if status == "under_review" else f"registration is {status}, not under review"
    if status not in ("approved", "expiring") or protected_until is None:
        return f"registration is {status}, not protected"
    if protected_until <= now:
        return "registration's protection has lapsed"
    left = policy.extension_cap_days - extended_days
    if not extend_days or extend_days > left:
        return f"extension must be 1 to {max(left, 0)} days (cap {policy.extension_cap_days} days in all)"
    return None


def expiring_from(protected_until: datetime, policy: Policy) -> datetime:
    """When the reminder that protection ends soon is due."""
    return protected_until - timedelta(days=policy.expiring_notice_days)


def review_due(since: datetime, policy: Policy) -> datetime:
    """When a registration still under review escalates to the region's lead."""
    return since + timedelta(hours=policy.review_sla_hours)


def blocking_keys(reg: Candidate) -> list[str]:
    """The advisory locks a decision about `reg` holds: any two registrations that `match_customer` can pair
    share at least one (same customer key, same domain, or a shared name key in one country)."""
    keys = [f"key:{reg.customer_key}"]
    if reg.domain:
        keys.append(f"domain:{reg.domain}")
    keys += sorted(f"name:{k}" for k in name_keys(reg.name, reg.country))
    return keys
