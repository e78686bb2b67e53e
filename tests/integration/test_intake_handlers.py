"""Intake's subscribers on a real Postgres: the partner projection, idempotency, hostile input."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dealreg_devstack.provision import Stack
from dealreg_intake import store
from dealreg_shared.contracts import (
    EventType,
    PartnerKeysUpdated,
    PartnerStatusChanged,
    PublicKey,
)
from dealreg_shared.envelope import new_event, utcnow
from dealreg_shared.partner import signed_submission
from dealreg_shared.signing import SigningKey
from dealreg_shared.topics import PARTNERS, REGISTRATION_STATUS, REGISTRATIONS_RECEIVED, REGISTRATIONS_SUBMITTED
from tests.conftest import unique
from tests.integration.intake_harness import Intake, approve, registration, running_intake

pytestmark = pytest.mark.integration


@pytest.fixture
async def intake(stack: Stack) -> AsyncIterator[Intake]:
    async with running_intake(stack) as harness:
        yield harness


async def test_an_approved_partners_signed_registration_is_stored_answered_and_forwarded_once(intake: Intake) -> None:
    partner_id, key = await approve(intake)
    reg = registration(partner_id)
    await intake.submit(reg, key)
    assert await intake.answers(reg.registration_id) == [("received", None)]
    assert await intake.forwarded(reg.registration_id) == 1
    [forwarded] = [r for r in await intake.outbox(REGISTRATIONS_RECEIVED.name)]
    assert forwarded["customer_key"] == reg.customer.domain and forwarded["region"] == "emea"


async def test_a_redelivered_record_changes_nothing(intake: Intake) -> None:
    partner_id, key = await approve(intake)
    reg = registration(partner_id)
    _, value, headers = signed_submission(reg, key)
    for replica in (0, 1, 0):  # the same record read again, by either replica
        await intake.feed(REGISTRATIONS_SUBMITTED.name, value, headers, replica=replica)
    assert await intake.answers(reg.registration_id) == [("received", None)]
    assert await intake.forwarded(reg.registration_id) == 1


async def test_the_same_content_resubmitted_in_any_serialization_is_a_no_op(intake: Intake) -> None:
    partner_id, key = await approve(intake)
    reg = registration(partner_id)
    await intake.submit(reg, key)
    await intake.submit(reg, key)  # a partner's retry: a new event id, the same bytes
    reordered = json.loads(json.dumps(reg.model_dump(mode="json"), sort_keys=True))
    value = json.dumps(reordered, indent=1).encode()
    event, _ = new_event(
        type=EventType.REGISTRATION_SUBMITTED,
        source=f"partners/{partner_id}",
        data=reordered,
        extensions={"ce_keyid": "k1", "ce_signature": key.sign(value)},
    )
    await intake.feed(REGISTRATIONS_SUBMITTED.name, value, event.headers())
    assert await intake.answers(reg.registration_id) == [("received", None)]
    assert await intake.forwarded(reg.registration_id) == 1


async def test_changed_content_under_a_known_id_is_refused_and_the_original_stands(intake: Intake) -> None:
    partner_id, key = await approve(intake)
    reg = registration(partner_id)
    await intake.submit(reg, key)
    await intake.submit(reg.model_copy(update={"submitted_at": utcnow()}), key)
    assert await intake.answers(reg.registration_id) == [
        ("received", None),
        ("rejected", "conflicting_resubmission"),
    ]
    assert await intake.forwarded(reg.registration_id) == 1


async def test_the_partner_projection_follows_key_rotation_suspension_and_reinstatement(intake: Intake) -> None:
    partner_id, old_key = await approve(intake)
    new_key = SigningKey.generate("k2")
    await intake.publish(
        PARTNERS.name,
        EventType.PARTNER_KEYS_UPDATED,
        PartnerKeysUpdated(
            partner_id=partner_id, public_keys=[PublicKey(key_id="k2", public_key=new_key.public_key_b64url)]
        ),
    )
    retired, rotated = registration(partner_id), registration(partner_id)
    await intake.submit(retired, old_key)
    await intake.submit(rotated, new_key)
    assert await intake.answers(retired.registration_id) == [("rejected", "unauthenticated")]
    assert await intake.answers(rotated.registration_id) == [("received", None)]

    await intake.publish(PARTNERS.name, EventType.PARTNER_SUSPENDED, PartnerStatusChanged(partner_id=partner_id))
    while_suspended = registration(partner_id)
    await intake.submit(while_suspended, new_key)
    assert await intake.answers(while_suspended.registration_id) == [("rejected", "partner_inactive")]

    await intake.publish(PARTNERS.name, EventType.PARTNER_REINSTATED, PartnerStatusChanged(partner_id=partner_id))
    reinstated = registration(partner_id)
    await intake.submit(reinstated, new_key)
    assert await intake.answers(reinstated.registration_id) == [("received", None)]


async def test_partner_events_for_a_partner_intake_never_saw_are_ignored_not_dead_lettered(intake: Intake) -> None:
    stranger = unique("p-")
    await intake.publish(PARTNERS.name, EventType.PARTNER_SUSPENDED, PartnerStatusChanged(partner_id=stranger))
    await intake.publish(
        PARTNERS.name,
        EventType.PARTNER_KEYS_UPDATED,
        PartnerKeysUpdated(partner_id=stranger, public_keys=[PublicKey(key_id="k1", public_key="A" * 43)]),
    )
    assert await intake.pool.fetchval("select count(*) from outbox") == 0
    assert await intake.pool.fetchval("select count(*) from partners where partner_id = $1", stranger) == 0


async def test_a_partner_cannot_submit_in_another_partners_name_even_with_the_same_key_id(intake: Intake) -> None:
    victim, _ = await approve(intake)
    _, attacker_key = await approve(intake)  # its own key is also called k1
    forged = registration(victim)
    await intake.submit(forged, attacker_key)
    assert await intake.answers(forged.registration_id) == [("rejected", "unauthenticated")]
    assert await intake.pool.fetchval("select count(*) from registrations where partner_id = $1", victim) == 0


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("customer", "company_name"), "Contoso\x00GmbH"),
        (("customer", "company_name"), "Contoso \ud800"),
        (("opportunity", "description"), "x" * 100_000),
        (("customer", "domain"), "https://contoso.de/\x00"),
        (("customer", "\x00"), "x"),
    ],
)
async def test_hostile_text_from_an_authenticated_partner_is_answered_as_invalid_without_a_database_error(
    intake: Intake, path: tuple[str, str], value: str
) -> None:
    partner_id, key = await approve(intake)
    data = registration(partner_id).model_dump(mode="json")
    data[path[0]][path[1]] = value
    raw = json.dumps(data).encode()  # \u0000 and \ud800 escapes, as a hostile client writes them
    event, _ = new_event(
        type=EventType.REGISTRATION_SUBMITTED,
        source=f"partners/{partner_id}",
        data={},
        extensions={"ce_keyid": "k1", "ce_signature": key.sign(raw)},
    )
    await intake.feed(REGISTRATIONS_SUBMITTED.name, raw, event.headers())
    assert await intake.answers(data["registration_id"]) == [("rejected", "invalid_payload")]
    assert await intake.dead_letters() == []


@pytest.mark.parametrize(
    "data",
    [
        {"registration_id": "x'; drop table registrations; --", "partner_id": "p-x"},
        {"registration_id": str(uuid.uuid4()), "partner_id": "p'; drop table partners; --"},
        {"registration_id": str(uuid.uuid4())},
    ],
)
async def test_a_submission_naming_no_one_to_answer_is_dead_lettered(intake: Intake, data: dict[str, Any]) -> None:
    event, value = new_event(type=EventType.REGISTRATION_SUBMITTED, source="partners/x", data=data)
    await intake.feed(REGISTRATIONS_SUBMITTED.name, value, event.headers())
    assert len(await intake.dead_letters()) == 1
    assert await intake.outbox(REGISTRATION_STATUS.name) == []
    assert await intake.pool.fetchval("select count(*) from registrations") == 0


async def test_another_event_type_on_the_submissions_topic_is_dead_lettered(intake: Intake) -> None:
    partner_id, key = await approve(intake)
    _, value, headers = signed_submission(registration(partner_id), key)
    headers = [(k, b"registration.decided" if k == "ce_type" else v) for k, v in headers]
    await intake.feed(REGISTRATIONS_SUBMITTED.name, value, headers)
    assert len(await intake.dead_letters()) == 1
    assert await intake.outbox(REGISTRATION_STATUS.name) == []


@pytest.mark.parametrize(
    ("hostile", "broken_value"),
    [
        # undecodable bytes carrying a header name that jsonb (where dead letters wait) cannot store as it is
        ([("x-trace\x00", b"1")], b"\xff not json"),
        ([("ce_id", b"abc\x00def")], None),  # an event id no text column can hold
        ([("ce_id", b"x" * 5000)], None),  # nor an index entry
    ],
)
async def test_a_record_with_hostile_headers_is_dead_lettered_at_once_and_keeps_them(
    intake: Intake, hostile: list[tuple[str, bytes]], broken_value: bytes | None
) -> None:
    partner_id, key = await approve(intake)
    _, value, headers = signed_submission(registration(partner_id), key)
    value = broken_value or value
    names = {name for name, _ in hostile}
    headers = [(k, v) for k, v in headers if k not in names] + hostile
    # a dead letter that cannot be written would be retried for ever and stop the partition
    await asyncio.wait_for(intake.feed(REGISTRATIONS_SUBMITTED.name, value, headers), timeout=10)
    [letter] = await intake.pool.fetch(
        "select value, headers::text as headers from outbox where topic = $1", REGISTRATIONS_SUBMITTED.dlq.name
    )
    assert letter["value"] == value
    assert "dlq_error" in letter["headers"]
    assert await intake.outbox(REGISTRATION_STATUS.name) == []


async def test_json_nested_deeper_than_any_event_is_dead_lettered_before_any_handler_walks_it(intake: Intake) -> None:
    partner_id, key = await approve(intake)
    data = registration(partner_id).model_dump(mode="json")
    value = json.dumps(data)[:-1].encode() + b', "x": ' + b"[" * 900 + b"]" * 900 + b"}"
    event, _ = new_event(
        type=EventType.REGISTRATION_SUBMITTED,
        source=f"partners/{partner_id}",
        data={},
        extensions={"ce_keyid": "k1", "ce_signature": key.sign(value)},
    )
    await asyncio.wait_for(intake.feed(REGISTRATIONS_SUBMITTED.name, value, event.headers()), timeout=10)
    [letter] = await intake.pool.fetch(
        "select headers::text as headers from outbox where topic = $1", REGISTRATIONS_SUBMITTED.dlq.name
    )
    errors = [base64.b64decode(v).decode() for k, v in json.loads(letter["headers"]) if k == "dlq_error"]
    assert errors == ["value is nested deeper than 32 levels"]
    assert await intake.outbox(REGISTRATION_STATUS.name) == []


async def test_a_status_that_keeps_a_registration_active_is_a_heap_only_update(intake: Intake) -> None:
    """Approved (or under review) changes no indexed column of intake's row: with room left on its page, Postgres
    writes no index entry and logs only what changed. On full pages the new version went to another page."""
    partner_id, key = await approve(intake)
    for _ in range(30):
        await intake.submit(registration(partner_id), key)
    async with intake.pool.acquire() as conn, conn.transaction():
        # the first registration on each page, as statuses come back at random places in the table
        first_on_each_page = await conn.fetch(
            "select registration_id from registrations where ctid = any(array(select format('(%s,1)', page)::tid "
            "from generate_series(0, pg_relation_size('registrations') / current_setting('block_size')::int - 1) "
            "page))"
        )
        changes = [
            store.StatusChange(r["registration_id"], partner_id, "approved", True, utcnow()) for r in first_on_each_page
        ]
        await store.mark_registration_statuses(conn, changes)
        counts = await conn.fetchrow(
            "select n_tup_upd, n_tup_hot_upd from pg_stat_xact_user_tables where relid = 'registrations'::regclass"
        )
    assert len(changes) >= 3 and counts["n_tup_upd"] == len(changes)
    assert counts["n_tup_hot_upd"] == len(changes)
