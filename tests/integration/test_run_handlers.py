"""Each run handler leaves exactly what its one-record handler leaves, record by record, on the same records.

The runs mix what a batch meets in production: the same registration twice, an event of another stage, an
unknown partner or registration, an event type the service does not act on.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import pytest

from dealreg_conflict.app import Decider
from dealreg_conflict.clock import Clock
from dealreg_conflict.policies import ConflictConfig, Policies
from dealreg_conflict.settings import ConflictSettings
from dealreg_devstack.provision import Stack
from dealreg_devstack.scenario import new_registration
from dealreg_intake.handlers import IntakeHandlers
from dealreg_intake.settings import IntakeConfig, TierLimits
from dealreg_notify import store as notify_store
from dealreg_notify.app import StatusNotifications
from dealreg_notify.directory import Directory
from dealreg_notify.domain import PartnerContacts
from dealreg_notify.settings import NotifySettings
from dealreg_shared.consumer import RecordProcessor, RetryPolicy
from dealreg_shared.contracts import EventType, RegistrationSubmitted, Status
from dealreg_shared.envelope import new_event, utcnow
from dealreg_shared.outbox import Outbox
from dealreg_shared.partner import signed_submission
from dealreg_shared.regions import parse_regions
from dealreg_shared.signing import SigningKey
from dealreg_shared.topics import (
    REGISTRATION_STATUS,
    REGISTRATIONS_RECEIVED,
    REGISTRATIONS_SUBMITTED,
    REGISTRATIONS_VETTED,
)
from dealreg_vetting.registrations import Eligibility
from tests.conftest import consumer_record
from tests.integration.runs import Watched, both_ways, incoming_of, record, service_schema
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
    one_by_one, as_run = await both_ways(
        stack,
        "vetting",
        seed=seed,
        records=records,
        handler=eligibility.on_registration_received,
        run_handler=eligibility.on_registrations_received,
    )
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
    one_by_one, as_run = await both_ways(
        stack,
        "intake",
        seed=seed,
        records=records,
        handler=handlers.on_registration_status,
        run_handler=handlers.on_registration_statuses,
    )
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
    one_by_one, as_run = await both_ways(
        stack,
        "notify",
        seed=seed,
        records=records,
        handler=notes.on_registration_status,
        run_handler=notes.on_registration_statuses,
    )
    assert {r["record_id"]: r["state"] for r in as_run["record_states"]} == {
        str(first): "approved",
        str(second): "under_review",
        str(events[-1][1]["registration_id"]): "received",
    }
    sent_to = [(n["event_id"], n["address"]) for n in as_run["notifications"]]
    assert len(sent_to) == len(set(sent_to)) >= 5
    assert any("Fabrikam" in n["body_text"] for n in as_run["notifications"])  # the competing partner, by name
    assert as_run == one_by_one


def signed(registration: RegistrationSubmitted | dict[str, Any], key: SigningKey, *, offset: int) -> Any:
    if isinstance(registration, dict):  # what the contract refuses, signed as a client would send it
        value = json.dumps(registration).encode()
        event, _ = new_event(
            type=EventType.REGISTRATION_SUBMITTED,
            source="partners/p-1",
            data={},
            extensions={"ce_keyid": key.key_id, "ce_signature": key.sign(value)},
        )
        headers = event.headers()
    else:
        _, value, headers = signed_submission(registration, key)
    return consumer_record(REGISTRATIONS_SUBMITTED.name, value, headers, offset=offset)


async def test_intake_admits_a_run_of_submissions_as_it_admits_them_one_by_one(stack: Stack) -> None:
    key, stranger_key = SigningKey.generate("k1"), SigningKey.generate("k1")

    async def seed(pool: asyncpg.Pool) -> None:
        for partner_id, tier in (("p-1", "gold"), ("p-2", "capped")):
            await pool.execute(
                "insert into partners (partner_id, active, tier, region) values ($1, true, $2, 'emea')",
                partner_id,
                tier,
            )
            await pool.execute(
                "insert into partner_keys (partner_id, key_id, public_key) values ($1, 'k1', $2)",
                partner_id,
                key.public_key_b64url,
            )

    def submission(partner_id: str, name: str) -> RegistrationSubmitted:
        return new_registration(
            partner_id, company=f"{name} GmbH", domain=f"{name}.de", country="DE", contact_email=f"jana@{name}.de"
        )

    first, second = submission("p-1", "contoso"), submission("p-1", "fabrikam")
    capped = [submission("p-2", f"capped{n}") for n in range(3)]  # the tier takes two active registrations
    invalid = {**submission("p-1", "broken").model_dump(mode="json"), "customer": {"company_name": ""}}
    records = [
        signed(first, key, offset=0),
        signed(first, key, offset=1),  # the same again: ignored
        signed(second, stranger_key, offset=2),  # not the partner's key: unauthenticated
        signed(submission("p-nobody", "nobody"), key, offset=3),  # no such partner
        signed(invalid, key, offset=4),
        *[signed(c, key, offset=5 + n) for n, c in enumerate(capped)],
        signed(second, key, offset=8),
    ]
    config = IntakeConfig(
        # a trickle of refill: the buckets' token counts come out the same both ways, whatever the clock did
        default_limits=TierLimits(submissions_per_minute=0.0001, burst=100, max_active_registrations=100),
        tiers={"capped": TierLimits(submissions_per_minute=0.0001, burst=100, max_active_registrations=2)},
    )
    handlers = IntakeHandlers(config=config, regions=parse_regions(""))
    one_by_one, as_run = await both_ways(
        stack,
        "intake",
        seed=seed,
        records=records,
        handler=handlers.on_registration_submitted,
        run_handler=handlers.on_registrations_submitted,
    )
    assert {r["registration_id"] for r in as_run["registrations"]} == {
        first.registration_id,
        second.registration_id,
        capped[0].registration_id,
        capped[1].registration_id,
    }
    assert sorted(r["reason_code"] for r in as_run["rejections"]) == [
        "capacity_exceeded",
        "invalid_payload",
        "unauthenticated",
        "unknown_partner",
    ]
    for side in (one_by_one, as_run):
        for bucket in side["submission_buckets"]:
            bucket["tokens"] = round(bucket["tokens"], 3)
    assert as_run == one_by_one


def vetted(partner_id: str, company: str, domain: str) -> dict[str, Any]:
    registration = new_registration(
        partner_id, company=company, domain=domain, country="DE", contact_email=f"jana@{domain}"
    ).model_dump(mode="json")
    return {
        **registration,
        "received_at": utcnow().isoformat(),
        "customer_key": domain,
        "registrable_domain": domain,
        "region": "emea",
        "partner_tier": "gold",
        "partner_region": "emea",
    }


@pytest.mark.parametrize("resolution", ["first_come", "manager_review"])
async def test_conflict_decides_a_run_as_it_decides_record_by_record(stack: Stack, resolution: str) -> None:
    """Registrations of one customer in the same run meet each other as they would one by one."""

    settings = ConflictSettings(resolution=resolution)
    decider = Decider(Policies(ConflictConfig(), settings), Clock(controllable=False), "tests")
    older = vetted("p-9", "Fabrikam AG", "fabrikam.de")  # decided in an earlier run: a stored candidate

    async def seed(pool: asyncpg.Pool) -> None:
        async with pool.acquire() as conn, conn.transaction():
            _, incoming = incoming_of(REGISTRATIONS_VETTED, EventType.REGISTRATION_VETTED, older)
            await decider.on_registration_vetted(conn, incoming, Outbox(service="conflict"))

    first = vetted("p-1", "Contoso GmbH", "contoso.de")
    rival = vetted("p-2", "Contoso GmbH", "contoso.de")  # the same customer, another partner
    look_alike = vetted("p-3", "Contoso", "contoso-group.de")  # the same name, another domain
    other = vetted("p-2", "Fabrikam AG", "fabrikam.de")
    runs = [first, rival, first, look_alike, other]  # `first` twice: decided once
    records = [
        record(REGISTRATIONS_VETTED, EventType.REGISTRATION_VETTED, data, offset=n) for n, data in enumerate(runs)
    ]
    one_by_one, as_run = await both_ways(
        stack,
        "conflict",
        seed=seed,
        records=records,
        handler=decider.on_registration_vetted,
        run_handler=decider.on_registrations_vetted,
    )
    statuses = {str(r["registration_id"]): r["status"] for r in as_run["registrations"]}
    assert len(statuses) == 5 and statuses[first["registration_id"]] == "approved"
    held = "rejected" if resolution == "first_come" else "under_review"
    assert statuses[rival["registration_id"]] == held  # met `first`, decided earlier in the run
    assert statuses[other["registration_id"]] == held  # met `older`, stored before the run
    assert as_run["opportunities"]  # the approved ones opened theirs
    assert as_run == one_by_one


async def test_a_run_handler_that_fails_leaves_the_run_to_the_record_by_record_path(stack: Stack) -> None:
    """A record that breaks the contract fails the whole run in the run handler: the run is rolled back and
    applied record by record, so the others are screened once and that one alone is dead-lettered."""
    good, other = (received("p-1", contact_email=f"jo@{n}.de", amount="50000.00") for n in ("a", "b"))
    broken = {**received("p-1", contact_email="jo@c.de", amount="50000.00"), "customer": {"company_name": ""}}
    records = [
        record(REGISTRATIONS_RECEIVED, EventType.REGISTRATION_RECEIVED, data, offset=n)
        for n, data in enumerate([good, broken, other])
    ]
    eligibility = Eligibility(FLAGGING)
    watched = Watched(eligibility.on_registrations_received)
    async with service_schema(stack, "dealreg_vetting") as pool:
        processor = RecordProcessor(pool=pool, service="vetting", retry=RetryPolicy(2, 0.001, 0.01), max_bytes=10**6)
        await processor.process_batch(records, eligibility.on_registration_received, watched)
        screened = {
            r["registration_id"] for r in await pool.fetch("select registration_id from screened_registrations")
        }
        topics = [r["topic"] for r in await pool.fetch("select topic from outbox order by id")]
    assert len(watched.failures) == 1 and watched.runs == [3]  # tried once as a run, then record by record
    assert screened == {uuid.UUID(good["registration_id"]), uuid.UUID(other["registration_id"])}
    assert sorted(topics) == sorted(
        [REGISTRATION_STATUS.name, REGISTRATION_STATUS.name, REGISTRATIONS_RECEIVED.dlq.name]
    )  # both rejected (no such partner here), the broken one dead-lettered


class _Counting:
    """A connection that counts the statements sent through it."""

    def __init__(self, conn: Any) -> None:
        self._conn, self.statements = conn, 0

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._conn, name)
        if name not in ("execute", "executemany", "fetch", "fetchrow", "fetchval"):
            return method

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.statements += 1
            return await method(*args, **kwargs)

        return counted


async def test_notify_records_a_run_of_statuses_in_two_statements_after_the_inbox(stack: Stack) -> None:
    """The states and the partners' contacts in one statement, the notifications in another: the fewer round trips
    a batch makes, the less it costs at low rates, where a batch holds an event or two."""
    first, second = uuid.uuid4(), uuid.uuid4()
    statuses = [status(first, "p-1", Status.RECEIVED, "intake"), status(second, "p-1", Status.APPROVED, "conflict")]
    notes = StatusNotifications(NotifySettings(), Directory.single_desk(("desk@vendor.example",)))
    async with service_schema(stack, "dealreg_notify") as pool, pool.acquire() as conn:
        contacts = PartnerContacts("p-1", "Northwind", ("deals@p-1.example",), None, "emea")
        await notify_store.upsert_partner(conn, contacts, active=True)
        run = []
        for s in statuses:
            _, incoming = incoming_of(REGISTRATION_STATUS, EventType.REGISTRATION_STATUS_CHANGED, s)
            run.append((incoming, Outbox(service="notify", cause=incoming.event)))
        counting = _Counting(conn)
        async with conn.transaction():
            await notes.on_registration_statuses(counting, run)
        assert counting.statements == 2
        states = await conn.fetch("select record_id, state from record_states order by state")
        assert [(r["record_id"], r["state"]) for r in states] == [(str(second), "approved"), (str(first), "received")]
        addresses = {r["address"] for r in await conn.fetch("select address from notifications")}
        assert "deals@p-1.example" in addresses  # the partner's contacts came back from the same statement
