"""`python -m dealreg_devstack.bench_notify`: notifications delivered per second to local SMTP and webhook sinks.

Starts a notify process on the stack (local one by default; run it while no other notify consumes there),
approves `--partners` partners (each with one contact email and a webhook), publishes `--events` status
events spread over them as fast as Kafka takes them, and measures until the sinks hold every notification
(each event: one email and one webhook). Prints the end-to-end rate and, from notify's own table, the rates
of recording and of delivery.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaProducer
from pydantic import BaseModel

from dealreg_devstack.launcher import start_service, wait_ready
from dealreg_devstack.procs import wait_until
from dealreg_devstack.provision import provision
from dealreg_devstack.sinks import SmtpSink, WebhookSink
from dealreg_devstack.stack import from_environment, local_stack_up
from dealreg_shared.contracts import Contact, EventType, PartnerApproved, RegistrationStatusChanged, Status
from dealreg_shared.envelope import new_event, utcnow
from dealreg_shared.kafka import make_producer
from dealreg_shared.topics import PARTNERS, REGISTRATION_STATUS


async def bench(events: int, partners: int, concurrency: int) -> None:
    stack = from_environment() or await local_stack_up()
    await provision(stack)
    smtp, hooks = SmtpSink(), WebhookSink()
    await smtp.start()
    await hooks.start()
    log_dir = Path(tempfile.mkdtemp(prefix="dealreg-bench-"))
    env = {"DEALREG_SMTP_PORT": str(smtp.port), "DEALREG_DELIVERY_CONCURRENCY": str(concurrency)}
    notify = start_service(stack, "notify", log_dir=log_dir, extra_env=env)
    producer = make_producer(stack.kafka_bootstrap, client_id="dealreg-bench")
    await producer.start()
    run = uuid.uuid4().hex[:8]
    ids = [f"p-bench-{run}-{i}" for i in range(partners)]
    try:
        await wait_ready([notify])
        for i, partner_id in enumerate(ids):
            approved = PartnerApproved(
                partner_id=partner_id,
                application_id=uuid.uuid4(),
                company_name=f"Bench Partner {i}",
                domain=f"{partner_id}.example",
                tier="gold",
                region="emea",
                contacts=[Contact(name="Bench", email=f"contact@{partner_id}.example")],
                public_keys=[],
                webhook_url=hooks.url(partner_id),
            )
            await _send(producer, PARTNERS.name, partner_id, EventType.PARTNER_APPROVED, approved)

        # a notify schema that served tests may still owe other mail: count only this run's
        def ours() -> int:
            return sum(f"p-bench-{run}-" in m.rcpt_tos[0] for m in smtp.mails)

        await _until(lambda: len(hooks.hooks) >= partners and ours() >= partners, "partners welcomed")
        print(f"notify ready, {partners} partners welcomed; publishing {events} status events ...")

        started = time.monotonic()
        for n in range(events):
            registration_id = str(uuid.uuid4())
            status = RegistrationStatusChanged(
                registration_id=uuid.UUID(registration_id),
                partner_id=ids[n % partners],
                status=Status.RECEIVED,
                stage="intake",
                partner_message="The registration was received and is being checked.",
                occurred_at=utcnow(),
                customer_name=f"Customer {n}",
            )
            await _send(
                producer, REGISTRATION_STATUS.name, registration_id, EventType.REGISTRATION_STATUS_CHANGED, status
            )
        await producer.flush()
        published = time.monotonic() - started
        total = partners + events
        await _until(lambda: len(hooks.hooks) >= total and ours() >= total, "all delivered", 600)
        elapsed = time.monotonic() - started
        await _report(stack.admin_dealreg_dsn, run, events, published, elapsed)
        await _delivery_only(stack.admin_dealreg_dsn, run, ids, hooks, ours, events)
        _check_once(hooks, smtp)
    finally:
        await producer.stop()
        notify.stop()
        await smtp.stop()
        await hooks.stop()


async def _send(producer: AIOKafkaProducer, topic: str, key: str, type: str, data: BaseModel) -> None:
    event, value = new_event(type=type, source="dealreg/bench", data=data)
    await producer.send(topic, value=value, key=key.encode(), headers=event.headers())


async def _until(condition: Callable[[], object], what: str, timeout_s: float = 120) -> None:
    async def probe() -> bool:
        return bool(condition())

    await wait_until(probe, timeout_s=timeout_s, what=what)


async def _report(admin_dsn: str, run: str, events: int, published: float, elapsed: float) -> None:
    conn = await asyncpg.connect(admin_dsn)
    try:
        row = await conn.fetchrow(
            "select count(*) as n, count(*) filter (where channel = 'email') as mails, "
            "extract(epoch from max(created_at) - min(created_at)) as recording, "
            "extract(epoch from max(sent_at) - min(created_at)) as delivering "
            "from notify.notifications where recipient like $1 and event_type = 'registration.status-changed'",
            f"partner:p-bench-{run}-%",
        )
    finally:
        await conn.close()
    assert row is not None
    n = row["n"]
    print(f"events published       {events} in {published:.1f}s ({events / published:.0f}/s)")
    print(f"notifications          {n} ({row['mails']} emails, {n - row['mails']} webhooks)")
    print(f"end to end             {n / elapsed:.0f} notifications/s ({events / elapsed:.0f} events/s), {elapsed:.1f}s")
    print(f"recorded (consumer)    {events / max(float(row['recording']), 1e-3):.0f} events/s")
    print(
        f"delivered (SMTP+HTTP)  {n / max(float(row['delivering']), 1e-3):.0f} notifications/s "
        "(first recorded to last sent)"
    )


async def _delivery_only(
    admin_dsn: str, run: str, ids: list[str], hooks: WebhookSink, ours: Callable[[], int], events: int
) -> None:
    """The deliverer alone: `events` notifications per channel recorded at once, straight into notify's table."""
    before_hooks, before_mails = len(hooks.hooks), ours()
    rows = [
        (f"bench-{run}-{n}", f"partner:{ids[n % len(ids)]}", channel, address, f"Bench {n}")
        for n in range(events)
        for channel, address in (
            ("email", f"contact@{ids[n % len(ids)]}.example"),
            ("webhook", hooks.url(ids[n % len(ids)])),
        )
    ]
    conn = await asyncpg.connect(admin_dsn)
    try:
        started = time.monotonic()
        await conn.copy_records_to_table(
            "notifications",
            schema_name="notify",
            columns=["event_id", "event_type", "recipient", "channel", "address", "subject", "body_text", "payload"],
            records=[(e, "bench", r, c, a, subj, subj, "{}") for e, r, c, a, subj in rows],
        )
    finally:
        await conn.close()
    await _until(
        lambda: len(hooks.hooks) - before_hooks >= events and ours() - before_mails >= events,
        "all delivered",
        600,
    )
    elapsed = time.monotonic() - started
    print(
        f"delivery only          {2 * events / elapsed:.0f} notifications/s ({events} emails + {events} webhooks "
        f"to {len(ids)} addresses each, in {elapsed:.1f}s)"
    )


def _check_once(hooks: WebhookSink, smtp: SmtpSink) -> None:
    hook_ids = [h.headers["webhook-id"] for h in hooks.hooks]
    mail_ids = [str(m.message["Message-ID"]) for m in smtp.mails]
    duplicates = len(hook_ids) - len(set(hook_ids)) + len(mail_ids) - len(set(mail_ids))
    print(f"duplicates at the sinks {duplicates} (of {len(hook_ids)} webhooks and {len(mail_ids)} emails)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dealreg-bench-notify", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--partners", type=int, default=50, help="addresses deliver in order, so this is parallelism")
    parser.add_argument("--concurrency", type=int, default=50, help="DEALREG_DELIVERY_CONCURRENCY of notify")
    args = parser.parse_args(argv)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    asyncio.run(bench(args.events, args.partners, args.concurrency))


if __name__ == "__main__":
    main()
