"""Time, inside the service: reminders before protection ends, expiry at its end, escalation of slow reviews.

Safe with any number of replicas: each sweep claims due rows with FOR UPDATE SKIP LOCKED, changes them and
writes their status events to the outbox in one transaction, so a row is swept once whoever gets it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

import asyncpg
import structlog

from dealreg_conflict import store
from dealreg_conflict.clock import Clock
from dealreg_conflict.policies import Policies
from dealreg_conflict.settings import ConflictSettings
from dealreg_shared.contracts import ReasonCode, Status
from dealreg_shared.db import Conn, Pool
from dealreg_shared.outbox import Outbox, insert_outbox
from dealreg_shared.statuses import emit_status

log = structlog.get_logger(__name__)

Step = Callable[[Conn, Outbox, datetime], Awaitable[int]]


class Sweeper:
    def __init__(
        self, *, pool: Callable[[], Pool], service: str, clock: Clock, policies: Policies, settings: ConflictSettings
    ) -> None:
        self.pool = pool  # the runtime's, which exists only once the service has started
        self.service = service
        self.clock = clock
        self.policies = policies
        self.interval_s = settings.sweep_interval_s
        self.batch = settings.sweep_batch

    async def run(self) -> None:
        while True:
            try:
                await self.sweep()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database may be away: try again next round, never die
                log.warning("sweep_failed", error=repr(exc))
            await asyncio.sleep(self.interval_s)

    async def sweep(self) -> dict[str, int]:
        """One round; returns how many registrations each step changed."""
        done: dict[str, int] = {}
        for name, step in (("expired", self._expire), ("expiring", self._remind), ("escalated", self._escalate)):
            done[name] = 0
            while True:  # batch after batch until nothing is due
                async with self.pool().acquire() as conn, conn.transaction():
                    outbox = Outbox(service=self.service)
                    count = await step(conn, outbox, await self.clock.now(conn))
                    await insert_outbox(conn, outbox.records)
                done[name] += count
                if count < self.batch:
                    break
        if any(done.values()):
            log.info("swept", **done)
        return done

    async def _expire(self, conn: Conn, outbox: Outbox, now: datetime) -> int:
        rows = await store.claim_expired(conn, now=now, limit=self.batch)
        for row in rows:
            await store.mark_status(
                conn,
                row["registration_id"],
                status=Status.EXPIRED,
                protected_until=row["protected_until"],
                decided_at=now,
            )
            _emit(
                outbox,
                row,
                Status.EXPIRED,
                "Your registration's protection has ended; the customer is open to registration again.",
                {"protected_until": row["protected_until"].isoformat()},
            )
        return len(rows)

    async def _remind(self, conn: Conn, outbox: Outbox, now: datetime) -> int:
        rows = await store.claim_expiring(conn, now=now, limit=self.batch)
        for row in rows:
            until = row["protected_until"]
            policy = self.policies.of(row["region"])
            await store.mark_status(
                conn,
                row["registration_id"],
                status=Status.EXPIRING,
                protected_until=until,
                expiring_from=row["expiring_from"],
                decided_at=now,
            )
            _emit(
                outbox,
                row,
                Status.EXPIRING,
                f"Your registration's protection ends on {until.date()}; ask your channel manager for an "
                "extension if the deal needs longer.",
                {"extension_days_left": max(0, policy.extension_cap_days - row["extended_days"])},
            )
        return len(rows)

    async def _escalate(self, conn: Conn, outbox: Outbox, now: datetime) -> int:
        rows = await store.claim_overdue_reviews(conn, now=now, limit=self.batch)
        for row in rows:
            policy = self.policies.of(row["region"])
            await store.mark_escalated(conn, row["registration_id"], at=now)
            _emit(
                outbox,
                row,
                Status.UNDER_REVIEW,
                "Your registration is still being reviewed; it has been escalated to the channel lead.",
                {
                    "escalated_to": policy.review_lead,
                    "review_sla_hours": policy.review_sla_hours,
                    "under_review_since": row["decided_at"].isoformat() if row["decided_at"] else None,
                },
                reason_code=ReasonCode.REVIEW_OVERDUE,
            )
        return len(rows)


def _emit(
    outbox: Outbox,
    row: asyncpg.Record,
    status: Status,
    partner_message: str,
    detail: dict[str, object],
    *,
    reason_code: ReasonCode | None = None,
) -> None:
    emit_status(
        outbox,
        registration_id=row["registration_id"],
        partner_id=row["partner_id"],
        status=status,
        stage="conflict",
        reason_code=reason_code,
        partner_message=partner_message,
        manager_detail={**detail, "region": row["region"]},
        protected_until=row["protected_until"],
        customer_name=row["company_name"],
        region=row["region"],
    )
