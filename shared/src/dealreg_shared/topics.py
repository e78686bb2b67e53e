"""The one catalogue of Kafka topics: every topic name, its partition count and its key live here only."""

from __future__ import annotations

from dataclasses import dataclass

DLQ_SUFFIX = ".dlq"


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int
    key: str
    description: str

    @property
    def dlq(self) -> Topic:
        """The dead-letter topic of this topic: same partitions, keyed by the original key."""
        return Topic(
            name=self.name + DLQ_SUFFIX,
            partitions=self.partitions,
            key=f"the original {self.key}",
            description=f"records of {self.name} a consumer could not decode or process",
        )


PARTNER_APPLICATIONS = Topic(
    "dealreg.partner-applications.v1", 3, "application_id", "partner applications from onboarding"
)
PARTNER_DECISIONS = Topic(
    "dealreg.partner-decisions.v1", 3, "application_id", "managers' decisions on applications and partners"
)
PARTNERS = Topic("dealreg.partners.v1", 3, "partner_id", "partner lifecycle: vetted, approved, suspended, keys")
REGISTRATIONS_SUBMITTED = Topic(
    "dealreg.registrations.submitted.v1", 6, "partner_id", "signed registrations from partner systems"
)
REGISTRATIONS_RECEIVED = Topic(
    "dealreg.registrations.received.v1", 6, "customer_key", "authenticated, valid, stored registrations"
)
REGISTRATIONS_VETTED = Topic(
    "dealreg.registrations.vetted.v1", 6, "customer_key", "registrations of eligible, active partners"
)
REGISTRATION_DECISIONS = Topic(
    "dealreg.registration-decisions.v1", 3, "registration_id", "managers' decisions on registrations"
)
REGISTRATION_STATUS = Topic(
    "dealreg.registrations.status.v1", 6, "registration_id", "every status a registration passes through"
)
OPPORTUNITIES = Topic(
    "dealreg.opportunities.v1", 3, "customer_key", "one opportunity per approved registration, for CRMs"
)

MAIN_TOPICS: tuple[Topic, ...] = (
    PARTNER_APPLICATIONS,
    PARTNER_DECISIONS,
    PARTNERS,
    REGISTRATIONS_SUBMITTED,
    REGISTRATIONS_RECEIVED,
    REGISTRATIONS_VETTED,
    REGISTRATION_DECISIONS,
    REGISTRATION_STATUS,
    OPPORTUNITIES,
)
ALL_TOPICS: tuple[Topic, ...] = MAIN_TOPICS + tuple(t.dlq for t in MAIN_TOPICS)

_BY_NAME = {t.name: t for t in ALL_TOPICS}


def by_name(name: str) -> Topic:
    """The catalogue entry of a topic name (KeyError for a name the catalogue does not know)."""
    return _BY_NAME[name]
