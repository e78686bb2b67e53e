"""Which managers' decisions apply, free of I/O: a decision that does not apply is refused with the reason."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError

from dealreg_shared.contracts import PartnerDecided
from dealreg_vetting.config import VettingConfig
from dealreg_vetting.eligibility import PartnerStanding


def refuse_application_decision(
    *,
    status: str | None,
    decision: str,
    tier: str,
    config: VettingConfig,
    domain: str,
    domain_partner: str | None,
) -> str | None:
    """Why a decision on an application cannot apply, or None. `domain_partner`: a partner that has the domain."""
    if status is None:
        return "unknown application"
    if status != "pending":
        return f"application already {status}"
    if decision == "approve":
        if tier not in config.tiers:
            return f"unknown tier {tier!r} (the program's tiers: {', '.join(sorted(config.tiers))})"
        if domain_partner is not None:
            # screened before that partner existed: approving would make two partners of one company
            return f"{domain} is already partner {domain_partner}"
    return None


def refuse_partner_decision(partner: PartnerStanding | None, decided: PartnerDecided) -> str | None:
    """Why a suspension, reinstatement or key update cannot apply, or None."""
    if partner is None:
        return "unknown partner"
    if decided.decision == "suspend" and not partner.active:
        return "partner already suspended"
    if decided.decision == "reinstate" and partner.active:
        return "partner is not suspended"
    return None


def readable_uuid(value: Any) -> uuid.UUID | None:
    """An id to answer to, from a record that otherwise breaks the contract."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def describe_errors(exc: ValidationError) -> list[str]:
    """`field.path: message` for each problem, short enough for an event and a manager's email."""
    return [f"{'.'.join(str(p) for p in e['loc']) or '(record)'}: {e['msg']}"[:500] for e in exc.errors()[:20]]
