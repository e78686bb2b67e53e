"""Intake's decisions, free of I/O: who may submit, what a valid submission is, what limits hold, what it says back."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from dealreg_intake.settings import IntakeConfig, TierLimits
from dealreg_intake.validation import StrictSubmission, parse_submission
from dealreg_shared.contracts import ReasonCode, RegistrationReceived, Status
from dealreg_shared.domains import customer_key, registrable_domain
from dealreg_shared.regions import region_of
from dealreg_shared.signing import verify

# the contract's Identifier; fullmatch, because `$` in a Python pattern lets a trailing newline through
_PARTNER_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# statuses after which a registration no longer counts against its partner's capacity
_ENDS_ACTIVITY = frozenset({Status.REJECTED, Status.EXPIRED})


@dataclass(frozen=True)
class PartnerView:
    """Intake's projection of a partner: enough to authenticate a submission and apply its tier's limits."""

    partner_id: str
    active: bool
    keys: dict[str, str]  # key_id → public key (base64url)
    tier: str | None = None


@dataclass(frozen=True)
class Rejection:
    reason_code: ReasonCode
    partner_message: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class SubmissionRules:
    """What a submission is checked against at the moment it is read."""

    today: date
    horizon_days: int
    latest_submitted_at: datetime

    @classmethod
    def at(cls, now: datetime, config: IntakeConfig) -> SubmissionRules:
        return cls(now.date(), config.close_date_horizon_days, now + timedelta(seconds=config.max_clock_skew_s))


def claimed_ids(data: dict[str, Any]) -> tuple[str, str] | None:
    """The registration and partner ids a submission claims, if they are well-formed enough to answer to."""
    registration_id, partner_id = data.get("registration_id"), data.get("partner_id")
    if not isinstance(registration_id, str) or not isinstance(partner_id, str) or not _PARTNER_ID.fullmatch(partner_id):
        return None
    try:
        return str(uuid.UUID(registration_id)), partner_id
    except ValueError:
        return None


def _printable(text: str | None, limit: int = 64) -> str | None:
    return None if text is None else "".join(c if c.isprintable() else "?" for c in text[:limit])


def authenticate(
    partner: PartnerView | None, *, key_id: str | None, signature: str | None, value: bytes
) -> Rejection | None:
    """No registration without login: a known, active partner's own key signed these exact bytes."""
    if partner is None:
        return Rejection(ReasonCode.UNKNOWN_PARTNER, "This partner is not known to the program.", {})
    if not partner.active:
        return Rejection(ReasonCode.PARTNER_INACTIVE, "This partner account is not active.", {})
    public_key = partner.keys.get(key_id or "")
    if public_key is None or not signature or not verify(public_key, value, signature):
        return Rejection(
            ReasonCode.UNAUTHENTICATED,
            "The submission's signature could not be verified with a key registered for this partner.",
            {"key_id": _printable(key_id), "known_key": public_key is not None},
        )
    return None


def validate(data: dict[str, Any], rules: SubmissionRules) -> StrictSubmission | Rejection:
    """The submission as intake accepts it, or `invalid_payload` naming each bad field and why."""
    parsed = parse_submission(
        data, today=rules.today, horizon_days=rules.horizon_days, latest_submitted_at=rules.latest_submitted_at
    )
    if isinstance(parsed, StrictSubmission):
        return parsed
    return Rejection(
        ReasonCode.INVALID_PAYLOAD,
        ("The registration is invalid: " + "; ".join(parsed))[:2000],
        {"errors": parsed},
    )


def content_hash(data: dict[str, Any]) -> str:
    """The same content hashes the same however it was serialized (key order, spacing, escapes)."""
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def resubmission_rejection() -> Rejection:
    return Rejection(
        ReasonCode.CONFLICTING_RESUBMISSION,
        "A registration with this id was already submitted with different content; use a new id.",
        {},
    )


def rate_limited(limits: TierLimits, tier: str | None) -> Rejection:
    return Rejection(
        ReasonCode.RATE_LIMITED,
        f"Too many submissions: this partner may send {limits.burst} at once and "
        f"{limits.submissions_per_minute:g} a minute after that. Submit this registration again later.",
        {"tier": tier, "burst": limits.burst, "submissions_per_minute": limits.submissions_per_minute},
    )


def within_capacity(active_registrations: int, limits: TierLimits) -> bool:
    return active_registrations < limits.max_active_registrations


def capacity_exceeded(active_registrations: int, limits: TierLimits, tier: str | None) -> Rejection:
    return Rejection(
        ReasonCode.CAPACITY_EXCEEDED,
        f"This partner already holds {active_registrations} active registrations, the most its tier allows "
        f"({limits.max_active_registrations}). Submit again once one of them is closed or has expired.",
        {"tier": tier, "active": active_registrations, "max_active_registrations": limits.max_active_registrations},
    )


def still_active(status: Status) -> bool:
    """A registration counts against capacity until a later stage rejects it or its protection expires."""
    return status not in _ENDS_ACTIVITY


def to_received(sub: StrictSubmission, *, now: datetime, regions: dict[str, str]) -> RegistrationReceived:
    """The registration as later stages see it: normalized customer identity and region added.

    Built from plain data so that what is forwarded is the contract's own model, not intake's stricter one.
    """
    return RegistrationReceived.model_validate(
        {
            **sub.model_dump(),
            "received_at": now,
            "customer_key": customer_key(sub.customer.domain, sub.customer.company_name, sub.customer.country),
            "registrable_domain": registrable_domain(sub.customer.domain),
            "region": region_of(sub.customer.country, regions),
        }
    )
