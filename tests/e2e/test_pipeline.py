"""End to end through all four services as processes, on a real broker and database, with real SMTP and HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

import asyncpg
import pytest

from dealreg_devstack.scenario import ScenarioPartner, new_registration
from dealreg_devstack.topicreader import Record, collect
from dealreg_shared.envelope import new_event
from dealreg_shared.partner import PartnerClient, signed_submission
from dealreg_shared.signing import SigningKey
from dealreg_shared.topics import (
    OPPORTUNITIES,
    REGISTRATION_STATUS,
    REGISTRATIONS_RECEIVED,
    REGISTRATIONS_SUBMITTED,
)
from tests.conftest import unique
from tests.e2e.conftest import MANAGER, WEBHOOK_SECRET, Pipeline

pytestmark = pytest.mark.e2e


def statuses_of(records: list[Record], registration_id: uuid.UUID | str) -> list[dict[str, Any]]:
    return [
        r.data
        for r in records
        if r.key == str(registration_id).encode() and r.headers.get("ce_type") == "registration.status-changed"
    ]


async def wait_statuses(p: Pipeline, registration_id: uuid.UUID | str, count: int = 1) -> list[dict[str, Any]]:
    records = await collect(
        p.stack.kafka_bootstrap,
        REGISTRATION_STATUS,
        until=lambda rs: len(statuses_of(rs, registration_id)) >= count,
        timeout_s=45,
    )
    return statuses_of(records, registration_id)


def partner_secret(partner_id: str) -> bytes:
    """The secret the vendor hands a partner, derived without our library: HMAC-SHA256(master, label + id)."""
    master = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    return hmac.new(master, f"dealreg-webhook-secret:{partner_id}".encode(), hashlib.sha256).digest()


def independently_verified(key: bytes, headers: dict[str, str], body: bytes) -> bool:
    """What a partner's receiver does, written without our library (Standard Webhooks)."""
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in headers["webhook-signature"].split())


async def submit(p: Pipeline, partner: ScenarioPartner, **customer: Any) -> uuid.UUID:
    registration = new_registration(partner.partner_id, **customer)
    async with PartnerClient(bootstrap=p.stack.kafka_bootstrap, key=partner.key) as client:
        await client.submit(registration)
    return registration.registration_id


