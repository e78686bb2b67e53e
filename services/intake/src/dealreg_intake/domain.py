"""Intake's decisions, free of I/O: who may submit, what a valid submission is, and what intake says back."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from dealreg_shared.contracts import ReasonCode, RegistrationReceived, RegistrationSubmitted
from dealreg_shared.domains import customer_key, registrable_domain
from dealreg_shared.regions import region_of
from dealreg_shared.signing import verify


@dataclass(frozen=True)
class PartnerView:
    """Intake's projection of a partner: enough to authenticate a submission."""

    partner_id: str
    active: bool
    keys: dict[str, str]  # key_id → public key (base64url)


@dataclass(frozen=True)
class Rejection:
    reason_code: ReasonCode
    partner_message: str
    detail: dict[str, Any]


def claimed_ids(data: dict[str, Any]) -> tuple[str, str] | None:
    """The registration and partner ids a submission claims, if they are well-formed enough to answer to."""
    registration_id, partner_id = data.get("registration_id"), data.get("partner_id")
    if not isinstance(registration_id, str) or not isinstance(partner_id, str) or not 0 < len(partner_id) <= 64:
        return None
    try:
        return str(uuid.UUID(registration_id)), partner_id
    except ValueError:
        return None


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
            {"key_id": key_id, "known_key": public_key is not None},
        )
    return None


def validate(data: dict[str, Any]) -> RegistrationSubmitted | Rejection:
    try:
        return RegistrationSubmitted.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()[:10]]
        return Rejection(
            ReasonCode.INVALID_PAYLOAD,
            "The registration is invalid: " + "; ".join(problems),
            {"errors": problems},
        )


def content_hash(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


def resubmission_rejection() -> Rejection:
    return Rejection(
        ReasonCode.CONFLICTING_RESUBMISSION,
        "A registration with this id was already submitted with different content; use a new id.",
        {},
    )


def to_received(sub: RegistrationSubmitted, *, now: datetime, regions: dict[str, str]) -> RegistrationReceived:
    """The registration as later stages see it: normalized customer identity and region added."""
    domain = registrable_domain(sub.customer.domain)
    return RegistrationReceived(
        registration_id=sub.registration_id,
        partner_id=sub.partner_id,
        submitted_at=sub.submitted_at,
        received_at=now,
        customer=sub.customer,
        customer_key=customer_key(sub.customer.domain, sub.customer.company_name, sub.customer.country),
        registrable_domain=domain,
        region=region_of(sub.customer.country, regions),
        opportunity=sub.opportunity,
    )
