"""Screening partner applications, free of I/O: every check with its evidence, and a recommendation, never a verdict."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from publicsuffixlist import PublicSuffixList

from dealreg_shared.contracts import ApplicationCheck, PartnerApplicationSubmitted
from dealreg_shared.domains import registrable_domain
from dealreg_shared.regions import DEFAULT_REGION
from dealreg_vetting.config import TargetMarkets, VettingConfig
from dealreg_vetting.maillists import mail_domains

Recommendation = Literal["approve", "review", "reject"]

# each of these alone means the application should not go on: a manager can still overrule, but is told so
HARD_FLAGS = frozenset({"invalid_email", "disposable_email", "already_partner", "deny_listed"})
# names reserved for documentation and testing (RFC 2606, RFC 6761): nobody receives mail there
RESERVED_TLDS = frozenset({"example", "test", "invalid", "localhost", "local", "onion", "internal"})
RESERVED_DOMAINS = frozenset({"example.com", "example.net", "example.org"})

DEFAULT_CONFIG = VettingConfig()


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()  # ships its own copy of the list: no network


@dataclass(frozen=True)
class Screening:
    domain: str
    checks: list[ApplicationCheck]
    flags: list[str]
    recommendation: Recommendation


@dataclass(frozen=True)
class ApplicationDomains:
    email_host: str  # the address's host, IDNA (ASCII), lower case
    email: str  # its registrable domain, "" when it has none
    website: str  # the website's registrable domain, "" when it has none


def application_domains(app: PartnerApplicationSubmitted) -> ApplicationDomains:
    host = str(app.contact.email).rpartition("@")[2].rstrip(".").lower()
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        pass  # the email check says why
    return ApplicationDomains(host, registrable_domain(host) or "", registrable_domain(app.website) or "")


def _email_check(address: str, host: str) -> ApplicationCheck:
    # the contract already parsed the syntax (RFC 5322, IDNA, normalized case); this asks whether mail can exist
    suffix = _psl().publicsuffix(host, accept_unknown=False) if host.isascii() else None
    base = _psl().privatesuffix(host, accept_unknown=False) if suffix else None
    if not host.isascii():
        problem = f"the domain {host} is not a valid internationalized name"
    elif suffix is None:
        problem = f"{host} is not under any known top-level domain"
    elif base is None:
        problem = f"{host} is a public suffix, not a domain anyone registered"
    elif host.rsplit(".", 1)[-1] in RESERVED_TLDS or base in RESERVED_DOMAINS:
        problem = f"{base} is reserved for documentation and testing"
    else:
        return ApplicationCheck(
            check="invalid_email", passed=True, evidence=f"{address}: well-formed; {base} under public suffix {suffix}"
        )
    return ApplicationCheck(check="invalid_email", passed=False, evidence=f"{address}: {problem}")


def _market_check(app: PartnerApplicationSubmitted, region: str, markets: TargetMarkets) -> ApplicationCheck:
    misses: list[str] = []
    if (markets.countries or markets.regions) and not (app.country in markets.countries or region in markets.regions):
        wanted = sorted(markets.countries) + [f"region {r}" for r in sorted(markets.regions)]
        misses.append(f"country {app.country} (region {region}) is outside {', '.join(wanted)}")
    offered = set(app.target_markets.product_lines)
    if markets.product_lines and not offered & markets.product_lines:
        misses.append(
            f"product lines {', '.join(sorted(offered)) or '(none named)'} are not among "
            f"{', '.join(sorted(markets.product_lines))}"
        )
    industries = {i.casefold() for i in app.target_markets.industries}
    if markets.industries and not industries & markets.industries:
        misses.append(
            f"industries {', '.join(sorted(industries)) or '(none named)'} are not among "
            f"{', '.join(sorted(markets.industries))}"
        )
    if misses:
        return ApplicationCheck(check="outside_target_market", passed=False, evidence="; ".join(misses))
    return ApplicationCheck(
        check="outside_target_market",
        passed=True,
        evidence=f"country {app.country} (region {region}), product lines "
        f"{', '.join(sorted(offered)) or '(none named)'} fit the program's target markets",
    )


def screen_application(
    app: PartnerApplicationSubmitted,
    *,
    existing_partners: Mapping[str, str],
    config: VettingConfig = DEFAULT_CONFIG,
    region: str = DEFAULT_REGION,
) -> Screening:
    """Run every check, record each with its evidence, and recommend; only a manager's decision approves.

    `existing_partners` maps registrable domains of onboarded partners to their partner ids (at least those of
    this application's domains).
    """
    d = application_domains(app)
    lists = mail_domains(config.mail_lists)
    address = str(app.contact.email)
    free = lists.free_mail(d.email_host)
    disposable = lists.disposable_mail(d.email_host)
    partners = sorted({existing_partners[x] for x in (d.website, d.email) if x and x in existing_partners})
    denied = config.deny_list.match(domains=(d.website, d.email), company_name=app.company_name)
    checks = [
        _email_check(address, d.email_host),
        ApplicationCheck(
            check="free_mail",
            passed=free is None,
            evidence=free.evidence(d.email_host) if free else f"{d.email_host} is on no free-mail list",
        ),
        ApplicationCheck(
            check="disposable_email",
            passed=disposable is None,
            evidence=disposable.evidence(d.email_host)
            if disposable
            else f"{d.email_host} is on no disposable-address list",
        ),
        ApplicationCheck(
            check="domain_mismatch",
            passed=bool(d.website) and d.email == d.website,
            evidence=f"email domain {d.email or '(none)'}, website {app.website} → {d.website or '(no domain)'}",
        ),
        ApplicationCheck(
            check="already_partner",
            passed=not partners,
            evidence=f"{', '.join(partners)} already partner(s) for this domain"
            if partners
            else f"no partner has {' or '.join(sorted({x for x in (d.website, d.email) if x})) or 'this domain'}",
        ),
        ApplicationCheck(
            check="deny_listed",
            passed=denied is None,
            evidence=f"{denied} is on the deny list"
            if denied
            else f"not on the deny list ({len(config.deny_list.domains)} domains, "
            f"{len(config.deny_list.company_names)} names)",
        ),
        _market_check(app, region, config.target_markets),
    ]
    flags = [c.check for c in checks if not c.passed]
    recommendation: Recommendation = "reject" if HARD_FLAGS & set(flags) else "review" if flags else "approve"
    # the partner's identity: its website, else its mail domain, but never a mail provider's domain
    domain = d.website or ("" if free or disposable else d.email)
    return Screening(domain, checks, flags, recommendation)


def partner_id_for(domain: str, application_id: uuid.UUID) -> str:
    """Readable and unique: `p-<first label of the domain>-<10 hex of a hash of the application id>`.

    Applicants choose application ids, so the suffix is hashed: nobody can aim at another's partner id.
    """
    label = re.sub(r"[^a-z0-9]+", "-", domain.split(".")[0].lower()).strip("-")[:40] or "partner"
    return f"p-{label}-{hashlib.sha256(application_id.bytes).hexdigest()[:10]}"
