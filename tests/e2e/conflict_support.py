"""What the conflict tests need: the service's test configuration, events as vetting and managers send them,
and a tail of the status topic."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from dealreg_devstack.procs import wait_until
from dealreg_devstack.topicreader import Record
from dealreg_shared.contracts import (
    Customer,
    EventType,
    Money,
    OpportunityDetails,
    RegistrationDecided,
    RegistrationVetted,
    TerritoryGranted,
)
from dealreg_shared.contracts.registrations import CustomerContact
from dealreg_shared.domains import customer_key, registrable_domain
from dealreg_shared.envelope import new_event, utcnow
from dealreg_shared.kafka import publish_event
from dealreg_shared.topics import REGISTRATION_DECISIONS, REGISTRATIONS_VETTED, Topic

CONFIG = Path(__file__).with_name("config.toml")  # the one file of the e2e environment


def conflict_env() -> dict[str, str]:
    """Every conflict process of the e2e tests runs with this: the same policies, a clock tests move."""
    return {
        "DEALREG_CONFIG_FILE": str(CONFIG),
        "DEALREG_CONTROLLABLE_CLOCK": "true",
        "DEALREG_SWEEP_INTERVAL_S": "0.3",
    }


def vetted(
    partner_id: str,
    *,
    company: str,
    domain: str | None = None,
    country: str = "DE",
    region: str = "default",
    product_lines: tuple[str, ...] = ("analytics",),
) -> RegistrationVetted:
    """A registration as vetting forwards it to conflict."""
    now = utcnow()
    return RegistrationVetted(
        registration_id=uuid.uuid4(),
        partner_id=partner_id,
        submitted_at=now,
        received_at=now,
        customer=Customer(
            company_name=company,
            domain=domain,
            country=country,
            contact=CustomerContact(name="Jana Weber", email="jana@example.com"),
        ),
        customer_key=customer_key(domain, company, country),
        registrable_domain=registrable_domain(domain),
        region=region,
        opportunity=OpportunityDetails(
            product_lines=list(product_lines),
            estimated_value=Money(amount=Decimal("48000.00"), currency="EUR"),
            expected_close_date=date.today() + timedelta(days=90),
        ),
        partner_tier="gold",
        partner_region="emea",
    )


async def publish_vetted(producer: AIOKafkaProducer, reg: RegistrationVetted, *, partition: int | None = None) -> None:
    event, value = new_event(
        type=EventType.REGISTRATION_VETTED,
        source="dealreg/vetting",
        data=reg,
        correlation_id=str(reg.registration_id),
    )
    await producer.send_and_wait(
        REGISTRATIONS_VETTED.name,
        value=value,
        key=reg.customer_key.encode(),
        headers=event.headers(),
        partition=partition,
    )


async def publish_decision(
    producer: AIOKafkaProducer, registration_id: uuid.UUID, decision: str, *, extend_days: int | None = None
) -> uuid.UUID:
    decision_id = uuid.uuid4()
    await publish_event(
        producer,
        REGISTRATION_DECISIONS,
        key=str(registration_id),
        type=EventType.REGISTRATION_DECIDED,
        source="dealreg/managers",
        data=RegistrationDecided.model_validate(
            {
                "decision_id": decision_id,
                "registration_id": registration_id,
                "decision": decision,
                "manager_id": "maria.rossi@vendor.example",
                "reason": "tested",
                "extend_days": extend_days,
            }
        ),
        correlation_id=str(registration_id),
    )
    return decision_id


async def grant_territory(
    producer: AIOKafkaProducer,
    territory_id: str,
    partner_id: str,
    *,
    product_line: str,
    starts_at: datetime,
    ends_at: datetime,
    country: str | None = None,
    region: str | None = None,
) -> None:
    await publish_event(
        producer,
        REGISTRATION_DECISIONS,
        key=territory_id,
        type=EventType.TERRITORY_GRANTED,
        source="dealreg/managers",
        data=TerritoryGranted(
            territory_id=territory_id,
            partner_id=partner_id,
            product_line=product_line,
            country=country,
            region=region,
            starts_at=starts_at,
            ends_at=ends_at,
            manager_id="maria.rossi@vendor.example",
        ),
    )


class Tail:
    """Every record published to a topic from the moment it starts: no group, no history re-read per wait."""

    def __init__(self, bootstrap: str, topic: Topic) -> None:
        self.topic = topic
        self.consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
        self.records: list[Record] = []
        self._next: dict[int, int] = {}  # partition -> the next offset to read
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        partitions = [TopicPartition(self.topic.name, p) for p in range(self.topic.partitions)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the end offsets now: later records are ours
            self._next[tp.partition] = await self.consumer.position(tp)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=200)
            for items in batch.values():
                for r in items:
                    headers = {k: v.decode("utf-8", "replace") for k, v in (r.headers or ())}
                    self.records.append(Record(r.topic, r.key, r.value or b"", headers, r.offset, r.partition))
                    self._next[r.partition] = r.offset + 1

    async def caught_up(self, timeout_s: float = 30) -> None:
        """Until every record on the topic now has been read."""
        partitions = [TopicPartition(self.topic.name, p) for p in range(self.topic.partitions)]
        ends = await self.consumer.end_offsets(partitions)

        async def read_to_the_end() -> bool:
            return all(self._next[tp.partition] >= end for tp, end in ends.items())

        await wait_until(read_to_the_end, timeout_s=timeout_s, what=f"{self.topic.name} read to its end")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.consumer.stop()

    def of_type(self, ce_type: str, key: uuid.UUID | str | None = None) -> list[dict[str, Any]]:
        return [
            r.data
            for r in self.records
            if r.headers.get("ce_type") == ce_type and (key is None or r.key == str(key).encode())
        ]

    async def wait_for(self, what: str, condition: Callable[[], object], timeout_s: float = 45) -> None:
        async def probe() -> bool:
            return bool(condition())

        await wait_until(probe, timeout_s=timeout_s, what=what)


async def set_clock_offset(admin_dsn: str, offset: timedelta) -> None:
    """Move every conflict replica's clock (they read the offset on each unit of work)."""
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute("update conflict.clock_offset set offset_s = $1", offset.total_seconds())
    finally:
        await conn.close()
