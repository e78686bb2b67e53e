"""Whether a received registration may go on, free of I/O: standing, entitlements, self-dealing, reserved accounts.

Partners are told what they can act on about their own account and deal; never that a customer is one of the
vendor's reserved accounts (that is `not_eligible`, with the reason for managers only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from dealreg_shared.contracts import ReasonCode, RegistrationReceived
from dealreg_shared.domains import registrable_domain
from dealreg_vetting.config import VettingConfig
from dealreg_vetting.maillists import mail_domains

DEFAULT_CONFIG = VettingConfig()
NOT_ELIGIBLE_MESSAGE = "This registration is not eligible for the partner program."
FREE_MAIL_CONTACT = "free_mail_contact"


@dataclass(frozen=True)
class PartnerStanding:
    partner_id: str
    domain: str
    tier: str
    region: str
    active: bool


@dataclass(frozen=True)
class Ineligible:
    reason_code: ReasonCode
    partner_message: str
    manager_reason: str


@dataclass(frozen=True)
class Assessment:
    ineligible: Ineligible | None
    flags: list[str] = field(default_factory=list)  # eligible, but worth a manager's look
    notes: list[str] = field(default_factory=list)  # the evidence behind the flags


def _money(amount: Decimal, currency: str) -> str:
    return f"{amount:,.2f} {currency}"


def _entitlement(reg: RegistrationReceived, partner: PartnerStanding, config: VettingConfig) -> Ineligible | None:
    tier = config.tiers.get(partner.tier)
    if tier is None:
        # a tier the program no longer defines entitles to nothing: safer than everything, and managers hear why
        return Ineligible(
            ReasonCode.NOT_ENTITLED,
            "Your partner tier does not allow registrations at the moment; please contact your channel manager.",
            f"partner tier {partner.tier!r} is not defined in the vetting configuration",
        )
    missing = [p for p in reg.opportunity.product_lines if not tier.covers(p)]
    if missing:
        return Ineligible(
            ReasonCode.NOT_ENTITLED,
            f"Your partner tier ({partner.tier}) does not include the product line(s): {', '.join(missing)}.",
            f"tier {partner.tier} covers {', '.join(sorted(tier.product_lines))}; "
            f"the registration asks for {', '.join(missing)}",
        )
    value = reg.opportunity.estimated_value
    if tier.max_deal_value is not None:
        limit = _money(tier.max_deal_value, config.base_currency)
        in_base = config.in_base_currency(value.amount, value.currency)
        if in_base is None:
            return Ineligible(
                ReasonCode.NOT_ENTITLED,
                f"Deals in {value.currency} cannot be checked against your partner tier's limit of {limit}; "
                f"register the deal in {config.base_currency} or contact your channel manager.",
                f"no exchange rate for {value.currency} in the vetting configuration",
            )
        if in_base > tier.max_deal_value:
            return Ineligible(
                ReasonCode.NOT_ENTITLED,
                f"The deal's estimated value is above your partner tier's limit of {limit}.",
                f"{_money(value.amount, value.currency)} (= {_money(in_base, config.base_currency)}) "
                f"is above tier {partner.tier}'s limit of {limit}",
            )
    return None


def _free_mail_contact(reg: RegistrationReceived, config: VettingConfig) -> str | None:
    """Why the contact's free-mail address matters for this deal, or None."""
    threshold = config.large_deals.threshold
    if threshold is None:
        return None
    host = str(reg.customer.contact.email).rpartition("@")[2].lower()
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return None
    lists = mail_domains(config.mail_lists)
    listing = lists.free_mail(host) or lists.disposable_mail(host)
    if listing is None:
        return None
    value = reg.opportunity.estimated_value
    in_base = config.in_base_currency(value.amount, value.currency)
    if in_base is not None and in_base <= threshold:
        return None
    size = "of unknown size (no exchange rate)" if in_base is None else _money(in_base, config.base_currency)
    return (
        f"customer contact {listing.evidence(host)}, on a deal {size} above {_money(threshold, config.base_currency)}"
    )


def assess_registration(
    reg: RegistrationReceived, partner: PartnerStanding | None, config: VettingConfig = DEFAULT_CONFIG
) -> Assessment:
    """The first reason the registration may not go on (in the order a manager would ask), or its flags."""
    if partner is None:
        return Assessment(
            Ineligible(ReasonCode.UNKNOWN_PARTNER, "This partner is not known to the program.", "no such partner")
        )
    if not partner.active:
        return Assessment(
            Ineligible(ReasonCode.PARTNER_INACTIVE, "This partner account is not active.", "partner suspended")
        )
    contact_domain = registrable_domain(str(reg.customer.contact.email))
    customer_domain = registrable_domain(reg.customer.domain) or reg.registrable_domain
    if partner.domain and partner.domain == customer_domain:
        return Assessment(
            Ineligible(
                ReasonCode.CUSTOMER_IS_PARTNER,
                "A partner cannot register its own company as a customer.",
                f"customer domain {customer_domain} is the partner's own",
            )
        )
    if partner.domain and not customer_domain and contact_domain == partner.domain:
        return Assessment(
            Ineligible(
                ReasonCode.CUSTOMER_IS_PARTNER,
                "A partner cannot register its own company as a customer.",
                f"customer has no domain and its contact's email domain {contact_domain} is the partner's own",
            )
        )
    reserved = config.reserved_accounts.match(
        domains=(customer_domain, contact_domain), company_name=reg.customer.company_name
    )
    if reserved:
        return Assessment(
            Ineligible(
                ReasonCode.NOT_ELIGIBLE,
                NOT_ELIGIBLE_MESSAGE,
                f"customer is a reserved account of the vendor ({reserved})",
            )
        )
    refused = _entitlement(reg, partner, config)
    if refused:
        return Assessment(refused)
    free_mail = _free_mail_contact(reg, config)
    if free_mail is None:
        return Assessment(None)
    if config.large_deals.free_mail_contact == "reject":
        return Assessment(
            Ineligible(
                ReasonCode.NOT_ELIGIBLE,
                "Registrations of this size need the customer contact's business email address.",
                free_mail,
            )
        )
    return Assessment(None, [FREE_MAIL_CONTACT], [free_mail])


def check_eligibility(
    reg: RegistrationReceived, partner: PartnerStanding | None, config: VettingConfig = DEFAULT_CONFIG
) -> Ineligible | None:
    return assess_registration(reg, partner, config).ineligible
