"""What each notification says: the facts of the event and what the reader can do next, rendered from templates."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dealreg_notify.templates import render
from dealreg_shared.contracts import (
    DecisionRefused,
    PartnerApplicationRejected,
    PartnerApplicationVetted,
    PartnerApproved,
    ReasonCode,
    RegistrationStatusChanged,
    Status,
)
from dealreg_shared.topics import PARTNER_DECISIONS, REGISTRATION_DECISIONS

Message = tuple[str, str, str]  # subject, text, html

PARTNER_NEXT = {
    Status.RECEIVED: "Nothing to do for now: you will hear the outcome here.",
    Status.APPROVED: "The deal is yours to work until {until}. Ask your channel manager if you need more time.",
    Status.UNDER_REVIEW: "The channel team is reviewing the registration; you will hear their decision here.",
    Status.EXPIRING: "Protection ends on {until}. If the deal is still open, ask your channel manager to extend it.",
    Status.EXPIRED: "Protection has ended. If the deal is still active, register it again.",
}
PARTNER_NEXT_REJECTED = {
    ReasonCode.INVALID_PAYLOAD: "Correct the registration as described and submit it with a new registration_id.",
    ReasonCode.UNAUTHENTICATED: "Sign the registration with one of the keys you registered, then submit it again.",
    ReasonCode.CONFLICTING_RESUBMISSION: "A registration_id is used once: submit the change with a new one.",
    ReasonCode.RATE_LIMITED: "Submit it again later.",
    ReasonCode.CAPACITY_EXCEEDED: "Close or withdraw open registrations, or ask your channel manager about limits.",
}
PARTNER_NEXT_DEFAULT = "If you believe this is wrong, contact your channel manager with the registration id."

# detail keys shown as sides of the conflict rather than listed again
_SIDE_KEYS = {"competing", "competing_partner_id", "competing_registration_id", "match", "overlapping_product_lines"}


def _date(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else ""


def _customer(status: RegistrationStatusChanged) -> str:
    return status.customer_name or "your customer"


def partner_status_message(status: RegistrationStatusChanged) -> Message:
    """Partner-safe: only the partner's own registration and the partner message, never the manager detail."""
    until = _date(status.protected_until)
    if status.status == Status.REJECTED:
        reason = status.reason_code
        next_step = PARTNER_NEXT_REJECTED.get(reason, PARTNER_NEXT_DEFAULT) if reason else PARTNER_NEXT_DEFAULT
    else:
        next_step = PARTNER_NEXT.get(status.status, PARTNER_NEXT_DEFAULT).format(until=until or "the date given")
    context = {
        "registration_id": str(status.registration_id),
        "customer": _customer(status),
        "status": status.status.value,
        "reason_code": status.reason_code.value if status.reason_code else None,
        "message": status.partner_message,
        "protected_until": until,
        "occurred_at": _date(status.occurred_at),
        "next_step": next_step,
    }
    subject = f"Deal registration {str(status.registration_id)[:8]} ({_customer(status)}): {status.status.value}"
    return (subject, *render("partner_status", **context))


def _decision(registration_id: str, decision: str, **extra: Any) -> str:
    example = {
        "decision_id": "<a new UUID>",
        "registration_id": registration_id,
        "decision": decision,
        "manager_id": "<your id>",
        "reason": "<why>",
        **extra,
    }
    return json.dumps(example)


def _sides(status: RegistrationStatusChanged, names: dict[str, str]) -> list[dict[str, str]]:
    detail = status.manager_detail
    competing: list[dict[str, Any]] = [c for c in detail.get("competing", []) if isinstance(c, dict)]
    if not competing and detail.get("competing_registration_id"):
        competing = [
            {"registration_id": detail["competing_registration_id"], "partner_id": detail.get("competing_partner_id")}
        ]
    sides = [
        {
            "label": "this registration",
            "registration_id": str(status.registration_id),
            "partner_id": status.partner_id,
            "partner_name": names.get(status.partner_id, ""),
        }
    ]
    for c in competing:
        partner_id = str(c.get("partner_id") or "")
        sides.append(
            {
                "label": "competing registration",
                "registration_id": str(c.get("registration_id") or ""),
                "partner_id": partner_id,
                "partner_name": names.get(partner_id, ""),
            }
        )
    return sides


