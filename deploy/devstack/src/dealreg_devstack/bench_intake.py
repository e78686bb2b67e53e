"""`python -m dealreg_devstack.bench_intake`: intake's own throughput on valid signed submissions, measured.

Starts the stack and intake alone, approves some partners straight on the partners topic, stops intake,
publishes N valid signed submissions, starts intake again on that backlog and times it until every
registration is stored (and its two events relayed). Prints records/s and where the time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from dealreg_devstack.launcher import ServiceProcess, start_service, wait_ready
from dealreg_devstack.procs import wait_until
from dealreg_devstack.provision import Stack, provision
from dealreg_devstack.scenario import new_registration
from dealreg_devstack.stack import from_environment, local_stack_up
from dealreg_shared.contracts import EventType, PartnerApproved, PublicKey
from dealreg_shared.kafka import make_producer, publish_event
from dealreg_shared.outbox import TO_PUBLISH
from dealreg_shared.partner import signed_submission
from dealreg_shared.signing import SigningKey
from dealreg_shared.topics import PARTNERS, REGISTRATION_STATUS, REGISTRATIONS_RECEIVED, REGISTRATIONS_SUBMITTED

TIER = "bench"


@dataclass(frozen=True)
class Figures:
    count: int
    stored_s: float  # first to last registration stored (intake's processing, from the database's clock)
    relayed_s: float  # first stored to the outbox found empty of its events (all on Kafka; polled every 50 ms)
    wall_s: float  # from intake's start to the last event relayed, start-up included
    cpu_s: float  # CPU time the intake process used over wall_s
    load: tuple[float, float, float]  # the machine's load average at the end: figures depend on what else runs

    def report(self) -> str:
        per_record_ms = self.stored_s / max(self.count - 1, 1) * 1000
        return "\n".join(
            [
                f"submissions              {self.count}",
                f"stored                   {1000 / per_record_ms:8.0f} records/s  ({per_record_ms:.2f} ms each)",
                f"stored and relayed       {self.count / self.relayed_s:8.0f} records/s",
                f"wall, start-up included  {self.wall_s:8.1f} s",
                f"intake CPU               {self.cpu_s:8.1f} s  ({self.cpu_s / self.wall_s:.0%} of one core)",
                f"machine                  {os.cpu_count()} cores, load average {self.load[0]:.1f}",
            ]
        )


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def config_file(count: int) -> Path:
    """Limits that never bind: the bench measures the work, not the limits."""
    path = Path(tempfile.mkdtemp(prefix="dealreg-bench-")) / "bench.toml"
    path.write_text(
        f"[intake.tiers.{TIER}]\nsubmissions_per_minute = 1000000\nburst = {count + 1}\n"
        f"max_active_registrations = {count + 1}\n"
    )
    return path


async def approve_partners(stack: Stack, count: int) -> dict[str, SigningKey]:
    producer = make_producer(stack.kafka_bootstrap, client_id="dealreg-bench")
    await producer.start()
    partners = {f"p-bench-{uuid.uuid4().hex[:10]}": SigningKey.generate("k1") for _ in range(count)}
    try:
        for partner_id, key in partners.items():
            await publish_event(
                producer,
                PARTNERS,
                key=partner_id,
                type=EventType.PARTNER_APPROVED,
                source="dealreg/bench",
                data=PartnerApproved(
                    partner_id=partner_id,
                    application_id=uuid.uuid4(),
                    company_name="Bench Partner Ltd",
                    domain="bench.example",
                    tier=TIER,
                    region="emea",
                    contacts=[],
                    public_keys=[PublicKey(key_id="k1", public_key=key.public_key_b64url)],
                ),
            )
    finally:
        await producer.stop()
    return partners


async def publish_backlog(stack: Stack, partners: dict[str, SigningKey], count: int) -> float:
    """Sign and publish `count` registrations round-robin over the partners; returns records/s published."""
    records = []
    ids = list(partners)
    for i in range(count):
        partner_id = ids[i % len(ids)]
        name = f"bench{uuid.uuid4().hex[:12]}"
        registration = new_registration(
            partner_id, company=f"Customer {name}", domain=f"{name}.com", country="DE", contact_email=f"a@{name}.com"
        )
        records.append(signed_submission(registration, partners[partner_id]))
    producer = make_producer(stack.kafka_bootstrap, client_id="dealreg-bench")
    await producer.start()
    try:
        started = time.monotonic()
        futures = [
            await producer.send(REGISTRATIONS_SUBMITTED.name, value=value, key=key, headers=headers)
            for key, value, headers in records
        ]
        await asyncio.gather(*futures)
        return count / (time.monotonic() - started)
    finally:
        await producer.stop()


async def wait_count(stack: Stack, query: str, expected: int, *args: object, what: str, timeout_s: float) -> None:
    """Poll `query` (a count, as the admin) until it answers `expected`."""

    async def reached() -> bool:
        conn = await asyncpg.connect(stack.admin_dealreg_dsn)
        try:
            return bool(await conn.fetchval(query, *args) == expected)
        finally:
            await conn.close()

    await wait_until(reached, timeout_s=timeout_s, what=what)


async def _drained_at(conn: asyncpg.Connection[asyncpg.Record], unrelayed: str, timeout_s: float = 600) -> datetime:
    """The database's clock once `unrelayed` counts nothing (published events leave the outbox), polled every 50 ms."""
    deadline = time.monotonic() + timeout_s
    while await conn.fetchval(unrelayed):
        if time.monotonic() > deadline:
            raise TimeoutError(f"every event relayed: not after {timeout_s:.0f}s")
        await asyncio.sleep(0.05)
    moment: datetime = await conn.fetchval("select clock_timestamp()")
    return moment


