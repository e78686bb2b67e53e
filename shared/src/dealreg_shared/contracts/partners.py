"""Partner onboarding events: applications, vetting results, decisions and the partner lifecycle."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import Field, model_validator

from dealreg_shared.contracts.common import (
    Contract,
    CountryCode,
    Email,
    Identifier,
    Name,
    ProductLine,
    ReasonCode,
    StrictContract,
    Text,
)


class Contact(StrictContract):
    name: Name
    email: Email


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


class PartnerDecided(Contract):
    """`partner.decided`: a manager suspends, reinstates, or replaces the public keys of an approved partner.

    Published on the partner-decisions topic keyed by partner_id; `update_keys` carries the partner's whole new
    key set (rotate by adding the new key, then removing the old one), the other decisions carry none.
    """

    decision_id: UUID
    partner_id: Identifier
    decision: Literal["suspend", "reinstate", "update_keys"]
    manager_id: Name
    reason: Text = ""
    public_keys: list[PublicKey] | None = Field(default=None, min_length=1, max_length=10)

    @model_validator(mode="after")
    def _keys_only_with_update_keys(self) -> PartnerDecided:
        if (self.decision == "update_keys") != (self.public_keys is not None):
            raise ValueError("public_keys is required with update_keys and not allowed otherwise")
        key_ids = [k.key_id for k in self.public_keys or ()]
        if len(set(key_ids)) != len(key_ids):
            raise ValueError("public_keys has the same key_id twice")
        return self


class PartnerApplicationInvalid(Contract):
    """`partner.application.invalid`: an application that breaks the contract, answered with what is wrong."""

    application_id: UUID
    reason_code: ReasonCode = ReasonCode.INVALID_PAYLOAD
    errors: list[Text] = Field(min_length=1)
