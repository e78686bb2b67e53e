"""The `dealreg` command line, run as operators and managers run it, against the real pipeline."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

import pytest

from dealreg_devstack.scenario import new_partner, new_registration
from dealreg_devstack.topicreader import collect
from dealreg_shared.partner import PartnerClient, apply, signed_submission
from dealreg_shared.topics import MAIN_TOPICS, REGISTRATION_STATUS, REGISTRATIONS_SUBMITTED
from tests.conftest import unique
from tests.e2e.conftest import MANAGER, Pipeline

pytestmark = pytest.mark.e2e


def dealreg(p: Pipeline, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dealreg_cli", *args, "--bootstrap", p.stack.kafka_bootstrap],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def dealreg_json(p: Pipeline, *args: str) -> Any:
    done = dealreg(p, *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def approved(p: Pipeline, registration_id: uuid.UUID) -> None:
    await collect(
        p.stack.kafka_bootstrap,
        REGISTRATION_STATUS,
        until=lambda rs: any(
            r.data.get("registration_id") == str(registration_id) and r.data.get("status") == "approved" for r in rs
        ),
    )


async def test_status_lists_every_topic_with_its_consumers_lag_and_dead_letters(pipeline: Pipeline) -> None:
    rows = dealreg_json(pipeline, "status")
    assert [(r["topic"], r["partitions"]) for r in rows] == [(t.name, t.partitions) for t in MAIN_TOPICS]
    submitted = next(r for r in rows if r["topic"] == REGISTRATIONS_SUBMITTED.name)
    assert submitted["lag"].startswith("intake:") and isinstance(submitted["dead_letters"], int)
    table = dealreg(pipeline, "status").stdout
    assert table.splitlines()[0].split() == ["TOPIC", "PARTITIONS", "RECORDS", "LAG", "DEAD_LETTERS"]


async def test_history_shows_one_registration_through_every_stage_in_order(pipeline: Pipeline) -> None:
    p = pipeline
    partner = await p.onboard("history")
    registration = new_registration(
        partner.partner_id,
        company="Coho Winery",
        domain=f"{unique('coho')}.com",
        country="US",
        contact_email="buyer@cohowinery.com",
    )
    async with PartnerClient(bootstrap=p.stack.kafka_bootstrap, key=partner.key) as client:
        await client.submit(registration)
    await approved(p, registration.registration_id)
    await p.eventually(
        lambda: len(dealreg_json(p, "history", str(registration.registration_id))) >= 6,
        "every stage shows in the history",
    )
    events = [(r["event"], r["detail"]) for r in dealreg_json(p, "history", str(registration.registration_id))]
    order = [e for e, _ in events]

    def first(event: tuple[str, str] | str) -> int:
        return events.index(event) if isinstance(event, tuple) else order.index(event)

    assert first("registration.submitted") < first("registration.received") < first("registration.vetted")
    assert first(("registration.status-changed", "received")) < first(("registration.status-changed", "approved"))
    assert first("registration.vetted") < first("opportunity.created")
    assert dealreg(p, "history", str(uuid.uuid4())).returncode == 1


async def test_a_decision_from_the_cli_is_applied_and_one_that_does_not_apply_is_answered(pipeline: Pipeline) -> None:
    p = pipeline
    partner = await p.onboard("decider")
    registration = new_registration(
        partner.partner_id,
        company="Lucerne Publishing",
        country="CH",
        domain=f"{unique('lucerne')}.ch",
        contact_email="it@lucernepublishing.ch",
    )
    async with PartnerClient(bootstrap=p.stack.kafka_bootstrap, key=partner.key) as client:
        await client.submit(registration)
    await approved(p, registration.registration_id)
    rid = str(registration.registration_id)
    [row] = dealreg_json(p, "decide", "registration", rid, "extend", "--days", "10", "--manager", "maria")
    assert row["decision"] == "extend"
    records = await collect(
        p.stack.kafka_bootstrap,
        REGISTRATION_STATUS,
        until=lambda rs: (
            sum(r.data.get("registration_id") == rid and r.data.get("status") == "approved" for r in rs) >= 2
        ),
    )
    until = [
        r.data["protected_until"]
        for r in records
        if r.data.get("registration_id") == rid and r.data.get("status") == "approved"
    ]
    assert until[1] > until[0]
    assert dealreg(p, "decide", "registration", rid, "approve", "--manager", "maria").returncode == 0
    await p.eventually(
        lambda: any("Decision not applied" in m.subject and rid in m.subject for m in p.smtp.to(MANAGER)),
        "the managers hear that the approve did not apply",
    )
    assert dealreg(p, "decide", "registration", rid, "extend", "--manager", "maria").returncode == 2


async def test_pending_lists_an_application_until_a_manager_decides_it_from_the_cli(pipeline: Pipeline) -> None:
    p = pipeline
    name = unique("pending")
    partner = new_partner(
        company=f"Pending {name} Ltd",
        website=f"https://{name}.co.uk",
        contact_name="Ada Li",
        email=f"ada@{name}.co.uk",
        country="GB",
        webhook_url=p.hooks.url(name),
    )
    await apply(p.stack.kafka_bootstrap, partner.application)
    app_id = str(partner.application.application_id)
    await p.eventually(lambda: any(r["id"] == app_id for r in dealreg_json(p, "pending")), "the application waits")
    dealreg_json(p, "decide", "application", app_id, "approve", "--tier", "gold", "--manager", "maria")
    await p.eventually(
        lambda: not any(r["id"] == app_id for r in dealreg_json(p, "pending")),
        "the decided application no longer waits",
    )
    await p.eventually(
        lambda: any(h.json["data"]["type"] == "partner.approved" for h in p.hooks.to(name)),
        "the partner hears it is approved",
    )


async def test_a_dead_letter_is_listed_with_its_cause_and_replayed_to_its_source_topic(pipeline: Pipeline) -> None:
    p = pipeline
    partner = await p.onboard("deadletter")
    marker = str(uuid.uuid4())
    key, _, headers = signed_submission(
        new_registration(
            partner.partner_id, company="Contoso", domain="contoso.com", country="US", contact_email="a@contoso.com"
        ),
        partner.key,
    )
    headers = [(k, marker.encode() if k == "ce_id" else v) for k, v in headers]
    await p.producer.send_and_wait(REGISTRATIONS_SUBMITTED.name, value=b"{broken", key=key, headers=headers)

    def letters() -> list[dict[str, Any]]:
        return [r for r in dealreg_json(p, "dlq", "list", REGISTRATIONS_SUBMITTED.name) if r["event_id"] == marker]

    await p.eventually(lambda: letters(), "the record is dead-lettered")
    [first] = letters()
    assert "not JSON" in first["error"] and first["consumer"] == "intake"
    replayed = dealreg_json(
        p, "dlq", "replay", REGISTRATIONS_SUBMITTED.name, "--record", f"{first['partition']}:{first['offset']}"
    )
    assert replayed == [
        {
            "partition": first["partition"],
            "offset": first["offset"],
            "event": "registration.submitted",
            "to": REGISTRATIONS_SUBMITTED.name,
        }
    ]
    # still broken, so intake dead-letters the replayed copy: it was read again from its source topic
    await p.eventually(lambda: len(letters()) == 2, "the replayed record is consumed again")
    sources = {r["source"] for r in letters()}
    assert len(sources) == 2
    assert dealreg(p, "dlq", "list", "no.such.topic").returncode == 2
