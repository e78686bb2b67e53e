"""Notify's decisions, free of I/O: who hears about an event, and what exactly they are told."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dealreg_notify.directory import Channel, Digest, Directory, Recipient
from dealreg_notify.messages import (
    application_rejected_message,
    application_vetted_message,
    decision_refused_message,
    manager_status_message,
    partner_approved_message,
    partner_status_message,
)
from dealreg_shared.contracts import (
    DecisionRefused,
    PartnerApplicationRejected,
    PartnerApplicationVetted,
    PartnerApproved,
    ReasonCode,
    RegistrationStatusChanged,
    Status,
)

# what needs a manager: decisions to take, conflicts to know about, protections about to end
MANAGER_STATUSES = {Status.UNDER_REVIEW, Status.EXPIRING}
MANAGER_REASONS = {ReasonCode.REGISTERED_BY_ANOTHER_PARTNER, ReasonCode.EXCLUSIVE_TERRITORY}


@dataclass(frozen=True)
class PartnerContacts:
    partner_id: str
    company_name: str
    emails: tuple[str, ...]
    webhook_url: str | None
    region: str | None = None


@dataclass(frozen=True)
class Notification:
    recipient: str  # who, as one stable key: "partner:<id>", "manager:<id>" or "applicant:<id>"
    channel: Channel
    address: str
    subject: str
    text: str
    payload: dict[str, Any] = field(default_factory=dict)
    html: str = ""
    digest: Digest = "none"  # held for the recipient's digest instead of sent at once


def is_escalation(status: RegistrationStatusChanged) -> bool:
    """A review that waited past the region's time: conflict's sweeper says so with `review_overdue`."""
    detail = status.manager_detail
    return status.reason_code == ReasonCode.REVIEW_OVERDUE or bool(detail.get("escalated") or detail.get("escalation"))


def competing_partner_ids(status: RegistrationStatusChanged) -> list[str]:
    """The other side(s) of a conflict, as the manager detail names them."""
    detail = status.manager_detail
    ids = [str(c["partner_id"]) for c in detail.get("competing", []) if isinstance(c, dict) and c.get("partner_id")]
    if detail.get("competing_partner_id"):
        ids.append(str(detail["competing_partner_id"]))
    return list(dict.fromkeys(ids))


def _to_partner(
    partner: PartnerContacts, directory: Directory, subject: str, text: str, html: str, payload: dict[str, Any]
) -> list[Notification]:
    who = f"partner:{partner.partner_id}"
    out: list[Notification] = []
    if directory.partner_wants(partner.partner_id, "email"):
        out += [Notification(who, "email", e, subject, text, payload, html) for e in partner.emails]
    if partner.webhook_url and directory.partner_wants(partner.partner_id, "webhook"):
        out.append(Notification(who, "webhook", partner.webhook_url, subject, text, payload, html))
    return out


def _to_recipients(
    recipients: list[Recipient], subject: str, text: str, html: str, payload: dict[str, Any]
) -> list[Notification]:
    """One notification per recipient and channel; someone with two roles hears once."""
    unique = {r.id: r for r in recipients}.values()
    return [
        Notification(
            f"manager:{r.id}",
            channel,
            address,
            subject,
            text,
            payload,
            html,
            r.digest if channel == "email" else "none",
        )
        for r in unique
        for channel, address in r.addresses()
    ]


def managers_for_status(
    status: RegistrationStatusChanged, partner: PartnerContacts | None, directory: Directory
) -> list[Recipient]:
    """The region's desk (its lead for an escalation) and the account managers of every partner involved."""
    if not (status.status in MANAGER_STATUSES or status.reason_code in MANAGER_REASONS or is_escalation(status)):
        return []
    region = status.region or (partner.region if partner else None)
    desk = directory.lead(region) if is_escalation(status) else directory.channel_managers(region)
    accounts = [m for p in [status.partner_id, *competing_partner_ids(status)] for m in directory.account_manager(p)]
    return desk + accounts


def route_status(
    status: RegistrationStatusChanged,
    partner: PartnerContacts | None,
    directory: Directory,
    partner_names: dict[str, str] | None = None,
) -> list[Notification]:
    """The partner hears every status of its own registration, in partner-safe words only; managers what needs them."""
    out: list[Notification] = []
    if partner is not None and not is_escalation(status):
        subject, text, html = partner_status_message(status)
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
        out += _to_partner(partner, directory, subject, text, html, payload)
    managers = managers_for_status(status, partner, directory)
    if managers:
        names = dict(partner_names or {})
        if partner is not None:
            names.setdefault(partner.partner_id, partner.company_name)
        subject, text, html = manager_status_message(
            status, escalation=is_escalation(status), partner_names=names, region=status.region or _region(partner)
        )
        payload = {"type": "registration.status-changed", **status.model_dump(mode="json")}
        out += _to_recipients(managers, subject, text, html, payload)
    return out


def _region(partner: PartnerContacts | None) -> str | None:
    return partner.region if partner else None


def route_application_vetted(
    vetted: PartnerApplicationVetted, directory: Directory, region: str | None = None
) -> list[Notification]:
    """The desk of the applicant's region decides: it gets every check that vetting ran."""
    subject, text, html = application_vetted_message(vetted, region=region)
    return _to_recipients(
        directory.channel_managers(region),
        subject,
        text,
        html,
        {"type": "partner.application.vetted", **vetted.model_dump(mode="json")},
    )


def partner_of(approved: PartnerApproved) -> PartnerContacts:
    return PartnerContacts(
        approved.partner_id,
        approved.company_name,
        tuple(str(c.email) for c in approved.contacts),
        approved.webhook_url,
        approved.region,
    )


def route_partner_approved(approved: PartnerApproved, directory: Directory | None = None) -> list[Notification]:
    subject, text, html = partner_approved_message(approved)
    payload = {"type": "partner.approved", "partner_id": approved.partner_id, "tier": approved.tier}
    return _to_partner(partner_of(approved), directory or Directory({}, {}), subject, text, html, payload)


def route_application_rejected(rejected: PartnerApplicationRejected) -> list[Notification]:
    subject, text, html = application_rejected_message(rejected)
    return [
        Notification(
            f"applicant:{rejected.application_id}", "email", str(rejected.contact.email), subject, text, {}, html
        )
    ]


def route_decision_refused(refused: DecisionRefused, directory: Directory) -> list[Notification]:
    """A refused decision carries no region: the default desk hears of it."""
    subject, text, html = decision_refused_message(refused)
    return _to_recipients(
        directory.channel_managers(None),
        subject,
        text,
        html,
        {"type": "decision.refused", **refused.model_dump(mode="json")},
    )
