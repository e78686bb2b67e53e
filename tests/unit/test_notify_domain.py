"""Notify's pure decisions: who hears about an event, what they are told, and how webhooks are signed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from dealreg_notify.directory import Directory
from dealreg_notify.domain import (
    Notification,
    PartnerContacts,
    route_application_vetted,
    route_status,
)
from dealreg_shared import webhooks
from dealreg_shared.contracts import PartnerApplicationVetted, ReasonCode, RegistrationStatusChanged, Status

REGISTRATION_ID = "6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20"
COMPETING_PARTNER = "p-fabrikam-9a8b7c"
COMPETING_REGISTRATION = "11111111-2222-4333-8444-555555555555"

PARTNER = PartnerContacts(
    "p-northwind", "Northwind Traders Ltd", ("sam@northwind.co.uk", "ops@northwind.co.uk"), "https://hook.example/x"
)
PARTNER_WITHOUT_WEBHOOK = PartnerContacts("p-northwind", "Northwind Traders Ltd", ("sam@northwind.co.uk",), None)
MANAGERS = Directory.single_desk(("lead@vendor.example", "emea@vendor.example"))

MANAGER_DETAIL = {
    "competing_registration_id": COMPETING_REGISTRATION,
    "competing_partner_id": COMPETING_PARTNER,
    "competing": [{"registration_id": COMPETING_REGISTRATION, "partner_id": COMPETING_PARTNER}],
    "match": "domain",
    "overlapping_product_lines": ["analytics"],
}


def _status(
    status: Status,
    reason: ReasonCode | None = None,
    *,
    detail: dict[str, Any] | None = None,
    message: str = "Your registration is being processed.",
    **extra: Any,
) -> RegistrationStatusChanged:
    return RegistrationStatusChanged.model_validate(
        {
            "registration_id": REGISTRATION_ID,
            "partner_id": "p-northwind",
            "status": status,
            "reason_code": reason,
            "stage": "conflict",
            "partner_message": message,
            "manager_detail": detail or {},
            "occurred_at": "2026-11-23T10:15:01Z",
            "customer_name": "Contoso GmbH",
            **extra,
        }
    )


CONFLICT = _status(
    Status.REJECTED,
    ReasonCode.REGISTERED_BY_ANOTHER_PARTNER,
    detail=MANAGER_DETAIL,
    message="This customer deal is already registered by another partner.",
)
REVIEW = _status(
    Status.UNDER_REVIEW,
    detail=MANAGER_DETAIL,
    message="Your registration is being reviewed by the channel team.",
)


def _partner_side(notifications: list[Notification]) -> list[Notification]:
    return [n for n in notifications if n.recipient == "partner:p-northwind"]


def _manager_side(notifications: list[Notification]) -> list[Notification]:
    return [n for n in notifications if n.recipient.startswith("manager:")]


ALL_STATUSES = [
    _status(Status.RECEIVED),
    _status(Status.APPROVED, protected_until="2027-02-21T10:15:01Z"),
    _status(Status.REJECTED, ReasonCode.INVALID_PAYLOAD),
    _status(Status.REJECTED, ReasonCode.DUPLICATE_OF_OWN, detail={"earlier_registration_id": "x"}),
    CONFLICT,
    REVIEW,
    _status(Status.EXPIRING),
    _status(Status.EXPIRED),
]


@pytest.mark.parametrize("status", ALL_STATUSES, ids=lambda s: f"{s.status}-{s.reason_code}")
def test_the_partner_hears_every_status_by_email_to_each_contact_and_by_webhook(
    status: RegistrationStatusChanged,
) -> None:
    partner = _partner_side(route_status(status, PARTNER, MANAGERS))
    assert sorted((n.channel, n.address) for n in partner) == [
        ("email", "ops@northwind.co.uk"),
        ("email", "sam@northwind.co.uk"),
        ("webhook", "https://hook.example/x"),
    ]
    for n in partner:
        assert status.status.value in n.subject
        assert n.payload["status"] == status.status.value
        assert n.payload["registration_id"] == REGISTRATION_ID
        assert n.payload["reason_code"] == (status.reason_code.value if status.reason_code else None)
        assert status.partner_message in n.text


def test_a_partner_without_webhook_gets_email_only() -> None:
    partner = _partner_side(route_status(_status(Status.APPROVED), PARTNER_WITHOUT_WEBHOOK, MANAGERS))
    assert [(n.channel, n.address) for n in partner] == [("email", "sam@northwind.co.uk")]


def test_an_unknown_partner_gets_nothing_but_managers_still_hear_of_a_conflict() -> None:
    notifications = route_status(CONFLICT, None, MANAGERS)
    assert not any(n.recipient.startswith("partner:") for n in notifications)
    assert len(_manager_side(notifications)) == 2


def test_the_approved_partner_payload_carries_protected_until() -> None:
    status = _status(Status.APPROVED, protected_until="2027-02-21T10:15:01Z")
    payload = _partner_side(route_status(status, PARTNER, MANAGERS))[0].payload
    assert payload["protected_until"].startswith("2027-02-21T10:15:01")
    json.dumps(payload)


@pytest.mark.parametrize("status", [CONFLICT, REVIEW], ids=["conflict", "review"])
def test_the_partner_never_sees_manager_detail(status: RegistrationStatusChanged) -> None:
    partner = _partner_side(route_status(status, PARTNER, MANAGERS))
    assert partner
    for n in partner:
        for secret in (COMPETING_PARTNER, COMPETING_REGISTRATION, "fabrikam", "manager_detail", "competing"):
            assert secret not in n.subject
            assert secret not in n.text
            assert secret not in json.dumps(n.payload)
            assert secret not in n.address


def test_managers_hear_of_registered_by_another_partner_with_the_competing_partner_named() -> None:
    managers = _manager_side(route_status(CONFLICT, PARTNER, MANAGERS))
    assert sorted(n.address for n in managers) == ["emea@vendor.example", "lead@vendor.example"]
    for n in managers:
        assert n.channel == "email"
        assert n.recipient == f"manager:{n.address}"
        assert COMPETING_PARTNER in n.text
        assert COMPETING_REGISTRATION in n.text
        assert "p-northwind" in n.text
        assert n.payload["manager_detail"]["competing_partner_id"] == COMPETING_PARTNER


def test_managers_hear_of_under_review_with_the_competing_partner_named_and_the_next_step() -> None:
    managers = _manager_side(route_status(REVIEW, PARTNER, MANAGERS))
    assert len(managers) == 2
    for n in managers:
        assert "Review needed" in n.subject
        assert COMPETING_PARTNER in n.text
        assert "registration.decided" in n.text


def test_managers_get_the_notification_on_their_webhook_too() -> None:
    managers = Directory.single_desk(("lead@vendor.example",), "https://crm.vendor.example/hook")
    notified = _manager_side(route_status(CONFLICT, PARTNER, managers))
    assert sorted(n.channel for n in notified) == ["email", "webhook"]


@pytest.mark.parametrize(
    "status",
    [
        _status(Status.RECEIVED),
        _status(Status.APPROVED, protected_until="2027-02-21T10:15:01Z"),
        _status(Status.REJECTED, ReasonCode.INVALID_PAYLOAD),
    ],
    ids=["received", "approved", "invalid_payload"],
)
def test_managers_hear_nothing_of_a_plain_status(status: RegistrationStatusChanged) -> None:
    notifications = route_status(status, PARTNER, MANAGERS)
    assert _manager_side(notifications) == []
    assert len(notifications) == 3


def test_route_application_vetted_lists_every_check_for_every_manager() -> None:
    vetted = PartnerApplicationVetted.model_validate(
        {
            "application_id": "0b7e2f64-7d0a-4b8e-9a55-1f3c2d4e5a6b",
            "partner_id": "p-northwind-0b7e2f",
            "company_name": "Northwind Traders Ltd",
            "domain": "northwind.co.uk",
            "country": "GB",
            "contact": {"name": "Sam Patel", "email": "sam.patel@gmail.com"},
            "checks": [
                {"check": "invalid_email", "passed": True, "evidence": "email domain 'gmail.com'"},
                {"check": "free_mail", "passed": False, "evidence": "email domain gmail.com"},
                {"check": "domain_mismatch", "passed": False, "evidence": "gmail.com vs northwind.co.uk"},
                {"check": "already_partner", "passed": True, "evidence": "partner domains checked"},
                {"check": "deny_listed", "passed": True, "evidence": "3 denied domains checked"},
            ],
            "flags": ["free_mail", "domain_mismatch"],
            "recommendation": "review",
        }
    )
    notifications = route_application_vetted(vetted, MANAGERS)
    assert sorted(n.address for n in notifications) == ["emea@vendor.example", "lead@vendor.example"]
    for n in notifications:
        for check in vetted.checks:
            line = next(line for line in n.text.splitlines() if f"] {check.check}:" in line)
            assert check.evidence in line
            assert ("[ok]" in line) is check.passed
            assert ("[FLAG]" in line) is (not check.passed)
        assert "review" in n.subject
        assert "0b7e2f64-7d0a-4b8e-9a55-1f3c2d4e5a6b" in n.text
        assert [c["check"] for c in n.payload["checks"]] == [c.check for c in vetted.checks]


SECRET_BYTES = b"dealreg-unit-test-secret-0123456789"
SECRET = "whsec_" + base64.b64encode(SECRET_BYTES).decode()


def _independent_signature(secret_bytes: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret_bytes, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def test_webhook_headers_carry_a_signature_an_independent_receiver_verifies() -> None:
    body = json.dumps({"type": "registration.status-changed", "status": "approved"}).encode()
    headers = webhooks.headers(SECRET, msg_id="msg_2f0b9c1e", timestamp=1_790_000_000, body=body)
    assert headers["webhook-id"] == "msg_2f0b9c1e"
    assert headers["webhook-timestamp"] == "1790000000"
    assert headers["content-type"] == "application/json"
    expected = _independent_signature(SECRET_BYTES, headers["webhook-id"], headers["webhook-timestamp"], body)
    assert any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split())


def test_webhooks_verify_accepts_the_signed_body() -> None:
    body = b'{"a":1}'
    headers = webhooks.headers(SECRET, msg_id="m1", timestamp=1_790_000_000, body=body)
    assert webhooks.verify(
        SECRET, msg_id="m1", timestamp="1790000000", signature_header=headers["webhook-signature"], body=body
    )


def test_webhooks_verify_accepts_one_matching_signature_among_several() -> None:
    body = b'{"a":1}'
    good = webhooks.sign(SECRET, msg_id="m1", timestamp=1_790_000_000, body=body)
    header = f"v1,{base64.b64encode(b'x' * 32).decode()} {good}"
    assert webhooks.verify(SECRET, msg_id="m1", timestamp="1790000000", signature_header=header, body=body)


@pytest.mark.parametrize(
    ("msg_id", "timestamp", "body", "secret"),
    [
        ("m1", "1790000000", b'{"a":2}', SECRET),
        ("m1", "1790000000", b'{"a":1} ', SECRET),
        ("m2", "1790000000", b'{"a":1}', SECRET),
        ("m1", "1790000001", b'{"a":1}', SECRET),
        ("m1", "1790000000", b'{"a":1}', "whsec_" + base64.b64encode(b"another-secret-0123456789").decode()),
    ],
    ids=["tampered-body", "appended-byte", "other-id", "other-timestamp", "other-secret"],
)
def test_webhooks_verify_rejects_a_tampered_message(msg_id: str, timestamp: str, body: bytes, secret: str) -> None:
    original = b'{"a":1}'
    header = webhooks.headers(SECRET, msg_id="m1", timestamp=1_790_000_000, body=original)["webhook-signature"]
    assert not webhooks.verify(secret, msg_id=msg_id, timestamp=timestamp, signature_header=header, body=body)


def test_a_secret_without_prefix_is_used_as_its_utf8_bytes() -> None:
    body = b"{}"
    expected = _independent_signature(b"plain-secret-value", "m", "1", body)
    assert webhooks.sign("plain-secret-value", msg_id="m", timestamp=1, body=body) == expected
