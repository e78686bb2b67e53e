"""What notifications say (templates, escaping, next steps, digests) and how they go out (email, signing secrets)."""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import json
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest
from pydantic import ValidationError

from dealreg_notify.channels import build_email, signing_secrets, webhook_body
from dealreg_notify.directory import Directory, Recipient
from dealreg_notify.domain import PartnerContacts, route_status
from dealreg_notify.messages import DigestItem, digest_message
from dealreg_notify.settings import NotifySettings
from dealreg_shared import webhooks
from dealreg_shared.contracts import RegistrationDecided, RegistrationStatusChanged

MASTER = "whsec_" + base64.b64encode(b"unit-test-master-secret-0123456789").decode()
PARTNER = PartnerContacts("p-northwind", "Northwind", ("sam@northwind.co.uk",), "https://hook.example/x", "emea")
DESK = Directory.single_desk(("desk@vendor.example",))
OTHER_PARTNER, OTHER_REGISTRATION = "p-fabrikam-9a8b7c", "11111111-2222-4333-8444-555555555555"


def _status(status: str, reason: str | None = None, **extra: Any) -> RegistrationStatusChanged:
    return RegistrationStatusChanged.model_validate(
        {
            "registration_id": "6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20",
            "partner_id": "p-northwind",
            "status": status,
            "reason_code": reason,
            "stage": "conflict",
            "partner_message": "Held for review <b>now</b>.",
            "manager_detail": {
                "competing": [{"registration_id": OTHER_REGISTRATION, "partner_id": OTHER_PARTNER}],
                "match": "domain",
                "overlapping_product_lines": ["analytics"],
            },
            "occurred_at": "2026-11-23T10:15:01Z",
            "customer_name": 'Contoso <script>alert("x")</script> GmbH',
            "region": "emea",
            **extra,
        }
    )


def test_html_bodies_escape_what_partners_wrote_and_text_bodies_keep_it() -> None:
    for n in route_status(_status("under_review"), PARTNER, DESK):
        assert "<script>" not in n.html and "&lt;script&gt;" in n.html
        assert "<script>" in n.text


def test_the_partner_never_sees_the_other_side_in_any_body() -> None:
    for n in route_status(_status("under_review"), PARTNER, DESK, {OTHER_PARTNER: "Fabrikam Inc"}):
        if n.recipient.startswith("partner:"):
            for secret in (OTHER_PARTNER, OTHER_REGISTRATION, "Fabrikam"):
                assert secret not in n.text and secret not in n.html and secret not in n.subject
        else:
            assert OTHER_PARTNER in n.text and "Fabrikam Inc" in n.text and OTHER_REGISTRATION in n.html


def test_a_managers_review_mail_offers_a_decision_on_each_side_that_the_contract_accepts() -> None:
    [mail] = [n for n in route_status(_status("under_review"), PARTNER, DESK) if n.recipient.startswith("manager:")]
    decisions = [
        json.loads(line[line.index("{") :])
        for line in mail.text.splitlines()
        if line.strip().startswith("- ") and "{" in line
    ]
    decided = {(d["registration_id"], d["decision"]) for d in decisions}
    assert decided == {
        ("6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20", "approve"),
        (OTHER_REGISTRATION, "approve"),
        ("6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20", "reject"),
    }
    for d in decisions:  # with real values filled in, each example is a valid registration.decided
        RegistrationDecided.model_validate({**d, "decision_id": "0b7e2f64-7d0a-4b8e-9a55-1f3c2d4e5a6b"})
    assert "dealreg.registration-decisions.v1" in mail.text and "Region: emea" in mail.text


def test_an_expiring_protection_offers_managers_an_extension() -> None:
    expiring = _status("expiring", protected_until="2027-02-21T10:15:01Z")
    [mail] = [n for n in route_status(expiring, PARTNER, DESK) if n.recipient.startswith("manager:")]
    assert "Protection expiring" in mail.subject
    assert '"decision": "extend"' in mail.text and '"extend_days": 30' in mail.text


@pytest.mark.parametrize(
    ("status", "reason", "advice"),
    [
        ("approved", None, "yours to work until 2027-02-21 10:15 UTC"),
        ("rejected", "invalid_payload", "with a new registration_id"),
        ("rejected", "registered_by_another_partner", "contact your channel manager"),
        ("expired", None, "register it again"),
    ],
)
def test_the_partner_is_told_what_to_do_next(status: str, reason: str | None, advice: str) -> None:
    s = _status(status, reason, protected_until="2027-02-21T10:15:01Z")
    [mail, *_] = [n for n in route_status(s, PARTNER, DESK) if n.channel == "email"]
    assert advice in mail.text and advice in mail.html


def test_a_digest_lists_every_item_oldest_first() -> None:
    at = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    subject, text, html = digest_message("hourly", [DigestItem("First", "one", at), DigestItem("Second", "two", at)])
    assert subject == "[dealreg] Your hourly digest: 2 notifications"
    assert text.index("First") < text.index("one") < text.index("Second") < text.index("two")
    assert "Second" in html


def _parsed(row: dict[str, object]) -> EmailMessage:
    built = build_email(row, NotifySettings())
    parsed = email.message_from_bytes(built.data, policy=email.policy.SMTP)
    assert isinstance(parsed, EmailMessage) and not parsed.defects
    return parsed


