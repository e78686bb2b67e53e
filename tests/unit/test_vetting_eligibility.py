"""Registration eligibility: entitlements, reserved accounts, self-registration, free-mail contacts on big deals."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from dealreg_shared.contracts import ReasonCode, RegistrationReceived
from dealreg_vetting.config import VettingConfig
from dealreg_vetting.eligibility import (
    FREE_MAIL_CONTACT,
    NOT_ELIGIBLE_MESSAGE,
    PartnerStanding,
    assess_registration,
)
from tests.unit.test_vetting_domain import RECEIVED

PROGRAM = VettingConfig.model_validate(
    {
        "base_currency": "EUR",
        "exchange_rates": {"USD": "0.5"},
        "tiers": {
            "registered": {"product_lines": ["analytics"], "max_deal_value": "50000"},
            "gold": {"product_lines": ["*"]},
        },
        "reserved_accounts": {"domains": ["globex.com", "initech.com.au"], "company_names": ["Globex Corporation"]},
        "large_deals": {"threshold": "100000", "free_mail_contact": "flag"},
    }
)
REGISTERED = PartnerStanding("p-northwind-0123456789", "northwind.co.uk", "registered", "emea", active=True)
GOLD = PartnerStanding("p-northwind-0123456789", "northwind.co.uk", "gold", "emea", active=True)


def reg(
    *,
    domain: str | None = "contoso.de",
    company: str = "Contoso GmbH",
    email: str = "jana.weber@contoso.de",
    product_lines: tuple[str, ...] = ("analytics",),
    amount: str = "48000.00",
    currency: str = "EUR",
) -> RegistrationReceived:
    data: dict[str, Any] = copy.deepcopy(RECEIVED)
    data["customer"].update(domain=domain, company_name=company)
    data["customer"]["contact"]["email"] = email
    # what intake computes; vetting must not rely on it alone
    data["registrable_domain"] = domain.split("//")[-1].split("/")[0].removeprefix("www.").lower() if domain else None
    data["opportunity"]["product_lines"] = list(product_lines)
    data["opportunity"]["estimated_value"] = {"amount": amount, "currency": currency}
    return RegistrationReceived.model_validate(data)


def test_a_registration_within_the_tier_passes_without_flags() -> None:
    assessment = assess_registration(reg(), REGISTERED, PROGRAM)
    assert assessment.ineligible is None and assessment.flags == []


def test_a_product_line_outside_the_tier_is_not_entitled_and_the_partner_is_told_which() -> None:
    result = assess_registration(reg(product_lines=("analytics", "security")), REGISTERED, PROGRAM).ineligible
    assert result is not None
    assert result.reason_code == ReasonCode.NOT_ENTITLED
    assert "security" in result.partner_message and "analytics" not in result.partner_message
    assert assess_registration(reg(product_lines=("security",)), GOLD, PROGRAM).ineligible is None


@pytest.mark.parametrize(("amount", "currency"), [("50000.01", "EUR"), ("100000.02", "USD")])
def test_a_deal_above_the_tier_limit_is_not_entitled_in_any_currency(amount: str, currency: str) -> None:
    result = assess_registration(reg(amount=amount, currency=currency), REGISTERED, PROGRAM).ineligible
    assert result is not None and result.reason_code == ReasonCode.NOT_ENTITLED
    assert "50,000.00 EUR" in result.partner_message


def test_a_deal_at_the_limit_in_a_converted_currency_passes() -> None:
    assert assess_registration(reg(amount="100000.00", currency="USD"), REGISTERED, PROGRAM).ineligible is None


def test_a_currency_without_a_rate_is_refused_under_a_limit_but_fine_without_one() -> None:
    result = assess_registration(reg(amount="10.00", currency="JPY"), REGISTERED, PROGRAM).ineligible
    assert result is not None and result.reason_code == ReasonCode.NOT_ENTITLED
    assert "JPY" in result.partner_message and "exchange rate" in result.manager_reason
    assert assess_registration(reg(amount="10.00", currency="JPY"), GOLD, PROGRAM).ineligible is None


def test_a_tier_the_program_no_longer_defines_entitles_to_nothing() -> None:
    legacy = PartnerStanding("p-x-0123456789", "x.com", "bronze", "emea", active=True)
    result = assess_registration(reg(), legacy, PROGRAM).ineligible
    assert result is not None and result.reason_code == ReasonCode.NOT_ENTITLED
    assert "bronze" in result.manager_reason


@pytest.mark.parametrize(
    ("domain", "company", "email"),
    [
        ("globex.com", "Globex", "buyer@globex.com"),
        ("https://EU.Globex.com/de", "Globex Europe", "buyer@globex.com"),
        ("initech.com.au", "Initech", "it@initech.com.au"),
        (None, "GLOBEX corporation", "buyer@globex-corp.net"),
        (None, "Some Subsidiary", "buyer@mail.initech.com.au"),
    ],
)
def test_a_reserved_account_is_not_eligible_and_the_partner_learns_nothing_more(
    domain: str | None, company: str, email: str
) -> None:
    result = assess_registration(reg(domain=domain, company=company, email=email), GOLD, PROGRAM).ineligible
    assert result is not None
    assert result.reason_code == ReasonCode.NOT_ELIGIBLE
    assert result.partner_message == NOT_ELIGIBLE_MESSAGE
    assert not re.search(r"reserved|vendor|globex|initech|house|account", result.partner_message, re.IGNORECASE)
    assert "reserved account" in result.manager_reason


def test_a_partner_registering_itself_through_a_subdomain_or_its_own_contact_is_customer_is_partner() -> None:
    for case in (
        reg(domain="https://eu.NorthWind.co.uk/", company="Northwind Europe", email="x@northwind.co.uk"),
        reg(domain=None, company="Our Own Shop", email="sam@mail.northwind.co.uk"),
    ):
        result = assess_registration(case, GOLD, PROGRAM).ineligible
        assert result is not None and result.reason_code == ReasonCode.CUSTOMER_IS_PARTNER


def test_a_partner_employee_as_contact_of_a_real_customer_is_not_self_registration() -> None:
    assert assess_registration(reg(email="sam@northwind.co.uk"), GOLD, PROGRAM).ineligible is None


def test_a_free_mail_contact_on_a_large_deal_is_flagged_with_the_evidence() -> None:
    assessment = assess_registration(reg(email="jana.weber@GMAIL.com", amount="100000.01"), GOLD, PROGRAM)
    assert assessment.ineligible is None
    assert assessment.flags == [FREE_MAIL_CONTACT]
    assert "gmail.com" in assessment.notes[0] and "100,000.00 EUR" in assessment.notes[0]


def test_a_free_mail_contact_on_a_small_deal_is_fine() -> None:
    assessment = assess_registration(reg(email="jana@web.de", amount="100000.00"), GOLD, PROGRAM)
    assert assessment.ineligible is None and assessment.flags == []


def test_a_disposable_contact_or_an_unconvertible_currency_counts_as_large() -> None:
    assert assess_registration(reg(email="j@mailinator.com", amount="200000"), GOLD, PROGRAM).flags
    assert assess_registration(reg(email="j@gmail.com", amount="5.00", currency="JPY"), GOLD, PROGRAM).flags


def test_a_program_may_reject_free_mail_contacts_on_large_deals() -> None:
    strict = PROGRAM.model_copy(
        update={"large_deals": PROGRAM.large_deals.model_copy(update={"free_mail_contact": "reject"})}
    )
    result = assess_registration(reg(email="jana@gmail.com", amount="250000"), GOLD, strict).ineligible
    assert result is not None and result.reason_code == ReasonCode.NOT_ELIGIBLE
    assert "business email" in result.partner_message
    assert "gmail.com" in result.manager_reason


def test_standing_is_checked_before_anything_else() -> None:
    suspended = PartnerStanding("p-x-0123456789", "northwind.co.uk", "registered", "emea", active=False)
    result = assess_registration(reg(domain="globex.com", product_lines=("security",)), suspended, PROGRAM)
    assert result.ineligible is not None and result.ineligible.reason_code == ReasonCode.PARTNER_INACTIVE