# what intake emits, and who would read it next: the bench's records are no one's work once it is over
DOWNSTREAM = {REGISTRATIONS_RECEIVED: ("vetting",), REGISTRATION_STATUS: ("notify",)}


async def end_offsets(stack: Stack) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=stack.kafka_bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(t.name, i) for t in DOWNSTREAM for i in range(t.partitions)]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return ends
    finally:
        await consumer.stop()


async def skip_bench_records(stack: Stack, before: dict[TopicPartition, int]) -> None:
    """Move the downstream services' groups past what the bench produced, where they were caught up before it.

    Otherwise the next `make test` or `make demo` on this stack would first vet thousands of bench registrations.
    A group that had work of its own waiting (or is running) is left alone, with a word about it.
    """
    after = await end_offsets(stack)
    for topic, services in DOWNSTREAM.items():
        partitions = [tp for tp in before if tp.topic == topic.name]
        for service in services:
            group = f"dealreg-{service}.{topic.name}"  # ServiceRuntime's naming
            consumer = AIOKafkaConsumer(
                bootstrap_servers=stack.kafka_bootstrap, group_id=group, enable_auto_commit=False
            )
            await consumer.start()
            try:
                consumer.assign(partitions)
                committed = {tp: await consumer.committed(tp) for tp in partitions}
                if all((committed[tp] or 0) == before[tp] for tp in partitions):
                    await consumer.commit({tp: after[tp] for tp in partitions})
                else:
                    print(f"note: {group} had records waiting before the bench; the bench's are left for it too")
            except KafkaError as exc:  # a running service holds the group
                print(f"note: {group} not moved past the bench's records ({type(exc).__name__})")
            finally:
                await consumer.stop()


async def run(count: int, partner_count: int) -> Figures:
    stack = from_environment() or await local_stack_up()
    await provision(stack)
    log_dir = Path(tempfile.mkdtemp(prefix="dealreg-bench-logs-"))
    env = {"DEALREG_CONFIG_FILE": str(config_file(count)), "DEALREG_LOG_LEVEL": "WARNING"}
    intake: ServiceProcess = start_service(stack, "intake", log_dir=log_dir, extra_env=env)
    try:
        await wait_ready([intake])
        partners = await approve_partners(stack, partner_count)
        ids = list(partners)
        known = "select count(*) from intake.partners where partner_id = any($1)"
        await wait_count(stack, known, len(ids), ids, what="intake knows the partners", timeout_s=60)
    finally:
        intake.stop()
    before = await end_offsets(stack)
    rate = await publish_backlog(stack, partners, count)
    print(f"published                {rate:8.0f} records/s  (the backlog intake starts on)")

    started = time.monotonic()
    intake = start_service(stack, "intake", log_dir=log_dir, extra_env=env, replica=1)
    try:
        stored = "select count(*) from intake.registrations where partner_id = any($1)"
        await wait_count(stack, stored, count, ids, what="every submission stored", timeout_s=1800)
        # intake is the only writer of its outbox here: drained means every event of the bench is on Kafka
        conn = await asyncpg.connect(stack.admin_dealreg_dsn)
        try:
            relayed_at = await _drained_at(conn, f"select count(*) from intake.outbox where {TO_PUBLISH}")
            wall = time.monotonic() - started
            cpu = cpu_seconds(intake.proc.pid)
            span = await conn.fetchrow(
                "select extract(epoch from max(received_at) - min(received_at))::float8 as stored_s, "
                "min(received_at) as first from intake.registrations where partner_id = any($1)",
                ids,
            )
            assert span is not None
            relayed = (relayed_at - span["first"]).total_seconds()
        finally:
            await conn.close()
    finally:
        intake.stop()
    await skip_bench_records(stack, before)
    return Figures(count, span["stored_s"], relayed, wall, cpu, os.getloadavg())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench_intake", description=__doc__)
    parser.add_argument("--count", type=int, default=3000, help="valid signed submissions to process")
    parser.add_argument("--partners", type=int, default=20, help="partners they come from")
    args = parser.parse_args(argv)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    figures = asyncio.run(run(args.count, args.partners))
    print(figures.report())


if __name__ == "__main__":
    main()
