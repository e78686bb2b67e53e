"""Nothing lost, nothing doubled: a steady stream of registrations while every part of the system fails once.

Short by default (CI); `DEALREG_FAULT_REGISTRATIONS=2000 make faults` for the long form.
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
import structlog

from dealreg_devstack.launcher import start_service, wait_ready
from dealreg_devstack.scenario import ScenarioPartner, new_registration
from dealreg_devstack.tcpproxy import TcpProxy
from dealreg_devstack.topicreader import Record, collect
from dealreg_shared.contracts import RegistrationSubmitted
from dealreg_shared.partner import PartnerClient
from dealreg_shared.topics import ALL_TOPICS, OPPORTUNITIES, REGISTRATION_STATUS
from tests.conftest import StackControl, unique
from tests.e2e.conftest import Pipeline

pytestmark = [pytest.mark.e2e, pytest.mark.faults]
log = structlog.get_logger(__name__)

REGISTRATIONS = int(os.environ.get("DEALREG_FAULT_REGISTRATIONS", "150"))
RATE_PER_S = float(os.environ.get("DEALREG_FAULT_RATE", "30"))


@dataclass
class Plan:
    """What the partners send: each customer registered by one partner, some by a rival, some resubmitted."""

    partners: list[ScenarioPartner]
    sends: list[tuple[ScenarioPartner, RegistrationSubmitted]] = field(default_factory=list)
    customer_of: dict[str, str] = field(default_factory=dict)  # registration id -> customer domain

    @classmethod
    def make(cls, partners: list[ScenarioPartner], size: int, rng: random.Random) -> Plan:
        plan = cls(partners)
        while len(plan.sends) < size:
            domain = f"{unique('cust')}.com"
            first, rival = rng.sample(partners, 2)
            plan.add(first, domain)
            if rng.random() < 0.3:
                plan.add(rival, domain)  # a channel conflict
            if rng.random() < 0.1:
                plan.sends.append(plan.sends[-1])  # a partner's retry: same registration, same bytes
        return plan

    def add(self, partner: ScenarioPartner, domain: str) -> None:
        reg = new_registration(
            partner.partner_id,
            company=domain.split(".")[0].title(),
            domain=domain,
            country="DE",
            contact_email=f"buyer@{domain}",
        )
        self.sends.append((partner, reg))
        self.customer_of[str(reg.registration_id)] = domain


class Driver:
    def __init__(self, p: Pipeline, plan: Plan) -> None:
        self.p, self.plan, self.sent = p, plan, 0

    async def run(self) -> None:
        clients = {
            pt.partner_id: PartnerClient(bootstrap=self.p.stack.kafka_bootstrap, key=pt.key)
            for pt in self.plan.partners
        }
        for client in clients.values():
            await client.__aenter__()
        try:
            for partner, reg in self.plan.sends:
                await clients[partner.partner_id].submit(reg)  # acks=all, retried by the producer across restarts
                self.sent += 1
                await asyncio.sleep(1 / RATE_PER_S)  # pacing: a steady offered rate
        finally:
            for client in clients.values():
                await client.__aexit__()


async def inject_faults(p: Pipeline, control: StackControl, driver: Driver, total: int) -> list[str]:
    done: list[str] = []

    async def when_sent(fraction: float) -> None:
        await p.eventually(lambda: driver.sent >= int(total * fraction), f"{fraction:.0%} sent", timeout_s=120)

    dsn = urlsplit(p.stack.service_dsn("intake"))
    proxy = TcpProxy(dsn.hostname or "127.0.0.1", dsn.port or 5432)
    await proxy.start()
    via_proxy = dsn._replace(netloc=dsn.netloc.replace(f":{dsn.port}", f":{proxy.port}")).geturl()
    try:
        for i, service in enumerate(("intake", "vetting", "conflict", "notify")):
            await when_sent(0.08 + 0.08 * i)
            extra = {"DEALREG_DATABASE_URL": via_proxy} if service == "intake" else None
            await p.restart(service, kill=True, extra_env=extra)
            done.append(f"SIGKILL {service}")
        await when_sent(0.45)
        await control.restart_kafka()
        done.append("restart Kafka")
        await when_sent(0.55)
        await control.restart_postgres()
        done.append("restart Postgres")
        await when_sent(0.65)
        replica = start_service(p.stack, "conflict", log_dir=p.log_dir, replica=99)
        await wait_ready([replica])
        await when_sent(0.72)
        replica.stop()
        done.append("second conflict replica joined and left")
        await when_sent(0.8)
        proxy.cut()
        await when_sent(0.88)
        proxy.restore()
        done.append("intake's database connections cut and restored")
    finally:
        proxy.restore()
        await p.eventually(lambda: driver.sent >= total, "all sent", timeout_s=300)
        # intake keeps its proxied connections; the proxy must outlive the checks, so restart it plainly
        await p.restart("intake", kill=False)
        await proxy.stop()
    return done


def statuses(records: list[Record]) -> dict[str, dict[str, Any]]:
    """registration id -> {ce_id: status data}: distinct events, whatever the topic holds twice."""
    by_reg: dict[str, dict[str, Any]] = defaultdict(dict)
    for r in records:
        if r.headers.get("ce_type") == "registration.status-changed":
            by_reg[r.data["registration_id"]][r.headers["ce_id"]] = r.data
    return by_reg


async def test_nothing_is_lost_or_doubled_while_every_part_fails_once(
    pipeline: Pipeline, stack_control: StackControl
) -> None:
    p = pipeline
    rng = random.Random(20261124)
    partners = [await p.onboard(f"fault{i}") for i in range(5)]
    plan = Plan.make(partners, REGISTRATIONS, rng)
    registrations = {str(reg.registration_id) for _, reg in plan.sends}
    driver = Driver(p, plan)
    drive = asyncio.create_task(driver.run())
    faults = await inject_faults(p, stack_control, driver, len(plan.sends))
    await drive

    def settled(records: list[Record]) -> bool:
        final = statuses(records)
        return all(any(s["stage"] == "conflict" for s in final.get(r, {}).values()) for r in registrations)

    records = await collect(p.stack.kafka_bootstrap, REGISTRATION_STATUS, until=settled, timeout_s=240)
    by_reg = statuses(records)
    received = {r: sum(s["status"] == "received" for s in by_reg[r].values()) for r in registrations}
    decided = {r: [s for s in by_reg[r].values() if s["stage"] == "conflict"] for r in registrations}
    assert [r for r, n in received.items() if n != 1] == [], "every valid submission is received exactly once"
    assert [r for r, d in decided.items() if len(d) != 1] == [], "every registration is decided exactly once"

    winners = Counter(plan.customer_of[r] for r, d in decided.items() if d[0]["status"] == "approved")
    assert set(winners) == set(plan.customer_of.values()) and set(winners.values()) == {1}, "one winner per customer"

    opportunities = await collect(
        p.stack.kafka_bootstrap,
        OPPORTUNITIES,
        until=lambda rs: (
            {r.data.get("registration_id") for r in rs}
            >= {r for r, d in decided.items() if d[0]["status"] == "approved"}
        ),
    )
    ours = {r.data["opportunity_id"]: r.data for r in opportunities if r.data.get("registration_id") in registrations}
    per_customer = Counter(plan.customer_of[o["registration_id"]] for o in ours.values())
    assert set(per_customer.values()) == {1} and len(per_customer) == len(winners), "one opportunity per customer"

    conn = await asyncpg.connect(p.stack.admin_dealreg_dsn)
    try:
        ids = [uuid.UUID(r) for r in registrations]
        for table in ("intake.registrations", "conflict.registrations"):
            assert await conn.fetchval(f"select count(*) from {table} where registration_id = any($1)", ids) == len(ids)
        status_events = [ce_id for r in registrations for ce_id in by_reg[r]]

        async def undelivered() -> int:
            return int(
                await conn.fetchval(
                    "select count(*) from notify.notifications where event_id = any($1) and status <> 'sent'",
                    status_events,
                )
            )

        await p.eventually_async(undelivered, 0, "every notification delivered", timeout_s=120)
        doubled = await conn.fetchval(
            "select count(*) from (select event_id, recipient, channel, address from notify.notifications "
            "where event_id = any($1) group by 1, 2, 3, 4 having count(*) > 1) d",
            status_events,
        )
        assert doubled == 0
        events_notified = await conn.fetchval(
            "select count(distinct event_id) from notify.notifications where event_id = any($1)", status_events
        )
        assert events_notified == len(status_events), "every status event reached its partner"
    finally:
        await conn.close()
    hook_ids = Counter(h.headers["webhook-id"] for h in p.hooks.hooks)
    assert all(n >= 1 for n in hook_ids.values())

    for topic in ALL_TOPICS:
        if topic.name.endswith(".dlq"):
            letters = await collect(p.stack.kafka_bootstrap, topic, until=lambda rs: True, timeout_s=10)
            ours_dead = [r for r in letters if r.headers.get("ce_correlationid") in registrations]
            assert ours_dead == [], f"nothing valid in {topic.name}"
    log.info(
        "fault_run",
        registrations=len(registrations),
        sent=len(plan.sends),
        faults=faults,
        resent_on_topic=sum(len(v) for v in by_reg.values()),
    )
    print(
        f"\nfault run: {len(plan.sends)} submissions ({len(registrations)} registrations, "
        f"{len(plan.customer_of) and len(set(plan.customer_of.values()))} customers), faults: {'; '.join(faults)}; "
        "lost 0, doubled 0"
    )
