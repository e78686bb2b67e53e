"""Intake's pure decisions: who may submit, what a valid submission is, and what reaches later stages."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from dealreg_intake.domain import (
    PartnerView,
    Rejection,
    SubmissionRules,
    authenticate,
    claimed_ids,
    content_hash,
    resubmission_rejection,
    to_received,
    validate,
)
from dealreg_intake.settings import IntakeConfig
from dealreg_intake.validation import StrictSubmission
from dealreg_shared.contracts import (
    Customer,
    OpportunityDetails,
    ReasonCode,
    RegistrationReceived,
    RegistrationSubmitted,
)
from dealreg_shared.regions import parse_regions
from dealreg_shared.signing import SigningKey

SUBMITTED: dict[str, Any] = {
    "registration_id": "6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20",
    "partner_id": "p-northwind",
    "submitted_at": "2026-11-23T10:15:00Z",
    "customer": {
        "company_name": "Contoso GmbH",
        "domain": "https://www.Contoso.de/en",
        "country": "DE",
        "contact": {"name": "Jana Weber", "email": "jana.weber@contoso.de"},
    },
    "opportunity": {
        "product_lines": ["analytics"],
        "estimated_value": {"amount": "48000.00", "currency": "EUR"},
        "expected_close_date": "2027-02-28",
        "description": "Analytics rollout for 3 plants",
    },
}
VALUE = json.dumps(SUBMITTED, separators=(",", ":")).encode()
KEY = SigningKey.generate("k1")
OTHER_KEY = SigningKey.generate("k2")
PARTNER = PartnerView("p-northwind", active=True, keys={"k1": KEY.public_key_b64url})
# the moment the design's sample is read: five minutes after the partner sent it
RULES = SubmissionRules.at(datetime(2026, 11, 23, 10, 20, tzinfo=UTC), IntakeConfig())


def _strict(data: dict[str, Any]) -> StrictSubmission:
    result = validate(data, RULES)
    assert isinstance(result, StrictSubmission), result
    return result


def _auth(partner: PartnerView | None, key_id: str | None, signature: str | None, value: bytes = VALUE) -> Any:
    return authenticate(partner, key_id=key_id, signature=signature, value=value)


def test_authenticate_rejects_an_unknown_partner() -> None:
    rejection = _auth(None, "k1", KEY.sign(VALUE))
    assert isinstance(rejection, Rejection)
    assert rejection.reason_code == ReasonCode.UNKNOWN_PARTNER


def test_authenticate_rejects_an_inactive_partner_even_with_a_valid_signature() -> None:
    inactive = PartnerView("p-northwind", active=False, keys={"k1": KEY.public_key_b64url})
    rejection = _auth(inactive, "k1", KEY.sign(VALUE))
    assert isinstance(rejection, Rejection)
    assert rejection.reason_code == ReasonCode.PARTNER_INACTIVE


@pytest.mark.parametrize("key_id", ["k9", None, ""])
def test_authenticate_rejects_an_unknown_or_missing_key_id(key_id: str | None) -> None:
    rejection = _auth(PARTNER, key_id, KEY.sign(VALUE))
    assert isinstance(rejection, Rejection)
    assert rejection.reason_code == ReasonCode.UNAUTHENTICATED
    assert rejection.detail["known_key"] is False


@pytest.mark.parametrize("signature", [None, ""])
def test_authenticate_rejects_a_missing_signature(signature: str | None) -> None:
    rejection = _auth(PARTNER, "k1", signature)
    assert isinstance(rejection, Rejection)
    assert rejection.reason_code == ReasonCode.UNAUTHENTICATED


def test_authenticate_rejects_a_signature_by_another_key() -> None:
    rejection = _auth(PARTNER, "k1", OTHER_KEY.sign(VALUE))
    assert isinstance(rejection, Rejection)
    assert rejection.reason_code == ReasonCode.UNAUTHENTICATED
    assert rejection.detail == {"key_id": "k1", "known_key": True}


def test_authenticate_rejects_another_partners_key_id() -> None:
    # k2 is registered for some other partner only: this partner's key table is what counts
    rejection = _auth(PARTNER, "k2", OTHER_KEY.sign(VALUE))
    assert isinstance(rejection, Rejection)
    assert rejection.reason_code == ReasonCode.UNAUTHENTICATED


def test_authenticate_rejects_a_signature_over_different_bytes() -> None:
    rejection = _auth(PARTNER, "k1", KEY.sign(VALUE), value=VALUE.replace(b"48000.00", b"98000.00"))
    assert isinstance(rejection, Rejection)
    assert rejection.reason_code == ReasonCode.UNAUTHENTICATED


def test_authenticate_rejects_a_garbage_signature() -> None:
    rejection = _auth(PARTNER, "k1", "not a signature")
    assert isinstance(rejection, Rejection)
    assert rejection.reason_code == ReasonCode.UNAUTHENTICATED


def test_authenticate_accepts_a_valid_signature_by_a_registered_key() -> None:
    assert _auth(PARTNER, "k1", KEY.sign(VALUE)) is None


def test_authenticate_accepts_any_of_the_partners_registered_keys() -> None:
    partner = PartnerView("p-northwind", True, {"k1": KEY.public_key_b64url, "k2": OTHER_KEY.public_key_b64url})
    assert _auth(partner, "k2", OTHER_KEY.sign(VALUE)) is None
    assert _auth(partner, "k1", KEY.sign(VALUE)) is None


def test_authentication_rejections_name_no_key_material() -> None:
    rejection = _auth(PARTNER, "k1", OTHER_KEY.sign(VALUE))
    assert KEY.public_key_b64url not in rejection.partner_message
    assert KEY.public_key_b64url not in json.dumps(rejection.detail)


def test_validate_returns_the_submission_for_a_valid_payload() -> None:
    result = validate(copy.deepcopy(SUBMITTED), RULES)
    assert isinstance(result, RegistrationSubmitted)
    assert result.partner_id == "p-northwind"


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("customer", "country"), "Germany", "customer.country"),
        (("opportunity", "estimated_value", "amount"), 48000.0, "opportunity.estimated_value.amount"),
        (("opportunity", "estimated_value", "currency"), "euro", "opportunity.estimated_value.currency"),
        (("customer", "contact", "email"), "nope", "customer.contact.email"),
        (("registration_id",), "not-a-uuid", "registration_id"),
        (("opportunity", "unexpected"), "x", "opportunity.unexpected"),
    ],
)
def test_validate_rejects_invalid_payload_naming_the_bad_field(path: tuple[str, ...], value: Any, field: str) -> None:
    data = copy.deepcopy(SUBMITTED)
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    result = validate(data, RULES)
    assert isinstance(result, Rejection)
    assert result.reason_code == ReasonCode.INVALID_PAYLOAD
    assert field in result.partner_message
    assert any(problem.startswith(field) for problem in result.detail["errors"])


def test_validate_names_a_missing_field() -> None:
    data = copy.deepcopy(SUBMITTED)
    del data["opportunity"]["expected_close_date"]
    result = validate(data, RULES)
    assert isinstance(result, Rejection)
    assert "opportunity.expected_close_date" in result.partner_message


def test_validate_caps_the_number_of_problems_it_reports() -> None:
    data = {f"extra_{i}": i for i in range(50)}
    result = validate(data, RULES)
    assert isinstance(result, Rejection)
    assert len(result.detail["errors"]) <= 10


def test_claimed_ids_returns_canonical_registration_id_and_partner_id() -> None:
    assert claimed_ids(SUBMITTED) == ("6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20", "p-northwind")
    upper = {"registration_id": "6F1C8F0E-3A0B-4C55-9D1E-8A2B7D9F1C20", "partner_id": "p-northwind"}
    assert claimed_ids(upper) == ("6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20", "p-northwind")


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"partner_id": "p-northwind"},
        {"registration_id": "6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20"},
        {"registration_id": "not-a-uuid", "partner_id": "p-northwind"},
        {"registration_id": 42, "partner_id": "p-northwind"},
        {"registration_id": None, "partner_id": "p-northwind"},
        {"registration_id": "6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20", "partner_id": ""},
        {"registration_id": "6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20", "partner_id": 7},
        {"registration_id": "6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20", "partner_id": "p" * 65},
        {"registration_id": ["6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20"], "partner_id": "p-northwind"},
    ],
)
def test_claimed_ids_is_none_for_missing_or_invalid_ids(data: dict[str, Any]) -> None:
    assert claimed_ids(data) is None


def test_content_hash_matches_the_same_content_however_it_was_serialized() -> None:
    reordered = json.loads(json.dumps(SUBMITTED, indent=2, sort_keys=True))
    assert content_hash(SUBMITTED) == content_hash(reordered)


def test_content_hash_tells_apart_any_change_of_content() -> None:
    changed = copy.deepcopy(SUBMITTED)
    changed["opportunity"]["estimated_value"]["amount"] = "48000.01"
    assert content_hash(SUBMITTED) != content_hash(changed)
    assert content_hash(SUBMITTED) != content_hash({**SUBMITTED, "partner_id": "p-other"})


def test_content_hash_copes_with_text_that_is_not_valid_unicode() -> None:
    assert content_hash({**SUBMITTED, "x": "\ud800"}) != content_hash(SUBMITTED)


def test_resubmission_rejection_has_its_reason_code() -> None:
    assert resubmission_rejection().reason_code == ReasonCode.CONFLICTING_RESUBMISSION


def test_to_received_adds_customer_key_registrable_domain_and_region() -> None:
    sub = _strict(SUBMITTED)
    now = datetime(2026, 11, 23, 10, 15, 1, tzinfo=UTC)
    received = to_received(sub, now=now, regions=parse_regions(""))
    assert isinstance(received, RegistrationReceived)
    assert received.customer_key == "contoso.de"
    assert received.registrable_domain == "contoso.de"
    assert received.region == "emea"
    assert received.received_at == now
    assert received.registration_id == sub.registration_id
    assert received.partner_id == sub.partner_id
    assert received.submitted_at == sub.submitted_at
    assert received.customer.model_dump() == sub.customer.model_dump()
    assert received.opportunity.model_dump() == sub.opportunity.model_dump()
    # what is forwarded is the contract's own model, not intake's stricter subclass of it
    assert type(received.customer) is Customer and type(received.opportunity) is OpportunityDetails


def test_to_received_without_a_domain_keys_on_the_normalized_name() -> None:
    data = copy.deepcopy(SUBMITTED)
    data["customer"]["domain"] = None
    data["customer"]["company_name"] = "Müller & Söhne GmbH"
    received = to_received(_strict(data), now=datetime.now(UTC), regions=parse_regions(""))
    assert received.customer_key == "name:de:muller and sohne gmbh"
    assert received.registrable_domain is None


@pytest.mark.parametrize(("country", "region"), [("DE", "emea"), ("US", "amer"), ("JP", "apac"), ("AQ", "default")])
def test_to_received_maps_the_customer_country_to_its_region(country: str, region: str) -> None:
    data = copy.deepcopy(SUBMITTED)
    data["customer"]["country"] = country
    received = to_received(_strict(data), now=datetime.now(UTC), regions=parse_regions(""))
    assert received.region == region


def test_to_received_uses_a_configured_region_table() -> None:
    regions = parse_regions('{"dach": ["DE", "AT", "CH"]}')
    received = to_received(_strict(SUBMITTED), now=datetime.now(UTC), regions=regions)
    assert received.region == "dach"


def test_to_received_round_trips_as_json() -> None:
    received = to_received(_strict(SUBMITTED), now=datetime.now(UTC), regions=parse_regions(""))
    assert RegistrationReceived.model_validate_json(received.model_dump_json()) == received


def test_registration_id_in_claimed_ids_is_a_uuid_string() -> None:
    ids = claimed_ids(SUBMITTED)
    assert ids is not None
    assert uuid.UUID(ids[0]).version == 4
