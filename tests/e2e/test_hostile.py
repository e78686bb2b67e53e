"""Thousands of hostile records against the running services: each answered or dead-lettered, none hurts."""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from dealreg_cli.commands import replay
from dealreg_devstack.launcher import ServiceProcess
from dealreg_devstack.procs import wait_until
from dealreg_shared.partner import signed_submission
from dealreg_shared.topics import (
    PARTNER_DECISIONS,
    PARTNERS,
    REGISTRATION_DECISIONS,
    REGISTRATION_STATUS,
    REGISTRATIONS_SUBMITTED,
)
from tests.e2e.conflict_support import Tail
from tests.e2e.conftest import MANAGER, Pipeline
from tests.e2e.hostile_inputs import Hostile, generate, nasties, signed
from tests.e2e.intake_helpers import admin_fetchval, registration_for

pytestmark = [pytest.mark.e2e, pytest.mark.hostile]

DRAWN = int(os.environ.get("DEALREG_HOSTILE_INPUTS", "2000"))
GOOD_PER_PARTNER = 15
RSS_BOUND_MB = 300
DECIDED = {"approved", "rejected", "under_review"}


def rss_mb(process: ServiceProcess) -> float:
    """Resident memory of the service's process and its children (the launcher may wrap the interpreter)."""
    total, pending = 0, [process.proc.pid]
    while pending:
        pid = pending.pop()
        status = Path(f"/proc/{pid}/status").read_text()
        total += next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
        for task in Path(f"/proc/{pid}/task").iterdir():
            pending += [int(c) for c in (task / "children").read_text().split()]
    return total / 1024


