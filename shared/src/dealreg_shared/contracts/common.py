"""Building blocks of the contract: event type names, statuses, reason codes, money and bounded strings."""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, WithJsonSchema
from pydantic.networks import validate_email


class EventType(StrEnum):
    REGISTRATION_SUBMITTED = "registration.submitted"
    REGISTRATION_RECEIVED = "registration.received"
    REGISTRATION_VETTED = "registration.vetted"
    REGISTRATION_STATUS_CHANGED = "registration.status-changed"
    REGISTRATION_DECIDED = "registration.decided"
    OPPORTUNITY_CREATED = "opportunity.created"
    DECISION_REFUSED = "decision.refused"
    TERRITORY_GRANTED = "territory.granted"
    PARTNER_APPLICATION_SUBMITTED = "partner.application.submitted"
    PARTNER_APPLICATION_VETTED = "partner.application.vetted"
    PARTNER_APPLICATION_DECIDED = "partner.application.decided"
    PARTNER_APPLICATION_REJECTED = "partner.application.rejected"
    PARTNER_APPROVED = "partner.approved"
    PARTNER_SUSPENDED = "partner.suspended"
    PARTNER_REINSTATED = "partner.reinstated"
    PARTNER_KEYS_UPDATED = "partner.keys.updated"
    PARTNER_DECIDED = "partner.decided"
    PARTNER_APPLICATION_INVALID = "partner.application.invalid"


class Status(StrEnum):
    RECEIVED = "received"
    REJECTED = "rejected"
    UNDER_REVIEW = "under_review"
    APPROVED = "approved"
    EXPIRING = "expiring"
    EXPIRED = "expired"


class ReasonCode(StrEnum):
    INVALID_PAYLOAD = "invalid_payload"
    UNAUTHENTICATED = "unauthenticated"
    UNKNOWN_PARTNER = "unknown_partner"
    PARTNER_INACTIVE = "partner_inactive"
    CONFLICTING_RESUBMISSION = "conflicting_resubmission"
    RATE_LIMITED = "rate_limited"
    CAPACITY_EXCEEDED = "capacity_exceeded"
    NOT_ENTITLED = "not_entitled"
    NOT_ELIGIBLE = "not_eligible"
    CUSTOMER_IS_PARTNER = "customer_is_partner"
    REGISTERED_BY_ANOTHER_PARTNER = "registered_by_another_partner"
    DUPLICATE_OF_OWN = "duplicate_of_own"
    EXCLUSIVE_TERRITORY = "exclusive_territory"
    REJECTED_BY_MANAGER = "rejected_by_manager"
    # not a rejection: an `under_review` status event that escalates a review past its region's SLA
    REVIEW_OVERDUE = "review_overdue"


_PLAIN_DECIMAL = re.compile(r"^\d{1,16}(\.\d{1,2})?$")


def _plain_decimal_string(value: Any) -> Any:
    if isinstance(value, float | int) and not isinstance(value, bool):
        raise ValueError("amounts are decimal strings, never numbers")
    if isinstance(value, str) and not _PLAIN_DECIMAL.match(value):
        raise ValueError("amounts are plain decimal strings such as 48000.00")
    return value


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(max_length=2000)]
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
Amount = Annotated[
    Decimal,
    BeforeValidator(_plain_decimal_string),
    # what partners' tools see: a string, never a JSON number
    WithJsonSchema({"type": "string", "pattern": _PLAIN_DECIMAL.pattern, "examples": ["48000.00"]}),
    Field(gt=Decimal(0), le=Decimal("1000000000000"), max_digits=18, decimal_places=2),
]
ProductLine = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


@lru_cache(maxsize=4096)
def _valid_email(value: str) -> str:
    # an address travels in several events and is read again at every stage: checked once per process
    # (only valid ones are remembered: lru_cache keeps no exceptions)
    return validate_email(value)[1]


# pydantic's EmailStr (the same check, error and JSON schema), with its verdicts on valid addresses remembered
Email = Annotated[str, AfterValidator(_valid_email), WithJsonSchema({"type": "string", "format": "email"})]


class Contract(BaseModel):
    """Internal events: tolerant of fields added by a newer producer."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class StrictContract(BaseModel):
    """What outsiders send us: unknown fields are a mistake worth naming."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Money(StrictContract):
    amount: Amount
    currency: CurrencyCode
