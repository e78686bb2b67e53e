"""Which events travel on which topic, who publishes and who consumes them: the source of the AsyncAPI document."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from dealreg_shared.contracts.common import EventType
from dealreg_shared.contracts.partners import (
    PartnerApplicationDecided,
    PartnerApplicationInvalid,
    PartnerApplicationRejected,
    PartnerApplicationSubmitted,
    PartnerApplicationVetted,
    PartnerApproved,
    PartnerDecided,
    PartnerKeysUpdated,
    PartnerStatusChanged,
)
from dealreg_shared.contracts.registrations import (
    DecisionRefused,
    OpportunityCreated,
    RegistrationDecided,
    RegistrationReceived,
    RegistrationStatusChanged,
    RegistrationSubmitted,
    RegistrationVetted,
    TerritoryGranted,
)
from dealreg_shared.topics import (
    OPPORTUNITIES,
    PARTNER_APPLICATIONS,
    PARTNER_DECISIONS,
    PARTNERS,
    REGISTRATION_DECISIONS,
    REGISTRATION_STATUS,
    REGISTRATIONS_RECEIVED,
    REGISTRATIONS_SUBMITTED,
    REGISTRATIONS_VETTED,
    Topic,
)

MODELS: dict[EventType, type[BaseModel]] = {
    EventType.REGISTRATION_SUBMITTED: RegistrationSubmitted,
    EventType.REGISTRATION_RECEIVED: RegistrationReceived,
    EventType.REGISTRATION_VETTED: RegistrationVetted,
    EventType.REGISTRATION_STATUS_CHANGED: RegistrationStatusChanged,
    EventType.REGISTRATION_DECIDED: RegistrationDecided,
    EventType.OPPORTUNITY_CREATED: OpportunityCreated,
    EventType.DECISION_REFUSED: DecisionRefused,
    EventType.PARTNER_APPLICATION_SUBMITTED: PartnerApplicationSubmitted,
    EventType.PARTNER_APPLICATION_VETTED: PartnerApplicationVetted,
    EventType.PARTNER_APPLICATION_DECIDED: PartnerApplicationDecided,
    EventType.PARTNER_APPLICATION_REJECTED: PartnerApplicationRejected,
    EventType.PARTNER_APPROVED: PartnerApproved,
    EventType.PARTNER_SUSPENDED: PartnerStatusChanged,
    EventType.PARTNER_REINSTATED: PartnerStatusChanged,
    EventType.PARTNER_KEYS_UPDATED: PartnerKeysUpdated,
    EventType.PARTNER_DECIDED: PartnerDecided,
    EventType.PARTNER_APPLICATION_INVALID: PartnerApplicationInvalid,
    EventType.TERRITORY_GRANTED: TerritoryGranted,
}


@dataclass(frozen=True)
class Channel:
    topic: Topic
    events: tuple[EventType, ...]
    producers: tuple[str, ...]
    consumers: tuple[str, ...]


CHANNELS: tuple[Channel, ...] = (
    Channel(PARTNER_APPLICATIONS, (EventType.PARTNER_APPLICATION_SUBMITTED,), ("onboarding",), ("vetting",)),
    Channel(
        PARTNER_DECISIONS,
        (EventType.PARTNER_APPLICATION_DECIDED, EventType.PARTNER_DECIDED),
        ("managers",),
        ("vetting",),
    ),
    Channel(
        PARTNERS,
        (
            EventType.PARTNER_APPLICATION_VETTED,
            EventType.PARTNER_APPROVED,
            EventType.PARTNER_APPLICATION_REJECTED,
            EventType.PARTNER_SUSPENDED,
            EventType.PARTNER_REINSTATED,
            EventType.PARTNER_KEYS_UPDATED,
            EventType.PARTNER_APPLICATION_INVALID,
            EventType.DECISION_REFUSED,
        ),
        ("vetting",),
        ("intake", "notify"),
    ),
    Channel(REGISTRATIONS_SUBMITTED, (EventType.REGISTRATION_SUBMITTED,), ("partners",), ("intake",)),
    Channel(REGISTRATIONS_RECEIVED, (EventType.REGISTRATION_RECEIVED,), ("intake",), ("vetting",)),
    Channel(REGISTRATIONS_VETTED, (EventType.REGISTRATION_VETTED,), ("vetting",), ("conflict",)),
    Channel(
        REGISTRATION_DECISIONS,
        (EventType.REGISTRATION_DECIDED, EventType.TERRITORY_GRANTED),
        ("managers",),
        ("conflict",),
    ),
    Channel(
        REGISTRATION_STATUS,
        (EventType.REGISTRATION_STATUS_CHANGED, EventType.DECISION_REFUSED),
        ("intake", "vetting", "conflict"),
        ("notify",),
    ),
    Channel(OPPORTUNITIES, (EventType.OPPORTUNITY_CREATED,), ("conflict",), ("crm",)),
)