async def test_thousands_of_hostile_records_are_each_answered_or_dead_lettered_and_hurt_no_one(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    victim, good_a, good_b = await asyncio.gather(p.onboard("hostile-victim"), p.onboard("good-a"), p.onboard("good-b"))
    rss_before = {s: rss_mb(proc) for s, proc in p.services.items()}

    good: list[Hostile] = []
    replays: list[Hostile] = []
    for partner in (good_a, good_b):
        for _ in range(GOOD_PER_PARTNER):
            registration = registration_for(partner.partner_id)
            key, value, headers = signed_submission(registration, partner.key)
            good.append(Hostile("good", REGISTRATIONS_SUBMITTED, key, value, headers, dict(headers)["ce_id"].decode()))
    for original in good[:5]:  # the same record replayed, and the same bytes resubmitted as a new event
        replays.append(
            Hostile(
                "replayed record",
                original.topic,
                original.key,
                original.value,
                original.headers,
                original.event_id,
                answers_expected=False,
            )
        )
        again = signed(
            good_a.key if original.key == good_a.partner_id.encode() else good_b.key,
            original.value,
            original.key.decode(),
        )
        again.kind, again.answers_expected = "resubmitted registration", False
        replays.append(again)

    since = await admin_fetchval(p, "select now()")
    started = time.monotonic()
    hostile = generate(victim, good_a, DRAWN) + nasties(victim)
    generated_s = time.monotonic() - started
    mixed = hostile + good + replays
    random.Random(8).shuffle(mixed)
    # good records first in each partner's order is not needed: every good registration is independent
    mixed.sort(key=lambda h: any(h is r for r in replays))  # replays after their originals, so they are replays

    tails = {t.name: Tail(p.stack.kafka_bootstrap, t) for t in (REGISTRATION_STATUS, PARTNERS)}
    for topic in (REGISTRATIONS_SUBMITTED, REGISTRATION_DECISIONS, PARTNER_DECISIONS):
        tails[topic.dlq.name] = Tail(p.stack.kafka_bootstrap, topic.dlq)
    # compressed, and allowed past the default request size: a 2 MB string must reach the broker to be refused
    producer = AIOKafkaProducer(
        bootstrap_servers=p.stack.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        compression_type="gzip",
        max_request_size=8 * 1024 * 1024,
        client_id="tests-hostile",
    )
    for tail in tails.values():
        await tail.start()
    await producer.start()
    try:
        started = time.monotonic()
        for h in mixed:
            await producer.send(h.topic.name, value=h.value, key=h.key, headers=h.headers)
        await producer.flush()
        published_s = time.monotonic() - started

        def outcomes() -> dict[str, str]:
            seen: dict[str, str] = {}
            for name, tail in tails.items():
                for r in list(tail.records):
                    cause = r.headers.get("ce_causationid") if not name.endswith(".dlq") else r.headers.get("ce_id")
                    if cause is None:
                        continue
                    if name.endswith(".dlq"):
                        seen.setdefault(cause, "dead-lettered")
                    else:
                        data = r.data
                        reason = data.get("reason_code") or data.get("status") or ""
                        seen.setdefault(cause, f"{r.headers.get('ce_type')} {reason}".strip())
            return seen

        def decided() -> set[str]:
            return {
                r.key.decode()
                for r in list(tails[REGISTRATION_STATUS.name].records)
                if r.key and r.headers.get("ce_type") == "registration.status-changed" and r.data["status"] in DECIDED
            }

        good_ids = {str(registration_id(h)) for h in good}
        expected = [h for h in hostile + good if h.answers_expected]

        def settled() -> bool:
            seen = outcomes()
            return all(h.event_id in seen for h in expected) and good_ids <= decided()

        try:
            await p.eventually(settled, "every hostile input answered or dead-lettered, every good one decided", 120)
        except TimeoutError:
            seen = outcomes()
            missing = Counter(h.kind for h in expected if h.event_id not in seen)
            raise AssertionError(f"unanswered: {missing}; undecided good: {len(good_ids - decided())}") from None
        seen = outcomes()
        settled_s = time.monotonic() - started
        # what the flood made notify send is sent before the next test needs notify, and checked for leaks below
        counts: list[tuple[int, int]] = []
        partners = (victim, good_a, good_b)
        # the partners', and the managers' desk that hears of each refused decision
        addresses = [MANAGER, *(a.application.webhook_url or "" for a in partners)]
        addresses += [a.application.contact.email for a in partners]

        async def notify_drained() -> bool:
            query = (
                "select count(*), count(*) filter (where status = 'pending') from notify.notifications"
                " where created_at >= $1 and address = any($2)"
            )
            counts.append(tuple(await admin_fetch_row(p, query, since, addresses)))
            return len(counts) > 1 and counts[-1][1] == 0 and counts[-1][0] == counts[-2][0]

        await wait_until(notify_drained, timeout_s=120, what="notify sends what the flood made it send")
        drained_s = time.monotonic() - started
    finally:
        await producer.stop()
        for tail in tails.values():
            await tail.stop()

    breakdown = Counter(seen[h.event_id] for h in hostile)
    by_kind = Counter(f"{h.kind} -> {seen[h.event_id]}" for h in hostile)
    rss_after = {s: rss_mb(proc) for s, proc in p.services.items()}
    print(
        f"\nhostile inputs: {len(hostile)} ({DRAWN} drawn, {len(hostile) - DRAWN} hand-written), good: {len(good)}, "
        f"replays: {len(replays)}; generated in {generated_s:.1f}s, published in {published_s:.1f}s, "
        f"all settled {settled_s:.1f}s after the first, {counts[-1][0]} notifications sent by {drained_s:.1f}s"
    )
    for outcome, n in breakdown.most_common():
        print(f"  {n:6d}  {outcome}")
    for line, n in sorted(by_kind.items()):
        print(f"  {n:6d}  {line}")
    for service in rss_before:
        print(f"  rss {service}: {rss_before[service]:.0f} MB -> {rss_after[service]:.0f} MB")

    assert all(proc.alive() for proc in p.services.values()), "a service process died"
    # the 2 MB record's letter is cut to fit a produce request (whole, it would block the relay behind it)
    [huge] = [h for h in hostile if h.kind == "2 MB string"]
    [letter] = [r for r in tails[REGISTRATIONS_SUBMITTED.dlq.name].records if r.headers.get("ce_id") == huge.event_id]
    assert letter.headers["dlq_value_truncated_from"] == str(len(huge.value))
    assert len(letter.value) < len(huge.value)
    # and replaying it would publish other bytes than were sent: the operator's replay leaves it where it is
    [skipped] = await replay(p.stack.kafka_bootstrap, REGISTRATIONS_SUBMITTED.name, {(letter.partition, letter.offset)})
    assert "truncated" in skipped["skipped"]
    assert all(mb < RSS_BOUND_MB for mb in rss_after.values()), rss_after
    # every good record was let in (a mutation that happens to be valid may be let in too: it is a registration)
    assert {seen[h.event_id] for h in good} == {"registration.status-changed received"}
    # signature attacks are answered `unauthenticated`, never let in, never dropped
    assert {seen[h.event_id] for h in hostile if h.kind.startswith("signature")} == {
        "registration.status-changed unauthenticated"
    }
    assert_no_partner_hears_of_another(p)
    # a replayed record or a resubmission of the same bytes changes nothing: one `received` per good registration
    received = Counter(
        r.key.decode()
        for r in tails[REGISTRATION_STATUS.name].records
        if r.key and r.headers.get("ce_type") == "registration.status-changed" and r.data["status"] == "received"
    )
    assert {rid: received[rid] for rid in good_ids} == dict.fromkeys(good_ids, 1)


def registration_id(h: Hostile) -> str:
    return str(json.loads(h.value)["registration_id"])


def assert_no_partner_hears_of_another(p: Pipeline) -> None:
    """Over every hook and mail this session delivered (the flood included): a partner hears only of itself."""
    owners = {
        h.name: (h.json["data"]["partner_id"], h.json["data"].get("company_name") or h.json["data"]["partner_id"])
        for h in p.hooks.hooks
        if h.json["data"].get("type") == "partner.approved"
    }
    told = [(h.name, h.body.decode("utf-8", "replace")) for h in p.hooks.hooks if h.name in owners]
    told += [
        (rcpt.split("@")[1].removesuffix(".co.uk"), f"{m.subject}\n{m.text}")
        for m in p.smtp.mails
        for rcpt in m.rcpt_tos
        if rcpt.split("@")[-1].removesuffix(".co.uk") in owners
    ]
    for name, text in told:
        others = [o for n, o in owners.items() if n != name and o[0] != owners[name][0]]
        assert not [o for o in others if o[0] in text or o[1] in text], f"{name} was told of another partner"
    assert len(owners) >= 3 and len(told) > len(owners)


async def admin_fetch_row(p: Pipeline, query: str, *args: Any) -> tuple[Any, ...]:
    conn = await asyncpg.connect(p.stack.admin_dealreg_dsn)
    try:
        return tuple(await conn.fetchrow(query, *args))
    finally:
        await conn.close()