def _body(msg: EmailMessage, kind: str) -> str:
    part = msg.get_body((kind,))
    assert part is not None, f"no {kind} part"
    return str(part.get_content())


def test_an_email_has_a_text_and_an_html_part_and_a_stable_message_id() -> None:
    row = {"id": 42, "address": "sam@northwind.co.uk", "subject": "S", "body_text": "plain", "body_html": "<p>h</p>"}
    msg = _parsed(row)
    assert msg["Message-ID"] == "<ntf-42@dealreg>" and _parsed(row)["Message-ID"] == msg["Message-ID"]
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["To"] == "sam@northwind.co.uk" and msg["From"] == NotifySettings().mail_from
    assert _body(msg, "plain").strip() == "plain"
    assert _body(msg, "html").strip() == "<p>h</p>"


def test_an_email_keeps_any_text_exactly_and_a_name_cannot_add_headers() -> None:
    subject = "[dealreg] Approved: Müller & Söhne GmbH — 東京\r\nBcc: victim@example.com"
    text = "Grüße,\n\nline with trailing space \n.leading dot\n" + "long " * 40 + "\n"
    row = {"id": 7, "address": "sam@northwind.co.uk", "subject": subject, "body_text": text, "body_html": None}
    msg = _parsed(row)
    assert msg["Bcc"] is None
    assert msg["Subject"] == " ".join(subject.split())
    assert _body(msg, "plain") == text
    assert "Grüße" in _body(msg, "html")
    assert not build_email(row, NotifySettings()).utf8


def test_a_sender_name_that_is_not_ascii_is_encoded_and_the_addresses_are_kept_as_they_are() -> None:
    settings = NotifySettings(mail_from="Vertrieb Müller <vertrieb@vendor.example>")
    row = {"id": 8, "address": "jürgen@müller.de", "subject": "S", "body_text": "t", "body_html": None}
    built = build_email(row, settings)
    assert built.sender == "vertrieb@vendor.example" and built.recipient == "jürgen@müller.de" and built.utf8
    head = built.data.split(b"\r\n\r\n", 1)[0].decode()
    assert "From: =?utf-8?" in head and "<vertrieb@vendor.example>" in head
    assert "To: jürgen@müller.de" in head
    parsed = email.message_from_bytes(built.data, policy=email.policy.SMTPUTF8)
    assert parsed["From"].addresses[0].display_name == "Vertrieb Müller"


def _independent_partner_secret(master: str, partner_id: str) -> str:
    key = base64.b64decode(master.removeprefix("whsec_"))
    return (
        "whsec_"
        + base64.b64encode(
            hmac.new(key, f"dealreg-webhook-secret:{partner_id}".encode(), hashlib.sha256).digest()
        ).decode()
    )


def test_each_partner_has_its_own_secret_derived_from_the_master() -> None:
    settings = NotifySettings(webhook_secret=MASTER)
    [northwind] = signing_secrets("partner:p-northwind", settings, DESK)
    [fabrikam] = signing_secrets(f"partner:{OTHER_PARTNER}", settings, DESK)
    assert northwind == _independent_partner_secret(MASTER, "p-northwind")
    assert len({northwind, fabrikam, MASTER}) == 3


def test_while_the_master_rotates_a_partners_webhook_carries_both_signatures() -> None:
    previous = "whsec_" + base64.b64encode(b"the-previous-master-secret-0123").decode()
    settings = NotifySettings(webhook_secret=MASTER, webhook_previous_secret=previous)
    secrets = signing_secrets("partner:p-northwind", settings, DESK)
    assert secrets == [
        _independent_partner_secret(MASTER, "p-northwind"),
        _independent_partner_secret(previous, "p-northwind"),
    ]


def test_a_manager_webhook_uses_its_configured_secret_else_the_master() -> None:
    own = "whsec_" + base64.b64encode(b"crm-own-secret-0123456789").decode()
    directory = Directory({"crm": Recipient("crm", webhook_url="https://crm.example", webhook_secret=own)}, {})
    settings = NotifySettings(webhook_secret=MASTER)
    assert signing_secrets("manager:crm", settings, directory) == [own]
    assert signing_secrets("manager:webhook", settings, directory) == [MASTER]


def test_the_webhook_body_carries_the_notification_id_and_the_payload() -> None:
    row = {"id": 7, "subject": "S", "payload": '{"type": "registration.status-changed", "status": "approved"}'}
    body = json.loads(webhook_body(row))
    assert body == {
        "notification_id": "ntf_7",
        "subject": "S",
        "data": {"type": "registration.status-changed", "status": "approved"},
    }
    assert webhooks.verify(
        MASTER,
        msg_id="ntf_7",
        timestamp="1",
        signature_header=webhooks.sign(MASTER, msg_id="ntf_7", timestamp=1, body=webhook_body(row)),
        body=webhook_body(row),
    )


def test_a_lease_shorter_than_a_send_timeout_is_refused() -> None:
    with pytest.raises(ValidationError, match="DEALREG_DELIVERY_LEASE_S"):
        NotifySettings(delivery_lease_s=10, smtp_timeout_s=30)
    NotifySettings(delivery_lease_s=10, smtp_timeout_s=5, webhook_timeout_s=5)


def test_a_bad_region_table_is_refused() -> None:
    with pytest.raises(ValidationError, match="two regions"):
        NotifySettings(regions='{"emea": ["DE"], "dach": ["DE"]}')
