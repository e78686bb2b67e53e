"""Vetting's decisions, free of I/O: screening partner applications and registrations' eligibility."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass
from typing import Literal

from dealreg_shared.contracts import (
    ApplicationCheck,
    PartnerApplicationSubmitted,
    ReasonCode,
    RegistrationReceived,
)
from dealreg_shared.domains import registrable_domain

# a starter list; issue-tracked work replaces it with a maintained list from PyPI
FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "yahoo.com",
        "yahoo.co.uk",
        "hotmail.com",
        "outlook.com",
        "live.com",
        "aol.com",
        "icloud.com",
        "me.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.ru",
        "yandex.ru",
        "qq.com",
        "163.com",
        "proton.me",
        "protonmail.com",
        "free.fr",
        "orange.fr",
        "libero.it",
        "t-online.de",
    }
)


@dataclass(frozen=True)
class Screening:
    domain: str
    checks: list[ApplicationCheck]
    flags: list[str]
    recommendation: Literal["approve", "review", "reject"]


def screen_application(
    app: PartnerApplicationSubmitted, *, existing_partner_domains: set[str], denied: frozenset[str]
) -> Screening:
    """Run every check, record each with its evidence, and recommend; a manager still decides."""
    email_domain = registrable_domain(str(app.contact.email)) or ""
    site_domain = registrable_domain(app.website) or ""
    checks = [
        ApplicationCheck(check="invalid_email", passed=bool(email_domain), evidence=f"email domain {email_domain!r}"),
        ApplicationCheck(
            check="free_mail",
            passed=email_domain not in FREE_MAIL_DOMAINS,
            evidence=f"email domain {email_domain}",
        ),
        ApplicationCheck(
            check="domain_mismatch",
            passed=bool(site_domain) and email_domain == site_domain,
            evidence=f"email domain {email_domain}, website domain {site_domain or '(none)'}",
        ),
        ApplicationCheck(
            check="already_partner",
            passed=site_domain not in existing_partner_domains,
            evidence=f"partner domains checked for {site_domain}",
        ),
        ApplicationCheck(
            check="deny_listed",
            passed=site_domain not in denied and email_domain not in denied,
            evidence=f"{len(denied)} denied domains checked",
        ),
    ]
    flags = [c.check for c in checks if not c.passed]
    hard = {"invalid_email", "already_partner", "deny_listed"}
    recommendation: Literal["approve", "review", "reject"] = (
        "reject" if hard & set(flags) else "review" if flags else "approve"
    )
    return Screening(site_domain or email_domain, checks, flags, recommendation)


def partner_id_for(domain: str, application_id: uuid.UUID) -> str:
    """Readable and unique: `p-<first label of the domain>-<10 hex of a hash of the application id>`.

    Applicants choose application ids, so the suffix is hashed: nobody can aim at another's partner id.
    """
    label = re.sub(r"[^a-z0-9]+", "-", domain.split(".")[0].lower()).strip("-")[:40] or "partner"
    return f"p-{label}-{hashlib.sha256(application_id.bytes).hexdigest()[:10]}"


@dataclass(frozen=True)
class PartnerStanding:
    partner_id: str
    domain: str
    tier: str
    region: str
    active: bool


@dataclass(frozen=True)
class Ineligible:
    reason_code: ReasonCode
    partner_message: str
    manager_reason: str


def check_eligibility(reg: RegistrationReceived, partner: PartnerStanding | None) -> Ineligible | None:
    if partner is None:
        return Ineligible(ReasonCode.UNKNOWN_PARTNER, "This partner is not known to the program.", "no such partner")
    if not partner.active:
        return Ineligible(ReasonCode.PARTNER_INACTIVE, "This partner account is not active.", "partner suspended")
    if reg.registrable_domain and reg.registrable_domain == partner.domain:
        return Ineligible(
            ReasonCode.CUSTOMER_IS_PARTNER,
            "A partner cannot register its own company as a customer.",
            f"customer domain {reg.registrable_domain} is the partner's own",
        )
    return None
