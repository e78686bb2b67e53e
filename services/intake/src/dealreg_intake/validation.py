"""Intake's strict reading of a submission: the contract's models, tightened where money and identity are involved.

The shared contract fixes the shape (patterns, lengths, decimal strings); the door checks the facts: a real
ISO 3166-1 country, a real ISO 4217 currency, a domain that has a registrable part, names a person can read,
no control characters that would break storage or fool a reader, a close date within the horizon.
"""

from __future__ import annotations

import unicodedata
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any

import pycountry
from pydantic import (
    AfterValidator,
    AwareDatetime,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from dealreg_shared.contracts import Money, RegistrationSubmitted
from dealreg_shared.contracts.common import CountryCode, CurrencyCode, Name, Text
from dealreg_shared.contracts.registrations import Customer, CustomerContact, OpportunityDetails
from dealreg_shared.domains import registrable_domain

# ISO 4217 codes that are no money a deal is priced in: precious metals, bond-market units, drawing rights,
# and the codes reserved for testing and "no currency"
NOT_A_DEAL_CURRENCY = frozenset(
    {"XAU", "XAG", "XPD", "XPT", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU", "XUA", "XTS", "XXX"}
)
# bidirectional overrides and isolates: legal in text, but in a name they make it read differently than it sorts
_BIDI_CONTROLS = frozenset(chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))
_TEXT_WHITESPACE = frozenset("\t\n\r")
MAX_PROBLEMS = 10


@lru_cache(maxsize=512)
def is_country(code: str) -> bool:
    return pycountry.countries.get(alpha_2=code) is not None


@lru_cache(maxsize=512)
def _is_currency(code: str) -> bool:
    return code not in NOT_A_DEAL_CURRENCY and pycountry.currencies.get(alpha_3=code) is not None


def _iso_country(code: str) -> str:
    if not is_country(code):
        raise ValueError("not an ISO 3166-1 alpha-2 country code")
    return code


def _iso_currency(code: str) -> str:
    if not _is_currency(code):
        raise ValueError("not an ISO 4217 currency code")
    return code


def _unreadable(text: str, *, allowed: frozenset[str] = frozenset()) -> bool:
    return any(c not in allowed and (unicodedata.category(c) in ("Cc", "Cs") or c in _BIDI_CONTROLS) for c in text)


def _readable_name(text: str) -> str:
    if _unreadable(text):
        raise ValueError("contains control characters")
    if not any(c.isalnum() for c in text):
        raise ValueError("must contain a letter or a digit")
    return text


def _readable_text(text: str) -> str:
    if _unreadable(text, allowed=_TEXT_WHITESPACE):
        raise ValueError("contains control characters")
    return text


def _with_registrable_domain(text: str) -> str:
    if _unreadable(text) or registrable_domain(text) is None:
        raise ValueError("not a domain or web address with a registrable domain (such as contoso.de)")
    return text


IsoCountry = Annotated[CountryCode, AfterValidator(_iso_country)]
IsoCurrency = Annotated[CurrencyCode, AfterValidator(_iso_currency)]
ReadableName = Annotated[Name, AfterValidator(_readable_name)]
ReadableText = Annotated[Text, AfterValidator(_readable_text)]
CustomerDomain = Annotated[str, StringConstraints(max_length=253), AfterValidator(_with_registrable_domain)]


class StrictContact(CustomerContact):
    name: ReadableName


class StrictCustomer(Customer):
    company_name: ReadableName
    domain: CustomerDomain | None = None
    country: IsoCountry
    contact: StrictContact


class StrictMoney(Money):
    currency: IsoCurrency


class StrictOpportunity(OpportunityDetails):
    estimated_value: StrictMoney
    description: ReadableText = ""

    @field_validator("expected_close_date")
    @classmethod
    def _within_horizon(cls, value: date, info: ValidationInfo) -> date:
        context: dict[str, Any] = info.context or {}
        today: date | None = context.get("today")
        horizon: int | None = context.get("horizon_days")
        if today is not None and value < today:
            raise ValueError("is in the past")
        if today is not None and horizon is not None and value > today + timedelta(days=horizon):
            raise ValueError(f"is more than {horizon} days ahead")
        return value


class StrictSubmission(RegistrationSubmitted):
    """A `registration.submitted` as intake accepts it; it is still a RegistrationSubmitted for everyone else."""

    submitted_at: AwareDatetime
    customer: StrictCustomer
    opportunity: StrictOpportunity

    @field_validator("submitted_at")
    @classmethod
    def _not_in_the_future(cls, value: datetime, info: ValidationInfo) -> datetime:
        context: dict[str, Any] = info.context or {}
        latest: datetime | None = context.get("latest_submitted_at")
        if latest is not None and value > latest:
            raise ValueError("is in the future")
        return value


def _safe(text: str, limit: int) -> str:
    """What the partner sent, fit to be repeated back: printable, and short."""
    shown = "".join(c if c.isprintable() else "?" for c in text[:limit])
    return shown + ("…" if len(text) > limit else "")


def describe_problems(exc: ValidationError) -> list[str]:
    """`field.path: why` for each problem, at most MAX_PROBLEMS, none repeating hostile input at length."""
    problems = []
    for err in exc.errors(include_url=False, include_input=False)[:MAX_PROBLEMS]:
        where = ".".join(_safe(str(p), 40) for p in err["loc"]) or "(root)"
        why = err["msg"].removeprefix("Value error, ")
        problems.append(f"{where}: {_safe(why, 160)}")
    return problems


def _lone_surrogate_at(data: dict[str, Any]) -> str | None:
    """Where a JSON `\\ud800`-style escape left half a character (pydantic refuses the whole object for it)."""
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:  # iterative: hostile nesting must not cost recursion depth
        path, node = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            where = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _has_surrogate(key):
                return _safe(path, 120) or "(root)"
            if isinstance(value, str) and _has_surrogate(value):
                return _safe(where, 120)
            if isinstance(value, dict | list):
                stack.append((where, value))
    return None


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def parse_submission(
    data: dict[str, Any], *, today: date, horizon_days: int, latest_submitted_at: datetime
) -> StrictSubmission | list[str]:
    """The submission, or the list of what is wrong with it (field path and reason each)."""
    broken = _lone_surrogate_at(data)
    if broken is not None:
        return [f"{broken}: is not valid Unicode text"]
    context = {"today": today, "horizon_days": horizon_days, "latest_submitted_at": latest_submitted_at}
    try:
        return StrictSubmission.model_validate(data, context=context)
    except ValidationError as exc:
        return describe_problems(exc)
