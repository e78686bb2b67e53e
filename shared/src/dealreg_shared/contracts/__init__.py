"""Contract models of every event in the design, and their `ce_type` names."""

from dealreg_shared.contracts.common import EventType, Money, ReasonCode, Status
from dealreg_shared.contracts.partners import (
    ApplicationCheck,
    Contact,
    PartnerApplicationDecided,
    PartnerApplicationRejected,
    PartnerApplicationSubmitted,
    PartnerApplicationVetted,
    PartnerApproved,
    PartnerKeysUpdated,
    PartnerStatusChanged,
    PublicKey,
    TargetMarkets,
)
from dealreg_shared.contracts.registrations import (
    Customer,
    DecisionRefused,
    OpportunityCreated,
    OpportunityDetails,
    RegistrationDecided,
    RegistrationReceived,
    RegistrationStatusChanged,
    RegistrationSubmitted,
    RegistrationVetted,
)

__all__ = [
    "ApplicationCheck",
    "Contact",
    "Customer",
    "DecisionRefused",
    "EventType",
    "Money",
    "OpportunityCreated",
    "OpportunityDetails",
    "PartnerApplicationDecided",
    "PartnerApplicationRejected",
    "PartnerApplicationSubmitted",
    "PartnerApplicationVetted",
    "PartnerApproved",
    "PartnerKeysUpdated",
    "PartnerStatusChanged",
    "PublicKey",
    "ReasonCode",
    "RegistrationDecided",
    "RegistrationReceived",
    "RegistrationStatusChanged",
    "RegistrationSubmitted",
    "RegistrationVetted",
    "Status",
    "TargetMarkets",
]
