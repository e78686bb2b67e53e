"""Registration events: submitted by partners, received, vetted, decided, their statuses and opportunities."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import Field

from dealreg_shared.contracts.common import (
    Contract,
    CountryCode,
    Email,
    Identifier,
    Money,
    Name,
    ProductLine,
    ReasonCode,
    Status,
    StrictContract,
    Text,
)


class CustomerContact(StrictContract):
    name: Name
    email: Email


class Customer(StrictContract):
    company_name: Name
    domain: str | None = Field(default=None, max_length=253)
    country: CountryCode
    contact: CustomerContact


class OpportunityDetails(StrictContract):
    product_lines: list[ProductLine] = Field(min_length=1, max_length=20)
    estimated_value: Money
    expected_close_date: date
    description: Text = ""


class RegistrationSubmitted(StrictContract):
    registration_id: UUID
    partner_id: Identifier
    submitted_at: datetime
    customer: Customer
    opportunity: OpportunityDetails


class RegistrationReceived(Contract):
    """What intake forwards: the submission as registered, plus the normalized keys later stages rely on."""

    registration_id: UUID
    partner_id: Identifier
    submitted_at: datetime
    received_at: datetime
    customer: Customer
    customer_key: str
    registrable_domain: str | None
    region: Identifier
    opportunity: OpportunityDetails


class RegistrationVetted(RegistrationReceived):
    partner_tier: Identifier
    partner_region: Identifier
    flags: list[str] = Field(
        default_factory=list, description="eligible, but worth a manager's look (free_mail_contact on a large deal)"
    )


class RegistrationStatusChanged(Contract):
    registration_id: UUID
    partner_id: Identifier
    status: Status
    reason_code: ReasonCode | None = None
    stage: Literal["intake", "vetting", "conflict"]
    partner_message: Text
    manager_detail: dict[str, Any] = Field(default_factory=dict)
    protected_until: datetime | None = None
    occurred_at: datetime
    customer_name: Name | None = Field(default=None, description="the partner's own customer, for messages")
    region: Identifier | None = Field(default=None, description="the registration's region, for routing managers")


class RegistrationDecided(Contract):
    decision_id: UUID
    registration_id: UUID
    decision: Literal["approve", "reject", "extend"]
    manager_id: Name
    reason: Text = ""
    extend_days: int | None = Field(default=None, ge=1, le=365)


class DecisionRefused(Contract):
    decision_id: UUID
    subject_id: str
    decision: str
    reason: Text
    occurred_at: datetime


class OpportunityCreated(Contract):
    opportunity_id: UUID
    registration_id: UUID
    partner_id: Identifier
    customer: dict[str, Any]
    product_lines: list[ProductLine]
    estimated_value: Money
    expected_close_date: date
    protected_until: datetime


class TerritoryGranted(Contract):
    """A manager grants a partner exclusivity for one product line in a region or a country, until `ends_at`.

    Published on the registration-decisions topic keyed by `territory_id`; conflict refuses a grant longer
    than the region's exclusivity cap (`decision.refused`). It lapses by itself at `ends_at`.
    """

    territory_id: Identifier
    partner_id: Identifier
    product_line: ProductLine
    region: Identifier | None = None
    country: CountryCode | None = None
    starts_at: datetime
    ends_at: datetime
    manager_id: Name
    reason: Text = ""
