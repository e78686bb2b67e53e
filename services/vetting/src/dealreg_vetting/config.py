"""The vetting program's configuration: the `[vetting]` section of the environment's TOML file, validated at start.

Every field has a default that keeps the program open (every tier may register every product line at any size,
no deny list, no reserved accounts, every market welcome), so a missing file changes nothing; `config/example.toml`
documents a realistic program.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from dealreg_shared.domains import normalize_company_name, registrable_domain

ALL_PRODUCT_LINES = "*"


def _no_float(value: Any) -> Any:
    # TOML floats are binary: 0.1 + 0.2 != 0.3 and money must stay exact, so amounts are strings or integers
    if isinstance(value, float):
        raise ValueError('write amounts as strings, such as "250000.00", never as TOML floats')
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


Amount = Annotated[Decimal, BeforeValidator(_no_float), Field(gt=Decimal(0), max_digits=18, decimal_places=6)]
TierName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")]
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
CountryCode = Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
ProductLine = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
TierProductLine = Annotated[str, Field(pattern=r"^(\*|[a-z0-9][a-z0-9_-]{0,63})$", description="* is every line")]


class Section(BaseModel):
    # a misspelt key in an operator's file is an error, never a silently ignored setting
    model_config = ConfigDict(extra="forbid", frozen=True)


# legal forms of many countries, dropped when names are compared: "Rival Software GmbH" is "Rival Software"
LEGAL_FORMS = frozenset(
    "ab ag as asa bv bvba co company corp corporation cv gmbh inc incorporated kft kg kk ks limited llc llp lp ltd "
    "ltda nv oy oyj plc pte pty sa sab sae sarl sas sl spa sp srl sro zoo".split()
)


_DOTTED_FORM = re.compile(r"\s(sp z o o|s a r l|s r l|s a s|s a|b v|n v|s p a|a g|k k)$")


def company_key(name: str) -> str:
    """A company name as deny lists and reserved accounts compare it: normalized, without legal forms."""
    # forms written with dots ("Sp. z o.o.", "S.A.", "B.V.") come out of normalization as single letters
    words = _DOTTED_FORM.sub("", normalize_company_name(name)).split()
    while len(words) > 1 and words[-1] in LEGAL_FORMS:
        words.pop()
    return " ".join(words)


def _domains(values: tuple[str, ...]) -> frozenset[str]:
    domains = set()
    for value in values:
        domain = registrable_domain(value)
        if domain is None:
            raise ValueError(f"{value!r} has no registrable domain")
        domains.add(domain)
    return frozenset(domains)


class Accounts(Section):
    """Companies named by registrable domain (URLs, subdomains and upper case are normalized) or by name."""

    domains: frozenset[str] = frozenset()
    company_names: frozenset[str] = frozenset()

    @field_validator("domains", mode="before")
    @classmethod
    def _registrable(cls, value: Any) -> frozenset[str]:
        return _domains(tuple(value))

    @field_validator("company_names", mode="before")
    @classmethod
    def _normalized(cls, value: Any) -> frozenset[str]:
        return frozenset(n for n in (company_key(str(v)) for v in value) if n)

    def match(self, *, domains: tuple[str | None, ...], company_name: str | None) -> str | None:
        """What matched (`domain x` or `company name y`), or None."""
        for domain in domains:
            if domain and domain in self.domains:
                return f"domain {domain}"
        name = company_key(company_name or "")
        if name and name in self.company_names:
            return f"company name {name!r}"
        return None


class Tier(Section):
    product_lines: frozenset[TierProductLine] = Field(default=frozenset({ALL_PRODUCT_LINES}), min_length=1)
    max_deal_value: Amount | None = Field(default=None, description="in base_currency; none: no limit")

    def covers(self, product_line: str) -> bool:
        return ALL_PRODUCT_LINES in self.product_lines or product_line in self.product_lines


class TargetMarkets(Section):
    """The program's markets; an empty list welcomes everyone on that axis."""

    countries: frozenset[CountryCode] = frozenset()
    regions: frozenset[str] = frozenset()
    product_lines: frozenset[ProductLine] = frozenset()
    industries: frozenset[str] = frozenset()

    @field_validator("industries", mode="before")
    @classmethod
    def _casefold(cls, value: Any) -> frozenset[str]:
        return frozenset(str(v).strip().casefold() for v in value)


class MailLists(Section):
    """Local corrections to the packaged lists: additions they lack, and domains they hold wrongly."""

    extra_free_mail: frozenset[str] = frozenset()
    extra_disposable: frozenset[str] = frozenset()
    not_free_mail: frozenset[str] = frozenset()

    @field_validator("extra_free_mail", "extra_disposable", "not_free_mail", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> frozenset[str]:
        return frozenset(str(v).strip().lower().encode("idna").decode("ascii") for v in value)


class LargeDeals(Section):
    """A customer contact on free mail is weak evidence of a real deal; above `threshold` it matters."""

    threshold: Amount | None = Field(default=Decimal("100000"), description="in base_currency; none: never checked")
    free_mail_contact: Literal["flag", "reject"] = "flag"


DEFAULT_TIERS = {name: Tier() for name in ("registered", "silver", "gold", "platinum")}


class VettingConfig(Section):
    tiers: dict[TierName, Tier] = Field(default_factory=lambda: dict(DEFAULT_TIERS), min_length=1)
    default_tier: TierName = "registered"
    base_currency: CurrencyCode = "EUR"
    exchange_rates: dict[CurrencyCode, Amount] = Field(
        default_factory=dict, description="units of base_currency per unit of each currency"
    )
    deny_list: Accounts = Field(default_factory=Accounts, description="never onboarded: competitors, bad actors")
    reserved_accounts: Accounts = Field(default_factory=Accounts, description="the vendor's own accounts")
    target_markets: TargetMarkets = Field(default_factory=TargetMarkets)
    mail_lists: MailLists = Field(default_factory=MailLists)
    large_deals: LargeDeals = Field(default_factory=LargeDeals)

    @field_validator("default_tier")
    @classmethod
    def _default_tier_exists(cls, value: str, info: ValidationInfo) -> str:
        tiers = info.data.get("tiers")
        if tiers is not None and value not in tiers:
            raise ValueError(f"{value!r} is not one of the tiers ({', '.join(tiers)})")
        return value

    def in_base_currency(self, amount: Decimal, currency: str) -> Decimal | None:
        """The amount in base_currency; None when no rate is configured for the currency."""
        if currency == self.base_currency:
            return amount
        rate = self.exchange_rates.get(currency)
        return None if rate is None else amount * rate
