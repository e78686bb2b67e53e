"""Customer identity: registrable domains (public-suffix aware) and the customer_key fallback on names."""

from __future__ import annotations

import pytest

from dealreg_shared.domains import customer_key, normalize_company_name, registrable_domain


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("eu.Acme.co.uk", "acme.co.uk"),
        ("https://www.northwind.co.uk/path", "northwind.co.uk"),
        ("http://www.northwind.co.uk:8443/path?q=1#frag", "northwind.co.uk"),
        ("shop.example.com.au", "example.com.au"),
        ("example.com.au", "example.com.au"),
        ("contoso.de", "contoso.de"),
        ("www.contoso.de", "contoso.de"),
        ("a.b.c.contoso.de", "contoso.de"),
    ],
)
def test_registrable_domain_strips_subdomains_scheme_and_path(value: str, expected: str) -> None:
    assert registrable_domain(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("jana.weber@contoso.de", "contoso.de"),
        ("Sam.Patel@Mail.Northwind.CO.UK", "northwind.co.uk"),
        ("someone@gmail.com", "gmail.com"),
    ],
)
def test_registrable_domain_takes_the_domain_of_an_email_address(value: str, expected: str) -> None:
    assert registrable_domain(value) == expected


def test_registrable_domain_ignores_a_trailing_dot() -> None:
    assert registrable_domain("www.example.com.") == "example.com"
    assert registrable_domain("https://Acme.co.uk./x") == "acme.co.uk"


def test_registrable_domain_is_case_insensitive() -> None:
    assert registrable_domain("WWW.EXAMPLE.COM") == "example.com"
    assert registrable_domain("Eu.AcMe.Co.Uk") == "acme.co.uk"


def test_registrable_domain_ignores_surrounding_whitespace() -> None:
    assert registrable_domain("  example.com \n") == "example.com"


def test_registrable_domain_gives_the_same_key_for_an_idn_and_its_punycode() -> None:
    assert registrable_domain("münchen.de") == "xn--mnchen-3ya.de"
    assert registrable_domain("www.MÜNCHEN.de") == registrable_domain("xn--mnchen-3ya.de")
    assert registrable_domain("https://shop.bücher.de/x") == "xn--bcher-kva.de"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "not a domain",
        "localhost",
        "com",
        "co.uk",
        "com.au",
        ".co.uk",
        "a..b.com",
        "-bad.example.com",
        "bad-.example.com",
        "http://",
        "https:///path",
        "@",
        "user@",
        "exa mple.com",
        "exa_mple.com",
        "x" * 64 + ".com",
    ],
)
def test_registrable_domain_is_none_for_garbage_empty_or_a_bare_public_suffix(value: str | None) -> None:
    assert registrable_domain(value) is None


@pytest.mark.parametrize("value", ["1.2.3.4", "10.0.3.4", "https://192.168.3.4/x"])
def test_registrable_domain_is_none_for_an_ip_address(value: str) -> None:
    # an IP address has no registrable domain; "3.4" would wrongly merge unrelated customers
    assert registrable_domain(value) is None


def test_normalize_company_name_folds_case_accents_punctuation_and_whitespace() -> None:
    assert normalize_company_name("  Société  Générale,  S.A. ") == "societe generale s a"
    assert normalize_company_name("MÜLLER-Lüdenscheidt GmbH") == "muller ludenscheidt gmbh"


def test_normalize_company_name_spells_ampersand_as_and() -> None:
    assert normalize_company_name("Smith & Sons") == "smith and sons"
    assert normalize_company_name("Smith&Sons") == normalize_company_name("Smith and Sons")


def test_customer_key_is_the_registrable_domain_when_there_is_one() -> None:
    assert customer_key("https://eu.Acme.co.uk/x", "Acme Ltd", "GB") == "acme.co.uk"


@pytest.mark.parametrize("domain", [None, "", "co.uk", "not a domain"])
def test_customer_key_falls_back_to_country_and_normalized_name(domain: str | None) -> None:
    assert customer_key(domain, "Contoso GmbH", "DE") == "name:de:contoso gmbh"


def test_customer_key_fallback_normalizes_accents_and_ampersand() -> None:
    assert customer_key(None, "Société Générale & Fils", "FR") == "name:fr:societe generale and fils"
    assert customer_key(None, "SOCIETE generale and  fils", "fr") == customer_key(None, "Société Générale & Fils", "FR")


def test_customer_key_fallback_separates_countries() -> None:
    assert customer_key(None, "Contoso", "DE") != customer_key(None, "Contoso", "AT")
