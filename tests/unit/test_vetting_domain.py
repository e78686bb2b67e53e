"""Vetting's pure decisions: screening partner applications, partner ids, and registrations' eligibility."""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from dealreg_shared.contracts import PartnerApplicationSubmitted, ReasonCode, RegistrationReceived
from dealreg_vetting.config import VettingConfig
from dealreg_vetting.domain import Screening, partner_id_for, screen_application
from dealreg_vetting.eligibility import Ineligible, PartnerStanding, check_eligibility

APPLICATION: dict[str, Any] = {
    "application_id": "0b7e2f64-7d0a-4b8e-9a55-1f3c2d4e5a6b",
    "company_name": "Northwind Traders Ltd",
    "website": "https://www.northwind.co.uk",
    "contact": {"name": "Sam Patel", "email": "sam.patel@northwind.co.uk"},
    "country": "GB",
    "target_markets": {"product_lines": ["analytics"], "industries": ["manufacturing"]},
    "public_keys": [{"key_id": "k1", "public_key": "A" * 43}],
    "webhook_url": "https://partner.example/dealreg-hook",
    "submitted_at": "2026-11-23T09:00:00Z",
}


def _app(*, email: str | None = None, website: str | None = None) -> PartnerApplicationSubmitted:
    data = copy.deepcopy(APPLICATION)
    if email is not None:
        data["contact"]["email"] = email
    if website is not None:
        data["website"] = website
    return PartnerApplicationSubmitted.model_validate(data)


def _screen(
    app: PartnerApplicationSubmitted, existing: set[str] | None = None, denied: frozenset[str] = frozenset()
) -> Screening:
    config = VettingConfig.model_validate({"deny_list": {"domains": sorted(denied)}})
    partners = {domain: f"p-{domain.split('.')[0]}-0123456789" for domain in existing or set()}
    return screen_application(app, existing_partners=partners, config=config)


def _check(screening: Screening, name: str) -> bool:
    matches = [c for c in screening.checks if c.check == name]
    assert len(matches) == 1, f"check {name} recorded {len(matches)} times"
    return matches[0].passed


def test_a_clean_application_passes_every_check_and_is_recommended_for_approval() -> None:
    screening = _screen(_app())
    assert screening.flags == []
    assert all(c.passed for c in screening.checks)
    assert screening.recommendation == "approve"
    assert screening.domain == "northwind.co.uk"


def test_every_check_is_recorded_with_evidence() -> None:
    screening = _screen(_app())
    names = {c.check for c in screening.checks}
    assert {"invalid_email", "free_mail", "domain_mismatch", "already_partner", "deny_listed"} <= names
    assert all(c.evidence for c in screening.checks)


def test_flags_are_exactly_the_failed_checks() -> None:
    screening = _screen(_app(email="sam@gmail.com"), existing={"northwind.co.uk"})
    assert screening.flags == [c.check for c in screening.checks if not c.passed]


def test_a_gmail_contact_is_flagged_free_mail_and_sent_to_review() -> None:
    screening = _screen(_app(email="sam.patel@gmail.com"))
    assert _check(screening, "free_mail") is False
    assert "free_mail" in screening.flags
    assert screening.recommendation == "review"


def test_a_googlemail_address_is_free_mail() -> None:
    assert "free_mail" in _screen(_app(email="sam@googlemail.com")).flags


def test_an_email_domain_that_differs_from_the_website_is_flagged_domain_mismatch() -> None:
    screening = _screen(_app(email="sam@northwind-traders.com"))
    assert _check(screening, "domain_mismatch") is False
    assert _check(screening, "free_mail") is True
    assert screening.flags == ["domain_mismatch"]
    assert screening.recommendation == "review"


def test_an_email_on_a_subdomain_of_the_website_is_not_a_mismatch() -> None:
    screening = _screen(_app(email="sam@mail.northwind.co.uk", website="northwind.co.uk"))
    assert _check(screening, "domain_mismatch") is True
    assert screening.recommendation == "approve"


def test_an_application_from_an_existing_partners_domain_is_flagged_already_partner_and_rejected() -> None:
    screening = _screen(_app(), existing={"northwind.co.uk"})
    assert _check(screening, "already_partner") is False
    assert screening.flags == ["already_partner"]
    assert screening.recommendation == "reject"


def test_a_deny_listed_website_domain_is_flagged_and_rejected() -> None:
    screening = _screen(_app(), denied=frozenset({"northwind.co.uk"}))
    assert _check(screening, "deny_listed") is False
    assert screening.flags == ["deny_listed"]
    assert screening.recommendation == "reject"


def test_a_deny_listed_email_domain_is_flagged_and_rejected() -> None:
    screening = _screen(_app(email="sam@badactor.example"), denied=frozenset({"badactor.example"}))
    assert _check(screening, "deny_listed") is False
    assert screening.recommendation == "reject"


def test_a_hard_flag_outweighs_soft_flags() -> None:
    screening = _screen(_app(email="sam@gmail.com"), denied=frozenset({"northwind.co.uk"}))
    assert {"free_mail", "domain_mismatch", "deny_listed"} <= set(screening.flags)
    assert screening.recommendation == "reject"


