"""Vetting's program configuration: the documented example validates, defaults stay open, mistakes are named."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from pydantic import ValidationError

from dealreg_shared.config import ConfigError, load_section
from dealreg_vetting.config import VettingConfig

EXAMPLE = Path(__file__).parents[2] / "config" / "example.toml"


def test_the_documented_example_configuration_validates() -> None:
    config = load_section(EXAMPLE, "vetting", VettingConfig)
    assert config.default_tier == "registered"
    assert set(config.tiers) == {"registered", "silver", "gold", "platinum"}
    assert config.tiers["registered"].max_deal_value == Decimal("100000.00")
    assert config.tiers["platinum"].max_deal_value is None
    assert config.tiers["gold"].covers("anything-new")
    assert not config.tiers["registered"].covers("security")
    # written as URLs and in upper case, compared as registrable domains
    assert config.deny_list.domains == {"rivalsoft.com", "competitor.co.uk"}
    assert config.deny_list.company_names == {"rival software"}
    assert "initech.com.au" in config.reserved_accounts.domains
    assert config.exchange_rates["USD"] == Decimal("0.92")
    assert config.large_deals.free_mail_contact == "flag"


def test_without_a_file_every_tier_may_register_everything() -> None:
    config = load_section("", "vetting", VettingConfig)
    assert config == VettingConfig()
    assert {"registered", "gold"} <= set(config.tiers)
    assert all(t.covers("analytics") and t.max_deal_value is None for t in config.tiers.values())
    assert not config.deny_list.domains and not config.reserved_accounts.domains
    assert config.large_deals.threshold == Decimal("100000")


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ('default_tier = "diamond"', "default_tier"),
        ("[tiers.gold]\nmax_deal_value = 250000.5", "tiers.gold.max_deal_value"),
        ('[tiers.gold]\nproduct_lines = ["Analytics"]', "tiers.gold.product_lines"),
        ('[deny_list]\ndomains = ["not a domain"]', "deny_list.domains"),
        ('[large_deals]\nfree_mail_contact = "ignore"', "large_deals.free_mail_contact"),
        ('[exchange_rates]\nusd = "0.9"', "exchange_rates.usd"),
        ('deny_lsit = ["typo.com"]', "deny_lsit"),
    ],
)
def test_a_wrong_value_stops_the_service_naming_the_field(tmp_path: Path, toml: str, field: str) -> None:
    file = tmp_path / "bad.toml"
    lines = toml.splitlines()
    # the first line may be a key of [vetting] itself or a sub-table header
    text = "[vetting]\n" + toml if not lines[0].startswith("[") else f"[vetting.{lines[0][1:]}\n" + "\n".join(lines[1:])
    file.write_text(text + "\n")
    with pytest.raises(ConfigError, match=rf"\n  vetting\.{field}(\.\d+|\.\[key\])?: "):
        load_section(file, "vetting", VettingConfig)


def test_amounts_may_be_integers_but_never_floats() -> None:
    assert VettingConfig.model_validate({"tiers": {"gold": {"max_deal_value": 250000}}, "default_tier": "gold"})
    with pytest.raises(ValidationError, match="never as TOML floats"):
        VettingConfig.model_validate({"tiers": {"gold": {"max_deal_value": 0.1}}, "default_tier": "gold"})


def test_a_deal_is_converted_to_the_base_currency_and_an_unknown_currency_has_no_value() -> None:
    config = VettingConfig.model_validate({"base_currency": "EUR", "exchange_rates": {"USD": "0.5"}})
    assert config.in_base_currency(Decimal("100.00"), "EUR") == Decimal("100.00")
    assert config.in_base_currency(Decimal("100.00"), "USD") == Decimal("50.00")
    assert config.in_base_currency(Decimal("100.00"), "JPY") is None


@pytest.mark.parametrize(
    "name",
    [
        "Rival Software",
        "RIVAL SOFTWARE GmbH",
        "Rival Software Sp. z o.o.",
        "Rival-Software, Inc.",
        "Rival Software S.A.",
    ],
)
def test_listed_company_names_match_whatever_legal_form_is_written(name: str) -> None:
    accounts = VettingConfig.model_validate({"deny_list": {"company_names": ["Rival Software Ltd"]}}).deny_list
    assert accounts.match(domains=(), company_name=name) == "company name 'rival software'"
    assert accounts.match(domains=(), company_name="Rival Softworks GmbH") is None
