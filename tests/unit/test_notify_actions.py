"""One-click decisions: tokens are bound, signed, expiring; managers' notifications carry links, partners' never."""

from __future__ import annotations

import itertools
import re
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from dealreg_notify.action_server import decision_of
from dealreg_notify.actions import (
    ActionToken,
    TokenError,
    link_notifications,
    offers_for,
    sign,
    still_open,
    verify,
)
from dealreg_notify.directory import Directory
from dealreg_notify.domain import PartnerContacts, route_status
from dealreg_notify.settings import NotifySettings
from dealreg_shared.contracts import PartnerApplicationDecided, RegistrationDecided, RegistrationStatusChanged

SECRET = "act_unit-test-secret-0123456789"
NOW = 1_800_000_000.0
REG, OTHER = "6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20", "11111111-2222-4333-8444-555555555555"
PARTNER = PartnerContacts("p-northwind", "Northwind", ("sam@northwind.co.uk",), "https://hook.example/x", "emea")
DESK = Directory.single_desk(("desk@vendor.example",))


def _token(**changes: Any) -> ActionToken:
    fields: dict[str, Any] = {"j": "t1", "m": "manager:desk@vendor.example", "k": "registration", "r": REG}
    return ActionToken.model_validate({**fields, "a": "approve", "x": int(NOW) + 60, **changes})


def _status(status: str, reason: str | None = None) -> RegistrationStatusChanged:
    return RegistrationStatusChanged.model_validate(
        {
            "registration_id": REG,
            "partner_id": "p-northwind",
            "status": status,
            "reason_code": reason,
            "stage": "conflict",
            "partner_message": "Held for review.",
            "manager_detail": {"competing": [{"registration_id": OTHER, "partner_id": "p-fabrikam"}]},
            "occurred_at": "2026-11-23T10:15:01Z",
            "customer_name": "Contoso GmbH",
            "region": "emea",
        }
    )


def _linked(status: str, reason: str | None = None) -> list[Any]:
    ids = (f"tok{i}" for i in itertools.count())
    items = route_status(_status(status, reason), PARTNER, DESK)
    return link_notifications(
        items, base_url="https://dealreg.example/", secret=SECRET, ttl_s=600, now=NOW, new_id=lambda: next(ids)
    )


def test_a_signed_token_verifies_to_what_it_was_signed_for() -> None:
    assert verify(sign(_token(), SECRET), SECRET, now=NOW) == _token()


def test_a_token_edited_by_one_character_anywhere_is_refused() -> None:
    text = sign(_token(), SECRET)
    for i in range(len(text)):
        if text[i] == ".":
            continue
        edited = text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1 :]
        with pytest.raises(TokenError):
            verify(edited, SECRET, now=NOW)


def test_a_token_whose_payload_names_another_record_is_refused() -> None:
    signature = sign(_token(), SECRET).split(".")[1]
    other_body = sign(_token(r=OTHER), SECRET).split(".")[0]
    with pytest.raises(TokenError) as refused:
        verify(f"{other_body}.{signature}", SECRET, now=NOW)
    assert refused.value.code == "bad_signature"


def test_an_expired_token_is_refused_as_expired() -> None:
    with pytest.raises(TokenError) as refused:
        verify(sign(_token(x=int(NOW) - 1), SECRET), SECRET, now=NOW)
    assert refused.value.code == "expired"


def test_a_token_signed_with_another_secret_is_refused() -> None:
    with pytest.raises(TokenError):
        verify(sign(_token(), "act_some-other-secret-987654321"), SECRET, now=NOW)


@pytest.mark.parametrize("text", ["", "abc", ".", "abc.", ".abc", "a.b.c"])
def test_malformed_tokens_are_refused(text: str) -> None:
    with pytest.raises(TokenError):
        verify(text, SECRET, now=NOW)


def test_a_review_offers_approve_reject_and_picking_the_competing_side() -> None:
    offers = offers_for({"type": "registration.status-changed", **_status("under_review").model_dump(mode="json")})
    assert [(o.record_id, o.action) for o in offers] == [(REG, "approve"), (OTHER, "approve"), (REG, "reject")]


def test_an_expiring_protection_offers_an_extension() -> None:
    offers = offers_for({"type": "registration.status-changed", **_status("expiring").model_dump(mode="json")})
    assert [(o.record_id, o.action) for o in offers] == [(REG, "extend")]


def test_an_application_offers_approve_and_reject() -> None:
    app_id = str(uuid.uuid4())
    offers = offers_for({"type": "partner.application.vetted", "application_id": app_id})
    assert [(o.kind, o.record_id, o.action) for o in offers] == [
        ("application", app_id, "approve"),
        ("application", app_id, "reject"),
    ]


def test_managers_get_links_bound_to_themselves_and_partners_get_none() -> None:
    items = _linked("under_review")
    managers = [n for n in items if n.recipient.startswith("manager:")]
    partners = [n for n in items if n.recipient.startswith("partner:")]
    assert managers and partners
    for n in partners:
        assert "/actions/" not in n.text and "/actions/" not in n.html
    for n in managers:
        urls = re.findall(r"https://dealreg\.example/actions/(\S+)", n.text)
        assert len(urls) == 3
        assert all(f"/actions/{u}" in n.html for u in urls)
        tokens = [verify(u, SECRET, now=NOW) for u in urls]
        assert {t.m for t in tokens} == {n.recipient}
        assert len({t.j for t in tokens}) == 3  # every link is its own single-use token


def test_a_plain_approval_needs_no_decision_and_carries_no_link() -> None:
    for n in _linked("approved"):
        assert "/actions/" not in n.text


def test_links_publish_the_same_decision_events_as_the_cli() -> None:
    decision_id = uuid.uuid4()
    extend = decision_of(_token(a="extend"), decision_id)
    assert isinstance(extend, RegistrationDecided) and extend.extend_days == 30
    assert extend.manager_id == "desk@vendor.example" and str(extend.registration_id) == REG
    app = decision_of(_token(k="application", r=OTHER, a="reject"), decision_id)
    assert isinstance(app, PartnerApplicationDecided) and app.decision == "reject"
    with pytest.raises(ValueError):
        decision_of(_token(k="application", r=OTHER, a="extend"), decision_id)


def test_a_link_is_refused_once_its_record_has_moved_on_and_let_through_while_notify_knows_nothing() -> None:
    assert still_open(_token(a="approve"), "under_review") and still_open(_token(a="reject"), None)
    assert not still_open(_token(a="approve"), "approved") and not still_open(_token(a="reject"), "rejected")
    assert still_open(_token(a="extend"), "expiring") and not still_open(_token(a="extend"), "expired")
    application = _token(k="application", a="approve")
    assert still_open(application, "vetted") and not still_open(application, "approved")


def test_an_actions_port_without_a_base_url_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="DEALREG_ACTIONS_BASE_URL"):
        NotifySettings(actions_port=8081)
    assert NotifySettings(actions_port=8081, actions_base_url="https://dealreg.example").actions_port == 8081
    with pytest.raises(ValidationError):
        NotifySettings(actions_secret="short")
