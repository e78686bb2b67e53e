"""Partner onboarding events: applications, vetting results, decisions and the partner lifecycle."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import EmailStr, Field

from dealreg_shared.contracts.common import (
    Contract,
    CountryCode,
    Identifier,
    Name,
    ProductLine,
    StrictContract,
    Text,
)


class Contact(StrictContract):
    name: Name
    email: EmailStr


class PublicKey(StrictContract):
    key_id: Identifier
    public_key: str = Field(pattern=r"^[A-Za-z0-9_-]{43}$", description="32 raw bytes, base64url, no padding")


class TargetMarkets(StrictContract):
    product_lines: list[ProductLine] = Field(default_factory=list, max_length=50)
    industries: list[Name] = Field(default_factory=list, max_length=50)


class PartnerApplicationSubmitted(StrictContract):
    application_id: UUID
    company_name: Name
    website: str = Field(min_length=3, max_length=500)
    contact: Contact
    country: CountryCode
    target_markets: TargetMarkets = Field(default_factory=TargetMarkets)
    public_keys: list[PublicKey] = Field(min_length=1, max_length=10)
    webhook_url: str | None = Field(default=None, max_length=2000, pattern=r"^https?://")
    submitted_at: datetime


class ApplicationCheck(Contract):
    check: str
    passed: bool
    evidence: Text


class PartnerApplicationVetted(Contract):
    application_id: UUID
    partner_id: Identifier
    company_name: Name
    domain: str
    country: CountryCode
    contact: Contact
    checks: list[ApplicationCheck]
    flags: list[str]
    recommendation: Literal["approve", "review", "reject"]


class PartnerApplicationDecided(Contract):
    decision_id: UUID
    application_id: UUID
    decision: Literal["approve", "reject"]
    tier: Identifier | None = None
    manager_id: Name
    reason: Text = ""


class PartnerApproved(Contract):
    partner_id: Identifier
    application_id: UUID
    company_name: Name
    domain: str
    tier: Identifier
    region: Identifier
    contacts: list[Contact]
    public_keys: list[PublicKey]
    webhook_url: str | None = None


class PartnerApplicationRejected(Contract):
    application_id: UUID
    partner_id: Identifier
    company_name: Name
    contact: Contact
    reason: Text = ""


class PartnerStatusChanged(Contract):
    """`partner.suspended` and `partner.reinstated`."""

    partner_id: Identifier
    reason: Text = ""


class PartnerKeysUpdated(Contract):
    partner_id: Identifier
    public_keys: list[PublicKey]