def test_a_website_without_registrable_domain_is_a_mismatch() -> None:
    screening = _screen(_app(website="http://localhost"))
    assert _check(screening, "domain_mismatch") is False
    assert screening.recommendation in {"review", "reject"}


def test_partner_id_for_is_readable() -> None:
    application_id = uuid.UUID(APPLICATION["application_id"])
    partner_id = partner_id_for("northwind.co.uk", application_id)
    assert re.fullmatch(r"p-northwind-[0-9a-f]{10}", partner_id)
    assert partner_id_for("northwind.co.uk", application_id) == partner_id  # the same application, the same id
    assert re.fullmatch(r"^[a-z0-9][a-z0-9._-]{0,63}$", partner_id)


def test_partner_id_for_turns_odd_labels_into_a_valid_identifier() -> None:
    application_id = uuid.uuid4()
    for domain in ("xn--mnchen-3ya.de", "My_Company.com", "", "---.com", "a" * 80 + ".com"):
        partner_id = partner_id_for(domain, application_id)
        assert re.fullmatch(r"^[a-z0-9][a-z0-9._-]{0,63}$", partner_id), partner_id


def test_partner_id_for_differs_for_two_applications_of_the_same_domain() -> None:
    first = partner_id_for("northwind.co.uk", uuid.uuid4())
    second = partner_id_for("northwind.co.uk", uuid.uuid4())
    assert first != second
    assert first.startswith("p-northwind-")
    assert second.startswith("p-northwind-")


def test_partner_id_for_differs_for_application_ids_sharing_their_first_hex_digits() -> None:
    # application ids are chosen by the applicant: two of them may share a prefix
    first = uuid.UUID("0b7e2f64-7d0a-4b8e-9a55-1f3c2d4e5a6b")
    second = uuid.UUID("0b7e2f64-0000-4000-8000-000000000001")
    assert partner_id_for("northwind.co.uk", first) != partner_id_for("northwind.co.uk", second)


def test_partner_id_for_is_deterministic() -> None:
    application_id = uuid.uuid4()
    assert partner_id_for("northwind.co.uk", application_id) == partner_id_for("northwind.co.uk", application_id)


RECEIVED: dict[str, Any] = {
    "registration_id": "6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20",
    "partner_id": "p-northwind-0b7e2f",
    "submitted_at": "2026-11-23T10:15:00Z",
    "received_at": "2026-11-23T10:15:01Z",
    "customer": {
        "company_name": "Contoso GmbH",
        "domain": "contoso.de",
        "country": "DE",
        "contact": {"name": "Jana Weber", "email": "jana.weber@contoso.de"},
    },
    "customer_key": "contoso.de",
    "registrable_domain": "contoso.de",
    "region": "emea",
    "opportunity": {
        "product_lines": ["analytics"],
        "estimated_value": {"amount": "48000.00", "currency": "EUR"},
        "expected_close_date": "2027-02-28",
    },
}
REG = RegistrationReceived.model_validate(RECEIVED)
STANDING = PartnerStanding("p-northwind-0b7e2f", "northwind.co.uk", "gold", "emea", active=True)


def test_check_eligibility_rejects_an_unknown_partner() -> None:
    result = check_eligibility(REG, None)
    assert isinstance(result, Ineligible)
    assert result.reason_code == ReasonCode.UNKNOWN_PARTNER


def test_check_eligibility_rejects_an_inactive_partner() -> None:
    inactive = PartnerStanding("p-northwind-0b7e2f", "northwind.co.uk", "gold", "emea", active=False)
    result = check_eligibility(REG, inactive)
    assert isinstance(result, Ineligible)
    assert result.reason_code == ReasonCode.PARTNER_INACTIVE


def test_check_eligibility_rejects_a_partner_registering_itself_as_customer() -> None:
    data = copy.deepcopy(RECEIVED)
    data["customer"]["domain"] = "www.northwind.co.uk"
    data["registrable_domain"] = "northwind.co.uk"
    data["customer_key"] = "northwind.co.uk"
    result = check_eligibility(RegistrationReceived.model_validate(data), STANDING)
    assert isinstance(result, Ineligible)
    assert result.reason_code == ReasonCode.CUSTOMER_IS_PARTNER
    assert "northwind.co.uk" in result.manager_reason


def test_check_eligibility_passes_a_clean_registration() -> None:
    assert check_eligibility(REG, STANDING) is None


def test_check_eligibility_passes_a_registration_without_a_customer_domain() -> None:
    data = copy.deepcopy(RECEIVED)
    data["customer"]["domain"] = None
    data["registrable_domain"] = None
    data["customer_key"] = "name:de:contoso gmbh"
    assert check_eligibility(RegistrationReceived.model_validate(data), STANDING) is None


def test_ineligible_partner_messages_name_no_other_party() -> None:
    for result in (
        check_eligibility(REG, None),
        check_eligibility(REG, PartnerStanding("p-x", "x.com", "gold", "emea", active=False)),
    ):
        assert result is not None
        assert "p-x" not in result.partner_message
        assert "contoso" not in result.partner_message.lower()