async def test_a_signed_registration_reaches_managers_by_email_and_partners_by_signed_webhook(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    first_partner, second_partner = await p.onboard("northwind"), await p.onboard("fabrikam")
    customer = unique("contoso")
    first = await submit(
        p,
        first_partner,
        company="Contoso GmbH",
        domain=f"{customer}.de",
        country="DE",
        contact_email=f"jana@{customer}.de",
    )
    await p.eventually(
        lambda: any(h.json["data"].get("status") == "approved" for h in p.hooks_of(first_partner)),
        "the first partner hears its registration is approved",
    )
    second = await submit(
        p,
        second_partner,
        company="Contoso",
        domain=f"https://eu.{customer.upper()}.de/path",
        country="DE",
        contact_email=f"j.weber@{customer}.de",
    )
    await p.eventually(
        lambda: any(
            h.json["data"].get("reason_code") == "registered_by_another_partner" for h in p.hooks_of(second_partner)
        ),
        "the second partner hears the deal is taken",
    )
    await p.eventually(
        lambda: [m for m in p.smtp.to(MANAGER) if str(second) in m.text], "the managers hear of the conflict by email"
    )

    conflict_mail = next(m for m in p.smtp.to(MANAGER) if str(second) in m.text)
    assert "Channel conflict" in conflict_mail.subject
    assert first_partner.partner_id in conflict_mail.text and str(first) in conflict_mail.text

    second_hooks = p.hooks_of(second_partner)
    second_mails = p.smtp.to(str(second_partner.application.contact.email))
    assert second_mails, "the second partner's contact is emailed too"
    for secret in (first_partner.partner_id, first_partner.name, str(first)):
        assert all(secret not in h.body.decode() for h in second_hooks)
        assert all(secret not in m.text and secret not in m.subject for m in second_mails)
    # every hook verifies with its own partner's secret, and one partner's secret verifies no other's hooks
    partner_of_hook = {
        h.name: h.json["data"]["partner_id"] for h in p.hooks.hooks if h.json["data"]["type"] == "partner.approved"
    }
    assert all(
        independently_verified(partner_secret(partner_of_hook[h.name]), h.headers, h.body) for h in p.hooks.hooks
    )
    second_key = partner_secret(second_partner.partner_id)
    assert not any(independently_verified(second_key, h.headers, h.body) for h in p.hooks_of(first_partner))

    opportunities = await collect(
        p.stack.kafka_bootstrap,
        OPPORTUNITIES,
        until=lambda rs: any(r.data.get("registration_id") == str(first) for r in rs),
    )
    for_customer = [r for r in opportunities if r.data.get("customer", {}).get("customer_key") == f"{customer}.de"]
    assert [r.data.get("registration_id") for r in for_customer] == [str(first)]


async def test_rejected_submissions_get_a_reason_code_and_nothing_of_them_reaches_later_stages(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    partner = await p.onboard("adatum")
    customer = dict(
        company="Tailspin Toys", domain="tailspintoys.com", country="US", contact_email="a@tailspintoys.com"
    )

    forged = new_registration(partner.partner_id, **customer)
    async with PartnerClient(bootstrap=p.stack.kafka_bootstrap, key=SigningKey.generate("k1")) as client:
        await client.submit(forged)

    stranger = new_registration(unique("p-nobody-"), **customer)
    async with PartnerClient(bootstrap=p.stack.kafka_bootstrap, key=SigningKey.generate("k1")) as client:
        await client.submit(stranger)

    invalid = new_registration(partner.partner_id, **customer).model_dump(mode="json")
    invalid["opportunity"]["estimated_value"] = {"amount": 48000.5, "currency": "EURO"}
    value = json.dumps(invalid).encode()
    event, _ = new_event(
        type="registration.submitted",
        source=f"partners/{partner.partner_id}",
        data=invalid,
        extensions={"ce_keyid": partner.key.key_id, "ce_signature": partner.key.sign(value)},
    )
    async with PartnerClient(bootstrap=p.stack.kafka_bootstrap, key=partner.key) as client:
        await client.send_raw(value=value, key=partner.partner_id.encode(), headers=event.headers())

    expected = {
        forged.registration_id: "unauthenticated",
        stranger.registration_id: "unknown_partner",
        uuid.UUID(invalid["registration_id"]): "invalid_payload",
    }
    for registration_id, reason in expected.items():
        [status] = await wait_statuses(p, registration_id)
        assert (status["status"], status["reason_code"], status["stage"]) == ("rejected", reason, "intake")
    [invalid_status] = await wait_statuses(p, invalid["registration_id"])
    assert "estimated_value" in invalid_status["partner_message"]

    ids = list(expected)
    conn = await asyncpg.connect(p.stack.admin_dealreg_dsn)
    try:
        assert (
            await conn.fetchval("select count(*) from intake.registrations where registration_id = any($1)", ids) == 0
        )
        assert (
            await conn.fetchval(
                "select count(*) from intake.outbox where topic = $2 "
                "and convert_from(value, 'UTF8')::jsonb->>'registration_id' = any($1)",
                [str(i) for i in ids],
                REGISTRATIONS_RECEIVED.name,
            )
            == 0
        )
        assert (
            await conn.fetchval(
                "select count(*) from vetting.screened_registrations where registration_id = any($1)", ids
            )
            == 0
        )
        assert (
            await conn.fetchval("select count(*) from conflict.registrations where registration_id = any($1)", ids) == 0
        )
    finally:
        await conn.close()


async def test_an_undecodable_record_goes_to_the_dlq_and_intake_keeps_consuming(pipeline: Pipeline) -> None:
    p = pipeline
    partner = await p.onboard("litware")
    marker = str(uuid.uuid4())
    key, _, headers = signed_submission(
        new_registration(
            partner.partner_id,
            company="Fourth Coffee",
            domain="fourthcoffee.com",
            country="US",
            contact_email="x@fourthcoffee.com",
        ),
        partner.key,
    )
    headers = [(k, marker.encode() if k == "ce_id" else v) for k, v in headers]
    await p.producer.send_and_wait(REGISTRATIONS_SUBMITTED.name, value=b"\xff\xfe{not json", key=key, headers=headers)
    good = await submit(
        p, partner, company="Fourth Coffee", domain="fourthcoffee.com", country="US", contact_email="x@fourthcoffee.com"
    )

    dead = await collect(
        p.stack.kafka_bootstrap,
        REGISTRATIONS_SUBMITTED.dlq,
        until=lambda rs: any(r.headers.get("ce_id") == marker for r in rs),
    )
    [letter] = [r for r in dead if r.headers.get("ce_id") == marker]
    assert letter.value == b"\xff\xfe{not json" and letter.key == key
    assert "not UTF-8" in letter.headers["dlq_error"]
    assert letter.headers["dlq_source_topic"] == REGISTRATIONS_SUBMITTED.name
    assert int(letter.headers["dlq_source_offset"]) >= 0 and letter.headers["dlq_consumer"] == "intake"
    # intake's own answer: conflict may already have added its own for this (not unique) customer
    [status] = [s for s in await wait_statuses(p, good) if s["stage"] == "intake"]
    assert status["status"] == "received"


async def test_resubmitting_the_same_bytes_is_a_no_op_and_changed_content_is_refused(pipeline: Pipeline) -> None:
    p = pipeline
    partner = await p.onboard("proseware")
    registration = new_registration(
        partner.partner_id,
        company="Wingtip Toys",
        domain=f"{unique('wingtip')}.com",
        country="US",
        contact_email="buyer@wingtiptoys.com",
    )
    async with PartnerClient(bootstrap=p.stack.kafka_bootstrap, key=partner.key) as client:
        await client.submit(registration)
        await client.submit(registration)  # a partner's retry: same bytes, a new event id
        changed = registration.model_copy(update={"submitted_at": registration.submitted_at.replace(year=2025)})
        await client.submit(changed)
    statuses = await wait_statuses(p, registration.registration_id, count=3)
    by_stage = [(s["stage"], s["status"], s["reason_code"]) for s in statuses]
    assert by_stage.count(("intake", "received", None)) == 1
    assert ("intake", "rejected", "conflicting_resubmission") in by_stage
    assert ("conflict", "approved", None) in by_stage
