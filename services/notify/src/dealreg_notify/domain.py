"""Notify's decisions, free of I/O: who hears about an event, and what exactly they are told."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from dealreg_shared.contracts import (
    DecisionRefused,
    PartnerApplicationRejected,
    PartnerApplicationVetted,
    PartnerApproved,
    ReasonCode,
    RegistrationStatusChanged,
    Status,
)

Channel = Literal["email", "webhook"]

# what needs a manager: decisions to take and conflicts to know about
MANAGER_STATUSES = {Status.UNDER_REVIEW, Status.EXPIRING}
MANAGER_REASONS = {ReasonCode.REGISTERED_BY_ANOTHER_PARTNER, ReasonCode.EXCLUSIVE_TERRITORY}


@dataclass(frozen=True)
class PartnerContacts:
    partner_id: str
    company_name: str
    emails: tuple[str, ...]
    webhook_url: str | None


@dataclass(frozen=True)
class Managers:
    emails: tuple[str, ...]
    webhook_url: str | None = None


@dataclass(frozen=True)
class Notification:
    recipient: str  # who, as one stable key: "partner:<id>" or "manager:<address>"
    channel: Channel
    address: str
    subject: str
    text: str
    payload: dict[str, Any] = field(default_factory=dict)


def _to_partner(partner: PartnerContacts, subject: str, text: str, payload: dict[str, Any]) -> list[Notification]:
    out = [Notification(f"partner:{partner.partner_id}", "email", e, subject, text, payload) for e in partner.emails]
    if partner.webhook_url:
        out.append(
            Notification(f"partner:{partner.partner_id}", "webhook", partner.webhook_url, subject, text, payload)
        )
    return out


def _to_managers(managers: Managers, subject: str, text: str, payload: dict[str, Any]) -> list[Notification]:
    out = [Notification(f"manager:{e}", "email", e, subject, text, payload) for e in managers.emails]
    if managers.webhook_url:
        out.append(Notification("manager:webhook", "webhook", managers.webhook_url, subject, text, payload))
    return out


def route_status(
    status: RegistrationStatusChanged, partner: PartnerContacts | None, managers: Managers
) -> list[Notification]:
    """The partner hears every status of its own registration, in partner-safe words only; managers what needs them."""
    customer = status.customer_name or "your customer"
    short = str(status.registration_id)[:8]
    out: list[Notification] = []
    if partner is not None:
        payload = {
            "type": "registration.status-changed",
            "registration_id": str(status.registration_id),
            "status": status.status.value,
            "reason_code": status.reason_code.value if status.reason_code else None,
            "message": status.partner_message,
            "customer_name": status.customer_name,
            "protected_until": status.protected_until.isoformat() if status.protected_until else None,
            "occurred_at": status.occurred_at.isoformat(),
        }
        text = (
            f"Registration {status.registration_id} for {customer}\n"
            f"Status: {status.status.value}"
            + (f" ({status.reason_code.value})" if status.reason_code else "")
            + f"\n\n{status.partner_message}\n"
        )
        out += _to_partner(partner, f"Deal registration {short} ({customer}): {status.status.value}", text, payload)
    if status.status in MANAGER_STATUSES or status.reason_code in MANAGER_REASONS:
        detail = status.manager_detail
        lines = [
            f"Registration {status.registration_id} for {customer} by partner {status.partner_id}",
            f"Status: {status.status.value}" + (f" ({status.reason_code.value})" if status.reason_code else ""),
            f"Stage: {status.stage}",
        ]
        if competing := detail.get("competing_partner_id"):
            lines.append(
                f"Competing registration {detail.get('competing_registration_id')} by partner {competing} "
                f"(match: {detail.get('match')}, "
                f"product lines: {', '.join(detail.get('overlapping_product_lines', []))})"
            )
        lines.append("")
        lines.append(
            "Next: decide with a registration.decided event (approve, reject or extend)."
            if status.status == Status.UNDER_REVIEW
            else "Next: no action is needed unless you want to overrule the first-come rule."
        )
        kind = "Review needed" if status.status == Status.UNDER_REVIEW else "Channel conflict"
        out += _to_managers(
            managers,
            f"[dealreg] {kind}: {customer} ({status.partner_id})",
            "\n".join(lines) + "\n",
            {"type": "registration.status-changed", **status.model_dump(mode="json")},
        )
    return out


def route_application_vetted(vetted: PartnerApplicationVetted, managers: Managers) -> list[Notification]:
    lines = [
        f"{vetted.company_name} ({vetted.domain}, {vetted.country}) applied to become a partner.",
        f"Contact: {vetted.contact.name} <{vetted.contact.email}>",
        f"Recommendation: {vetted.recommendation}",
        "Checks:",
        *[f"  [{'ok' if c.passed else 'FLAG'}] {c.check}: {c.evidence}" for c in vetted.checks],
        "",
        f"Next: approve or reject application {vetted.application_id} with a partner.application.decided event.",
    ]
    return _to_managers(
        managers,
        f"[dealreg] Partner application: {vetted.company_name} (recommendation: {vetted.recommendation})",
        "\n".join(lines) + "\n",
        {"type": "partner.application.vetted", **vetted.model_dump(mode="json")},
    )


def route_partner_approved(approved: PartnerApproved) -> list[Notification]:
    partner = PartnerContacts(
        approved.partner_id,
        approved.company_name,
        tuple(str(c.email) for c in approved.contacts),
        approved.webhook_url,
    )
    text = (
        f"Welcome, {approved.company_name}: your partner account {approved.partner_id} is approved "
        f"(tier {approved.tier}, region {approved.region}).\nYou can now submit signed deal registrations.\n"
    )
    payload = {"type": "partner.approved", "partner_id": approved.partner_id, "tier": approved.tier}
    return _to_partner(partner, "Your dealreg partner account is approved", text, payload)


def route_application_rejected(rejected: PartnerApplicationRejected) -> list[Notification]:
    return [
        Notification(
            f"applicant:{rejected.application_id}",
            "email",
            str(rejected.contact.email),
            "Your partner application",
            f"Thank you for applying, {rejected.company_name}. We are not able to accept the application.\n",
        )
    ]


def route_decision_refused(refused: DecisionRefused, managers: Managers) -> list[Notification]:
    return _to_managers(
        managers,
        f"[dealreg] Decision not applied: {refused.decision} on {refused.subject_id}",
        f"Decision {refused.decision_id} ({refused.decision} on {refused.subject_id}) was not applied: "
        f"{refused.reason}.\n",
        {"type": "decision.refused", **refused.model_dump(mode="json")},
    )