def _manager_actions(status: RegistrationStatusChanged, sides: list[dict[str, str]], escalation: bool) -> list[str]:
    rid = str(status.registration_id)
    if status.status == Status.UNDER_REVIEW or escalation:
        actions = [
            f"Approve {side['label']} {side['registration_id']}: {_decision(side['registration_id'], 'approve')}"
            for side in sides
        ]
        return [*actions, f"Reject this registration: {_decision(rid, 'reject')}"]
    if status.status == Status.EXPIRING:
        return [f"Extend the protection: {_decision(rid, 'extend', extend_days=30)}"]
    return [
        "Nothing to do unless you overrule the rule applied: decide on either side with a registration.decided "
        f"event, e.g. {_decision(rid, 'approve')}"
    ]


def manager_status_message(
    status: RegistrationStatusChanged, *, escalation: bool, partner_names: dict[str, str], region: str | None
) -> Message:
    """The full story for managers: both sides of a conflict, the evidence, and the decisions they can publish."""
    if escalation:
        kind = "Escalation: review overdue"
    elif status.status == Status.UNDER_REVIEW:
        kind = "Review needed"
    elif status.status == Status.EXPIRING:
        kind = "Protection expiring"
    else:
        kind = "Channel conflict"
    sides = _sides(status, partner_names)
    detail = status.manager_detail
    context = {
        "kind": kind,
        "registration_id": str(status.registration_id),
        "customer": _customer(status),
        "partner_id": status.partner_id,
        "partner_name": partner_names.get(status.partner_id, ""),
        "region": region or "default",
        "status": status.status.value,
        "reason_code": status.reason_code.value if status.reason_code else None,
        "stage": status.stage,
        "protected_until": _date(status.protected_until),
        "occurred_at": _date(status.occurred_at),
        "sides": sides if len(sides) > 1 else [],
        "match": detail.get("match"),
        "product_lines": ", ".join(str(p) for p in detail.get("overlapping_product_lines", [])),
        "other_detail": [
            (k, json.dumps(v) if not isinstance(v, str) else v) for k, v in detail.items() if k not in _SIDE_KEYS
        ],
        "actions": _manager_actions(status, sides, escalation),
        "decision_topic": REGISTRATION_DECISIONS.name,
    }
    subject = f"[dealreg] {kind}: {_customer(status)} ({status.partner_id})"
    return (subject, *render("manager_status", **context))


def application_vetted_message(vetted: PartnerApplicationVetted, *, region: str | None) -> Message:
    application_id = str(vetted.application_id)
    decision = {"decision_id": "<a new UUID>", "application_id": application_id, "manager_id": "<your id>"}
    context = {
        "vetted": vetted,
        "application_id": application_id,
        "region": region or "default",
        "approve": json.dumps({**decision, "decision": "approve", "tier": "registered", "reason": "<why>"}),
        "reject": json.dumps({**decision, "decision": "reject", "reason": "<why>"}),
        "decision_topic": PARTNER_DECISIONS.name,
    }
    subject = f"[dealreg] Partner application: {vetted.company_name} (recommendation: {vetted.recommendation})"
    return (subject, *render("application_vetted", **context))


def partner_approved_message(approved: PartnerApproved) -> Message:
    return ("Your dealreg partner account is approved", *render("partner_approved", approved=approved))


def application_rejected_message(rejected: PartnerApplicationRejected) -> Message:
    return ("Your partner application", *render("application_rejected", company_name=rejected.company_name))


def decision_refused_message(refused: DecisionRefused) -> Message:
    subject = f"[dealreg] Decision not applied: {refused.decision} on {refused.subject_id}"
    return (subject, *render("decision_refused", refused=refused))


@dataclass(frozen=True)
class DigestItem:
    subject: str
    text: str
    created_at: datetime


def digest_message(period: str, items: list[DigestItem]) -> Message:
    """One email for what a manager chose to hear `period`-ly, oldest first."""
    count = f"{len(items)} notification" + ("" if len(items) == 1 else "s")
    context = {"period": period, "count": count, "items": [(i.subject, i.text, _date(i.created_at)) for i in items]}
    return (f"[dealreg] Your {period} digest: {count}", *render("digest", **context))
