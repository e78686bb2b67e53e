"""Intake's strict validation: real ISO codes, bounded money and dates, readable names, every problem named."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime
from typing import Any

import pytest

from dealreg_intake.domain import Rejection, SubmissionRules, validate
from dealreg_intake.settings import IntakeConfig
from dealreg_intake.validation import MAX_PROBLEMS, StrictSubmission
from dealreg_shared.contracts import ReasonCode
from tests.unit.test_intake_domain import SUBMITTED

NOW = datetime(2026, 11, 23, 10, 20, tzinfo=UTC)
RULES = SubmissionRules.at(NOW, IntakeConfig(close_date_horizon_days=365, max_clock_skew_s=300))


def with_value(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(SUBMITTED)
    *parents, last = path.split(".")
    target = data
    for key in parents:
        target = target[key]
    target[last] = value
    return data


def problems(data: dict[str, Any]) -> list[str]:
    result = validate(data, RULES)
    assert isinstance(result, Rejection), "expected a rejection"
    assert result.reason_code == ReasonCode.INVALID_PAYLOAD
    errors: list[str] = result.detail["errors"]
    assert result.partner_message == "The registration is invalid: " + "; ".join(errors)
    return errors


def accepted(data: dict[str, Any]) -> StrictSubmission:
    result = validate(data, RULES)
    assert isinstance(result, StrictSubmission), result
    return result


def only_problem_is(data: dict[str, Any], field: str) -> str:
    [problem] = problems(data)
    assert problem.startswith(f"{field}: "), problem
    return problem


@pytest.mark.parametrize("country", ["DE", "GB", "US", "JP", "BR", "AQ"])
def test_real_iso_country_codes_are_accepted(country: str) -> None:
    assert accepted(with_value("customer.country", country)).customer.country == country


@pytest.mark.parametrize("country", ["XX", "ZZ", "UK", "EU", "QQ"])
def test_a_country_code_that_iso_3166_does_not_assign_is_rejected(country: str) -> None:
    problem = only_problem_is(with_value("customer.country", country), "customer.country")
    assert "ISO 3166-1" in problem


@pytest.mark.parametrize("country", ["de", "DEU", "Germany", "", 49])
def test_a_country_that_is_not_two_capital_letters_is_rejected(country: Any) -> None:
    only_problem_is(with_value("customer.country", country), "customer.country")


@pytest.mark.parametrize("currency", ["EUR", "USD", "GBP", "JPY", "CHF", "XOF", "XCD"])
def test_real_iso_4217_currencies_are_accepted(currency: str) -> None:
    data = with_value("opportunity.estimated_value.currency", currency)
    assert accepted(data).opportunity.estimated_value.currency == currency


@pytest.mark.parametrize("currency", ["ABC", "EUX", "XAU", "XTS", "XXX", "XDR"])
def test_a_code_that_is_no_deal_currency_is_rejected(currency: str) -> None:
    problem = only_problem_is(
        with_value("opportunity.estimated_value.currency", currency), "opportunity.estimated_value.currency"
    )
    assert "ISO 4217" in problem


@pytest.mark.parametrize("amount", ["0", "0.00", "-5.00", "1000000000000.01", "12.345", "1e5", "NaN", 100, 99.5, ""])
def test_an_amount_that_is_not_a_positive_bounded_decimal_string_is_rejected(amount: Any) -> None:
    only_problem_is(with_value("opportunity.estimated_value.amount", amount), "opportunity.estimated_value.amount")


@pytest.mark.parametrize("amount", ["0.01", "48000", "48000.5", "1000000000000"])
def test_positive_decimal_amounts_up_to_the_bound_are_accepted(amount: str) -> None:
    accepted(with_value("opportunity.estimated_value.amount", amount))


def test_a_close_date_in_the_past_is_rejected() -> None:
    problem = only_problem_is(
        with_value("opportunity.expected_close_date", "2026-11-22"), "opportunity.expected_close_date"
    )
    assert "past" in problem


def test_a_close_date_beyond_the_configured_horizon_is_rejected() -> None:
    problem = only_problem_is(
        with_value("opportunity.expected_close_date", "2027-11-24"), "opportunity.expected_close_date"
    )
    assert "365 days" in problem


@pytest.mark.parametrize("close", ["2026-11-23", "2027-11-23"])
def test_close_dates_from_today_to_the_horizon_are_accepted(close: str) -> None:
    assert accepted(with_value("opportunity.expected_close_date", close)).opportunity.expected_close_date == (
        date.fromisoformat(close)
    )


def test_the_horizon_comes_from_the_configuration() -> None:
    data = with_value("opportunity.expected_close_date", "2027-02-28")
    short, long = IntakeConfig(close_date_horizon_days=90), IntakeConfig(close_date_horizon_days=120)
    assert isinstance(validate(data, SubmissionRules.at(NOW, short)), Rejection)
    assert isinstance(validate(data, SubmissionRules.at(NOW, long)), StrictSubmission)


def test_a_submission_time_without_a_time_zone_is_rejected() -> None:
    only_problem_is(with_value("submitted_at", "2026-11-23T10:15:00"), "submitted_at")


def test_a_submission_time_in_the_future_beyond_the_clock_skew_is_rejected() -> None:
    assert "future" in only_problem_is(with_value("submitted_at", "2026-11-23T10:26:00Z"), "submitted_at")
    accepted(with_value("submitted_at", "2026-11-23T10:24:00Z"))


@pytest.mark.parametrize("registration_id", ["not-a-uuid", "", 42, None, "6f1c8f0e3a0b4c559d1e8a2b7d9f1c2"])
def test_a_registration_id_that_is_no_uuid_is_rejected(registration_id: Any) -> None:
    only_problem_is(with_value("registration_id", registration_id), "registration_id")


@pytest.mark.parametrize("name", ["", "   ", "\t", "---", "..."])
def test_a_blank_company_name_or_one_without_letters_or_digits_is_rejected(name: str) -> None:
    only_problem_is(with_value("customer.company_name", name), "customer.company_name")


@pytest.mark.parametrize("name", ["Müller & Söhne GmbH", "株式会社トヨタ", "O'Brien Ltd.", "3M", "Ñandú S.A."])
def test_company_names_in_any_script_are_accepted(name: str) -> None:
    assert accepted(with_value("customer.company_name", name)).customer.company_name == name


@pytest.mark.parametrize(
    "name",
    ["Contoso\x00GmbH", "Contoso\x1b[31m", "Contoso\nGmbH", "Contoso \u202eHbmG", "Contoso\u2066x", "A\x7f"],
)
def test_control_characters_in_a_name_are_rejected(name: str) -> None:
    assert "control characters" in only_problem_is(with_value("customer.company_name", name), "customer.company_name")
    contact = only_problem_is(with_value("customer.contact.name", name), "customer.contact.name")
    assert "control characters" in contact


def test_a_description_may_have_line_breaks_and_tabs_but_no_other_control_characters() -> None:
    text = "Rollout:\n\t- plant 1\r\n\t- plant 2"
    assert accepted(with_value("opportunity.description", text)).opportunity.description == text
    only_problem_is(with_value("opportunity.description", "bell\x07"), "opportunity.description")
    only_problem_is(with_value("opportunity.description", "nul\x00"), "opportunity.description")


@pytest.mark.parametrize(
    ("field", "length"),
    [
        ("customer.company_name", 201),
        ("customer.contact.name", 201),
        ("customer.domain", 254),
        ("opportunity.description", 2001),
    ],
)
def test_strings_beyond_their_bound_are_rejected(field: str, length: int) -> None:
    value = ("a" * (length - 3)) + ".de" if field == "customer.domain" else "a" * length
    only_problem_is(with_value(field, value), field)


def test_a_huge_string_is_rejected_without_being_repeated_back() -> None:
    huge = "<script>alert(1)</script>" * 40_000
    result = validate(with_value("customer.company_name", huge), RULES)
    assert isinstance(result, Rejection)
    assert "<script>" not in result.partner_message and len(result.partner_message) < 300


@pytest.mark.parametrize("product_lines", [[], ["analytics"] * 21, ["Analytics"], ["a b"], [""], "analytics"])
def test_product_lines_out_of_bounds_or_shape_are_rejected(product_lines: Any) -> None:
    problem = problems(with_value("opportunity.product_lines", product_lines))[0]
    assert problem.startswith("opportunity.product_lines")


@pytest.mark.parametrize(
    "email", ["nope", "jana@", "@contoso.de", "jana@localhost", "jana@contoso", "jana..weber@contoso.de", "j@x.test"]
)
def test_a_customer_email_that_is_not_a_valid_address_is_rejected(email: str) -> None:
    only_problem_is(with_value("customer.contact.email", email), "customer.contact.email")


@pytest.mark.parametrize(
    ("domain", "registrable"),
    [
        ("contoso.de", "contoso.de"),
        ("https://eu.Contoso.co.uk/path?q=1", "contoso.co.uk"),
        ("www.contoso.com.br", "contoso.com.br"),
        ("bücher.de", "xn--bcher-kva.de"),
    ],
)
def test_a_domain_or_web_address_with_a_registrable_domain_is_accepted(domain: str, registrable: str) -> None:
    from dealreg_shared.domains import registrable_domain

    submission = accepted(with_value("customer.domain", domain))
    assert registrable_domain(submission.customer.domain) == registrable


@pytest.mark.parametrize("domain", ["localhost", "co.uk", "192.168.0.1", "not a domain", "https://", "contoso.de\x00"])
def test_a_domain_without_a_registrable_part_is_rejected(domain: str) -> None:
    only_problem_is(with_value("customer.domain", domain), "customer.domain")


def test_a_customer_without_a_domain_is_accepted() -> None:
    assert accepted(with_value("customer.domain", None)).customer.domain is None


def test_every_problem_is_named_with_its_field_at_once() -> None:
    data = with_value("customer.country", "XX")
    data["opportunity"]["estimated_value"]["currency"] = "XAU"
    data["customer"]["contact"]["email"] = "nope"
    fields = {p.split(":")[0] for p in problems(data)}
    assert fields == {"customer.country", "opportunity.estimated_value.currency", "customer.contact.email"}


def test_unknown_fields_are_named() -> None:
    problem = only_problem_is(with_value("customer.vat_id", "DE123"), "customer.vat_id")
    assert "Extra inputs" in problem


def test_a_hostile_field_name_is_repeated_back_short_and_printable() -> None:
    data = copy.deepcopy(SUBMITTED)
    data["\x00\x1b" + "k" * 10_000] = 1
    [problem] = problems(data)
    assert problem.isprintable() and len(problem) < 120


def test_the_number_of_problems_reported_is_capped_and_the_message_fits_the_contract() -> None:
    data = copy.deepcopy(SUBMITTED)
    for i in range(500):
        data[f"extra_{i}_" + "x" * 300] = i
    errors = problems(data)
    result = validate(data, RULES)
    assert isinstance(result, Rejection)
    assert len(errors) == MAX_PROBLEMS and len(result.partner_message) <= 2000


@pytest.mark.parametrize(
    "path", ["customer.company_name", "opportunity.description", "customer.contact.name", "customer.domain"]
)
def test_text_that_is_not_valid_unicode_is_rejected_naming_the_field(path: str) -> None:
    [problem] = problems(with_value(path, "Contoso \ud800"))
    assert problem == f"{path}: is not valid Unicode text"


def test_a_field_name_that_is_not_valid_unicode_is_rejected_naming_where_it_is() -> None:
    data = copy.deepcopy(SUBMITTED)
    data["customer"]["\udc00"] = "x"
    assert problems(data) == ["customer: is not valid Unicode text"]


def test_injection_strings_in_free_text_are_data_not_errors() -> None:
    hostile = "Robert'); DROP TABLE registrations;-- {{7*7}} ${jndi:ldap://x} <img src=x>"
    submission = accepted(with_value("opportunity.description", hostile))
    assert submission.opportunity.description == hostile
