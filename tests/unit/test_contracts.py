"""The event contract: the design's samples validate, money is never a float, outsiders' extra fields are named."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel, EmailStr, TypeAdapter, ValidationError

from dealreg_shared.contracts import (
    EventType,
    Money,
    PartnerApplicationSubmitted,
    RegistrationSubmitted,
)
from dealreg_shared.contracts import partners as p
from dealreg_shared.contracts import registrations as r
from tests.samples import DESIGN_REGISTRATION as SUBMITTED

PUBLIC_KEY = "A" * 43

# the design's sample partner.application.submitted (with a well-formed public key in place of the placeholder)
APPLICATION: dict[str, Any] = {
    "application_id": "0b7e2f64-7d0a-4b8e-9a55-1f3c2d4e5a6b",
    "company_name": "Northwind Traders Ltd",
    "website": "https://www.northwind.co.uk",
    "contact": {"name": "Sam Patel", "email": "sam.patel@northwind.co.uk"},
    "country": "GB",
    "target_markets": {"product_lines": ["analytics"], "industries": ["manufacturing"]},
    "public_keys": [{"key_id": "k1", "public_key": PUBLIC_KEY}],
    "webhook_url": "https://partner.example/dealreg-hook",
    "submitted_at": "2026-11-23T09:00:00Z",
}


def _submitted(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(SUBMITTED)
    data.update(changes)
    return data


def test_the_designs_sample_registration_submitted_validates() -> None:
    sub = RegistrationSubmitted.model_validate(SUBMITTED)
    assert str(sub.registration_id) == SUBMITTED["registration_id"]
    assert sub.partner_id == "p-northwind"
    assert sub.customer.country == "DE"
    assert sub.opportunity.estimated_value.amount == Decimal("48000.00")
    assert sub.opportunity.estimated_value.currency == "EUR"


def test_the_designs_sample_registration_submitted_validates_from_json_bytes() -> None:
    sub = RegistrationSubmitted.model_validate_json(json.dumps(SUBMITTED))
    assert sub == RegistrationSubmitted.model_validate(SUBMITTED)


def test_the_designs_sample_partner_application_validates() -> None:
    app = PartnerApplicationSubmitted.model_validate(APPLICATION)
    assert app.country == "GB"
    assert app.public_keys[0].key_id == "k1"


@pytest.mark.parametrize("amount", [48000, 48000.0, 48000.5, 0.1])
def test_an_amount_given_as_a_json_number_is_rejected(amount: float) -> None:
    data = _submitted()
    data["opportunity"]["estimated_value"]["amount"] = amount
    with pytest.raises(ValidationError, match="never numbers"):
        RegistrationSubmitted.model_validate(data)
    with pytest.raises(ValidationError, match="never numbers"):
        RegistrationSubmitted.model_validate_json(json.dumps(data))


@pytest.mark.parametrize("amount", [48000, 48000.0])
def test_money_rejects_a_number_amount(amount: float) -> None:
    with pytest.raises(ValidationError):
        Money.model_validate({"amount": amount, "currency": "EUR"})
    with pytest.raises(ValidationError):
        Money.model_validate_json(json.dumps({"amount": amount, "currency": "EUR"}))


def test_money_rejects_a_boolean_amount() -> None:
    with pytest.raises(ValidationError):
        Money.model_validate({"amount": True, "currency": "EUR"})


@pytest.mark.parametrize("amount", ["0", "-1.00", "0.001", "12.345", "1000000000000.01", "abc", "", "NaN", "Infinity"])
def test_money_rejects_out_of_range_or_malformed_amounts(amount: str) -> None:
    with pytest.raises(ValidationError):
        Money.model_validate({"amount": amount, "currency": "EUR"})


@pytest.mark.parametrize(
    "where",
    [(), ("customer",), ("customer", "contact"), ("opportunity",), ("opportunity", "estimated_value")],
)
def test_an_unknown_extra_field_in_a_partner_submission_is_rejected(where: tuple[str, ...]) -> None:
    data = _submitted()
    target = data
    for key in where:
        target = target[key]
    target["discount_hint"] = "20%"
    with pytest.raises(ValidationError) as info:
        RegistrationSubmitted.model_validate(data)
    locs = [err["loc"] for err in info.value.errors()]
    assert (*where, "discount_hint") in locs
    assert all(err["type"] == "extra_forbidden" for err in info.value.errors())


def test_an_unknown_extra_field_in_a_partner_application_is_rejected() -> None:
    data = {**copy.deepcopy(APPLICATION), "referral_code": "x"}
    with pytest.raises(ValidationError, match="referral_code"):
        PartnerApplicationSubmitted.model_validate(data)


@pytest.mark.parametrize("currency", ["eur", "EURO", "EU", "E1R", "", " EUR"])
def test_a_bad_currency_is_rejected(currency: str) -> None:
    data = _submitted()
    data["opportunity"]["estimated_value"]["currency"] = currency
    with pytest.raises(ValidationError) as info:
        RegistrationSubmitted.model_validate(data)
    assert ("opportunity", "estimated_value", "currency") in [err["loc"] for err in info.value.errors()]


@pytest.mark.parametrize("country", ["de", "DEU", "D", "Germany", "", "D1"])
def test_a_bad_country_is_rejected(country: str) -> None:
    data = _submitted()
    data["customer"]["country"] = country
    with pytest.raises(ValidationError) as info:
        RegistrationSubmitted.model_validate(data)
    assert ("customer", "country") in [err["loc"] for err in info.value.errors()]


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("registration_id",), "not-a-uuid"),
        (("partner_id",), "P Northwind"),
        (("customer", "contact", "email"), "not-an-email"),
        (("opportunity", "product_lines"), []),
        (("opportunity", "product_lines"), ["Analytics"]),
        (("opportunity", "expected_close_date"), "28/02/2027"),
        (("customer", "company_name"), "   "),
    ],
)
def test_malformed_fields_of_a_submission_are_rejected_at_their_location(path: tuple[str, ...], value: Any) -> None:
    data = _submitted()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(ValidationError) as info:
        RegistrationSubmitted.model_validate(data)
    assert any(err["loc"][: len(path)] == path for err in info.value.errors())


def test_money_amount_is_dumped_as_a_string_never_a_float() -> None:
    money = Money(amount=Decimal("48000.00"), currency="EUR")
    dumped = json.loads(money.model_dump_json())
    assert dumped == {"amount": "48000.00", "currency": "EUR"}
    assert isinstance(dumped["amount"], str)


def test_amounts_inside_a_submission_are_dumped_as_strings_with_their_cents() -> None:
    data = _submitted()
    data["opportunity"]["estimated_value"]["amount"] = "0.10"
    dumped = json.loads(RegistrationSubmitted.model_validate(data).model_dump_json())
    assert dumped["opportunity"]["estimated_value"]["amount"] == "0.10"
    assert json.loads(Money(amount=Decimal("0.10"), currency="EUR").model_dump_json())["amount"] == "0.10"


def test_internal_events_tolerate_fields_added_by_a_newer_producer() -> None:
    sample = SAMPLES[EventType.REGISTRATION_STATUS_CHANGED]
    data = {**json.loads(sample.model_dump_json()), "added_in_v2": True}
    assert r.RegistrationStatusChanged.model_validate(data) == sample


# one golden sample per event type in the design
_CUSTOMER = SUBMITTED["customer"]
_OPPORTUNITY = SUBMITTED["opportunity"]
_RECEIVED: dict[str, Any] = {
    **SUBMITTED,
    "received_at": "2026-11-23T10:15:00.250000Z",
    "customer_key": "contoso.de",
    "registrable_domain": "contoso.de",
    "region": "emea",
}
SAMPLES: dict[EventType, BaseModel] = {
    EventType.REGISTRATION_SUBMITTED: r.RegistrationSubmitted.model_validate(SUBMITTED),
    EventType.REGISTRATION_RECEIVED: r.RegistrationReceived.model_validate(_RECEIVED),
    EventType.REGISTRATION_VETTED: r.RegistrationVetted.model_validate(
        {**_RECEIVED, "partner_tier": "gold", "partner_region": "emea"}
    ),
    EventType.REGISTRATION_STATUS_CHANGED: r.RegistrationStatusChanged.model_validate(
        {
            "registration_id": "6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20",
            "partner_id": "p-northwind",
            "status": "rejected",
            "reason_code": "registered_by_another_partner",
            "stage": "conflict",
            "partner_message": "This customer deal is already registered by another partner.",
            "manager_detail": {
                "competing_registration_id": "11111111-2222-4333-8444-555555555555",
                "competing_partner_id": "p-fabrikam",
                "match": "domain",
                "overlapping_product_lines": ["analytics"],
                "score": 0.93,
                "nested": {"n": [1, None, True]},
            },
            "protected_until": None,
            "occurred_at": "2026-11-23T10:15:01Z",
            "customer_name": "Contoso GmbH",
        }
    ),
    EventType.REGISTRATION_DECIDED: r.RegistrationDecided.model_validate(
        {
            "decision_id": "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "registration_id": "6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20",
            "decision": "extend",
            "manager_id": "Maria Lopez",
            "reason": "customer asked for more time",
            "extend_days": 30,
        }
    ),
    EventType.OPPORTUNITY_CREATED: r.OpportunityCreated.model_validate(
        {
            "opportunity_id": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
            "registration_id": "6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20",
            "partner_id": "p-northwind",
            "customer": {**_CUSTOMER, "customer_key": "contoso.de"},
            "product_lines": ["analytics"],
            "estimated_value": {"amount": "48000.00", "currency": "EUR"},
            "expected_close_date": "2027-02-28",
            "protected_until": "2027-02-21T10:15:01+00:00",
        }
    ),
    EventType.DECISION_REFUSED: r.DecisionRefused.model_validate(
        {
            "decision_id": "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "subject_id": "6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20",
            "decision": "extend",
            "reason": "over the extension cap of 90 days",
            "occurred_at": "2026-11-24T08:00:00Z",
        }
    ),
    EventType.TERRITORY_GRANTED: r.TerritoryGranted.model_validate(
        {
            "territory_id": "t-northwind-nz-analytics",
            "partner_id": "p-northwind-0b7e2f",
            "product_line": "analytics",
            "country": "NZ",
            "starts_at": "2026-12-01T00:00:00Z",
            "ends_at": "2027-06-01T00:00:00Z",
            "manager_id": "maria.rossi@vendor.example",
            "reason": "launch partner for New Zealand",
        }
    ),
    EventType.PARTNER_APPLICATION_SUBMITTED: p.PartnerApplicationSubmitted.model_validate(APPLICATION),
    EventType.PARTNER_APPLICATION_VETTED: p.PartnerApplicationVetted.model_validate(
        {
            "application_id": APPLICATION["application_id"],
            "partner_id": "p-northwind-0b7e2f",
            "company_name": "Northwind Traders Ltd",
            "domain": "northwind.co.uk",
            "country": "GB",
            "contact": APPLICATION["contact"],
            "checks": [
                {"check": "free_mail", "passed": True, "evidence": "email domain northwind.co.uk"},
                {"check": "deny_listed", "passed": False, "evidence": "on the deny list"},
            ],
            "flags": ["deny_listed"],
            "recommendation": "reject",
        }
    ),
    EventType.PARTNER_APPLICATION_DECIDED: p.PartnerApplicationDecided.model_validate(
        {
            "decision_id": "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "application_id": APPLICATION["application_id"],
            "decision": "approve",
            "tier": "gold",
            "manager_id": "Maria Lopez",
            "reason": "strong fit",
        }
    ),
    EventType.PARTNER_APPLICATION_REJECTED: p.PartnerApplicationRejected.model_validate(
        {
            "application_id": APPLICATION["application_id"],
            "partner_id": "p-northwind-0b7e2f",
            "company_name": "Northwind Traders Ltd",
            "contact": APPLICATION["contact"],
            "reason": "not a fit",
        }
    ),
    EventType.PARTNER_APPROVED: p.PartnerApproved.model_validate(
        {
            "partner_id": "p-northwind-0b7e2f",
            "application_id": APPLICATION["application_id"],
            "company_name": "Northwind Traders Ltd",
            "domain": "northwind.co.uk",
            "tier": "gold",
            "region": "emea",
            "contacts": [APPLICATION["contact"]],
            "public_keys": APPLICATION["public_keys"],
            "webhook_url": "https://partner.example/dealreg-hook",
        }
    ),
    EventType.PARTNER_SUSPENDED: p.PartnerStatusChanged.model_validate(
        {"partner_id": "p-northwind-0b7e2f", "reason": "contract ended"}
    ),
    EventType.PARTNER_REINSTATED: p.PartnerStatusChanged.model_validate({"partner_id": "p-northwind-0b7e2f"}),
    EventType.PARTNER_KEYS_UPDATED: p.PartnerKeysUpdated.model_validate(
        {"partner_id": "p-northwind-0b7e2f", "public_keys": [{"key_id": "k2", "public_key": "B" * 43}]}
    ),
    EventType.PARTNER_DECIDED: p.PartnerDecided.model_validate(
        {
            "decision_id": "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4e",
            "partner_id": "p-northwind-0b7e2f",
            "decision": "update_keys",
            "manager_id": "Maria Lopez",
            "reason": "scheduled rotation",
            "public_keys": [{"key_id": "k1", "public_key": PUBLIC_KEY}, {"key_id": "k2", "public_key": "B" * 43}],
        }
    ),
    EventType.PARTNER_APPLICATION_INVALID: p.PartnerApplicationInvalid.model_validate(
        {
            "application_id": APPLICATION["application_id"],
            "reason_code": "invalid_payload",
            "errors": ["contact.email: value is not a valid email address"],
        }
    ),
}


def test_every_event_type_has_a_golden_sample() -> None:
    assert set(SAMPLES) == set(EventType)


def test_every_event_model_in_the_contracts_has_a_golden_sample() -> None:
    import dealreg_shared.contracts as contracts

    building_blocks = {"ApplicationCheck", "Contact", "Customer", "Money", "OpportunityDetails", "PublicKey"}
    building_blocks |= {"TargetMarkets"}
    models = {
        name
        for name in contracts.__all__
        if isinstance(getattr(contracts, name), type) and issubclass(getattr(contracts, name), BaseModel)
    }
    assert models - building_blocks <= {type(sample).__name__ for sample in SAMPLES.values()}


@pytest.mark.parametrize("event_type", list(SAMPLES), ids=str)
def test_golden_round_trip_construct_dump_validate_equal(event_type: EventType) -> None:
    sample = SAMPLES[event_type]
    dumped = sample.model_dump_json()
    again = type(sample).model_validate_json(dumped)
    assert again == sample
    assert again.model_dump_json() == dumped
    # and through a plain dict, as consumers get it from decode_event
    assert type(sample).model_validate(json.loads(dumped)) == sample


@pytest.mark.parametrize("event_type", list(SAMPLES), ids=str)
def test_event_json_has_no_float_amounts(event_type: EventType) -> None:
    def walk(node: Any, key: str = "") -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif key == "amount":
            assert isinstance(node, str), f"amount {node!r} is not a string"

    walk(json.loads(SAMPLES[event_type].model_dump_json()))


@pytest.mark.parametrize(
    ("decision", "keys"),
    [("update_keys", None), ("suspend", [{"key_id": "k2", "public_key": "B" * 43}]), ("update_keys", [])],
)
def test_a_partner_decision_carries_keys_exactly_when_it_updates_them(decision: str, keys: Any) -> None:
    data = {**json.loads(SAMPLES[EventType.PARTNER_DECIDED].model_dump_json()), "decision": decision}
    data["public_keys"] = keys
    with pytest.raises(ValidationError):
        p.PartnerDecided.model_validate(data)


def test_a_key_update_with_the_same_key_id_twice_is_invalid() -> None:
    data = json.loads(SAMPLES[EventType.PARTNER_DECIDED].model_dump_json())
    data["public_keys"] = [{"key_id": "k1", "public_key": "A" * 43}, {"key_id": "k1", "public_key": "B" * 43}]
    with pytest.raises(ValidationError, match="same key_id"):
        p.PartnerDecided.model_validate(data)


def test_contract_models_are_frozen() -> None:
    sample = SAMPLES[EventType.REGISTRATION_SUBMITTED]
    with pytest.raises(ValidationError):
        sample.partner_id = "p-other"  # type: ignore[misc]


def test_email_addresses_are_checked_as_pydantic_checks_them_every_time_they_are_read() -> None:
    # addresses are remembered once found valid (read at every stage); an invalid one is refused every time
    pydantic_email = TypeAdapter(EmailStr)
    for address in ["Sam.Patel@NorthWind.co.uk", "nope", "jana..weber@contoso.de", "j@x.test"] * 2:
        data = _submitted()
        data["customer"]["contact"]["email"] = address
        try:
            expected = pydantic_email.validate_python(address)
        except ValidationError as refused:
            with pytest.raises(ValidationError) as info:
                RegistrationSubmitted.model_validate(data)
            assert [e["msg"] for e in info.value.errors()] == [e["msg"] for e in refused.errors()]
        else:
            assert RegistrationSubmitted.model_validate(data).customer.contact.email == expected
