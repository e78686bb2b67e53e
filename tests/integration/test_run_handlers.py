"""Each run handler leaves exactly what its one-record handler leaves, record by record, on the same records.

The runs mix what a batch meets in production: the same registration twice, an event of another stage, an
unknown partner or registration, an event type the service does not act on.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from dealreg_devstack.provision import Stack
from dealreg_intake.handlers import IntakeHandlers
from dealreg_intake.settings import IntakeConfig
from dealreg_notify import store as notify_store
from dealreg_notify.app import StatusNotifications
from dealreg_notify.directory import Directory
from dealreg_notify.domain import PartnerContacts
from dealreg_notify.settings import NotifySettings
from dealreg_shared.contracts import EventType, Status
from dealreg_shared.envelope import utcnow
from dealreg_shared.topics import REGISTRATION_STATUS, REGISTRATIONS_RECEIVED
from dealreg_vetting.registrations import Eligibility
from tests.integration.runs import both_ways, record
from tests.integration.test_vetting_subscribers import FLAGGING, received

pytestmark = pytest.mark.integration


def status(registration_id: uuid.UUID, partner_id: str, state: Status, stage: str, **extra: Any) -> dict[str, Any]:
    return {
        "registration_id": str(registration_id),
        "partner_id": partner_id,
        "status": state.value,
        "stage": stage,
        "partner_message": f"now {state.value}",
        "occurred_at": utcnow().isoformat(),
        "customer_name": "Contoso",
        "region": "emea",
        **extra,
    }


async def test_vetting_screens_a_run_as_it_screens_record_by_record(stack: Stack) -> None:
    application_id = uuid.uuid4()

    async def seed(pool: asyncpg.Pool) -> None:
        await pool.execute(
            "insert into applications (application_id, partner_id, domain, data, checks, flags, recommendation, "
            "status) values ($1, 'p-flag', 'flagco.co.uk', '{}', '{}', '{}', 'approve', 'approved')",
            application_id,
        )
        await pool.execute(
            "insert into partners (partner_id, application_id, domain, company_name, tier, region, active) "
            "values ('p-flag', $1, 'flagco.co.uk', 'Flag Co', 'gold', 'emea', true)",
            application_id,
        )

    good = received("p-flag", contact_email="jana@contoso.de", amount="50000.00")
    flagged = received("p-flag", contact_email="jana@gmail.com", amount="150000.00")
    stranger = received("p-nobody", contact_email="jo@contoso.de", amount="50000.00")
    records = [
        record(REGISTRATIONS_RECEIVED, EventType.REGISTRATION_RECEIVED, data, offset=n)
        for n, data in enumerate([good, flagged, good, stranger, flagged])  # twice each: screened once
    ]
    eligibility = Eligibility(FLAGGING)
    one_by_one, as_run, watched = await both_ways(
        stack,
        package="dealreg_vetting",
        service="vetting",
        seed=seed,
        records=records,
        handler=eligibility.on_registration_received,
        run_handler=eligibility.on_registrations_received,
    )
    assert watched.runs == [5] and watched.failures == []
    screened = {r["registration_id"]: (r["eligible"], r["flags"]) for r in as_run["screened_registrations"]}
    assert screened == {
        uuid.UUID(good["registration_id"]): (True, []),
        uuid.UUID(flagged["registration_id"]): (True, ["free_mail_contact"]),
        uuid.UUID(stranger["registration_id"]): (False, []),
    }
    assert len(as_run["outbox"]) == 3  # two vetted, one rejection
    assert as_run == one_by_one


async def test_intake_follows_a_run_of_statuses_as_it_follows_them_one_by_one(stack: Stack) -> None:
    mine, other = uuid.uuid4(), uuid.uuid4()

    async def seed(pool: asyncpg.Pool) -> None:
        for registration_id in (mine, other):
            await pool.execute(
                "insert into registrations (registration_id, partner_id, content_sha256, customer_key, region, "
                "received_at, data) values ($1, 'p-1', 'x', 'contoso.de', 'emea', now(), '{}')",
                registration_id,
            )

    statuses = [
        status(mine, "p-1", Status.RECEIVED, "intake"),  # intake's own: skipped
        status(mine, "p-1", Status.UNDER_REVIEW, "conflict"),
        status(other, "p-1", Status.APPROVED, "conflict"),
        status(mine, "p-1", Status.REJECTED, "conflict", reason_code="rejected_by_manager"),  # the last wins
        status(uuid.uuid4(), "p-1", Status.APPROVED, "conflict"),  # never stored: nothing to change
        status(other, "p-2", Status.REJECTED, "conflict", reason_code="rejected_by_manager"),  # not p-2's
    ]
    records = [
        record(REGISTRATION_STATUS, EventType.REGISTRATION_STATUS_CHANGED, s, offset=n) for n, s in enumerate(statuses)
    ]
    handlers = IntakeHandlers(config=IntakeConfig(), regions={})
    one_by_one, as_run, watched = await both_ways(
        stack,
        package="dealreg_intake",
        service="intake",
        seed=seed,
        records=records,
        handler=handlers.on_registration_status,
        run_handler=handlers.on_registration_statuses,
    )
    assert watched.runs == [6] and watched.failures == []
    by_id = {r["registration_id"]: (r["status"], r["active"]) for r in as_run["registrations"]}
    assert by_id == {mine: ("rejected", False), other: ("approved", True)}
    assert as_run == one_by_one


async def test_notify_records_a_run_of_statuses_as_it_records_them_one_by_one(stack: Stack) -> None:
    async def seed(pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn:
            for partner_id, name in (("p-1", "Northwind"), ("p-2", "Fabrikam")):
                contacts = PartnerContacts(partner_id, name, (f"deals@{partner_id}.example",), None, "emea")
                await notify_store.upsert_partner(conn, contacts, active=True)

    first, second, third = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    competing = {"competing_partner_id": "p-2", "competing": [{"registration_id": str(third), "partner_id": "p-2"}]}
    refused = {
        "decision_id": str(uuid.uuid4()),
        "subject_id": str(first),
        "decision": "approve",
        "reason": "already decided",
        "occurred_at": utcnow().isoformat(),
    }
    events = [
        (EventType.REGISTRATION_STATUS_CHANGED, status(first, "p-1", Status.RECEIVED, "intake")),
        (EventType.REGISTRATION_STATUS_CHANGED, status(second, "p-1", Status.RECEIVED, "intake")),
        (EventType.REGISTRATION_STATUS_CHANGED, status(first, "p-1", Status.APPROVED, "conflict")),
        (
            EventType.REGISTRATION_STATUS_CHANGED,
            status(second, "p-1", Status.UNDER_REVIEW, "conflict", manager_detail=competing),
        ),
        (EventType.DECISION_REFUSED, refused),
        ("registration.archived", {"registration_id": str(first)}),  # a newer producer's type: ignored
        (EventType.REGISTRATION_STATUS_CHANGED, status(uuid.uuid4(), "p-gone", Status.RECEIVED, "intake")),
    ]
    records = [record(REGISTRATION_STATUS, t, data, offset=n) for n, (t, data) in enumerate(events)]
    notes = StatusNotifications(NotifySettings(), Directory.single_desk(("desk@vendor.example",)))
    one_by_one, as_run, watched = await both_ways(
        stack,
        package="dealreg_notify",
        service="notify",
        seed=seed,
        records=records,
        handler=notes.on_registration_status,
        run_handler=notes.on_registration_statuses,
    )
    assert watched.runs == [7] and watched.failures == []
    assert {r["record_id"]: r["state"] for r in as_run["record_states"]} == {
        str(first): "approved",
        str(second): "under_review",
        str(events[-1][1]["registration_id"]): "received",
    }
    sent_to = [(n["event_id"], n["address"]) for n in as_run["notifications"]]
    assert len(sent_to) == len(set(sent_to)) >= 5
    assert any("Fabrikam" in n["body_text"] for n in as_run["notifications"])  # the competing partner, by name
    assert as_run == one_by_one
