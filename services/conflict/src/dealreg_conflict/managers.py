"""Managers' decisions: approve, reject or extend a registration, and grant exclusive territories."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any, Protocol

import asyncpg
import structlog

from dealreg_conflict import store
from dealreg_conflict.clock import Clock
from dealreg_conflict.domain import TAKEN, Candidate, Territory, blocking_keys, detect_conflicts, expiring_from
from dealreg_conflict.domain import refuse_decision as refusal_of
from dealreg_conflict.policies import Policies
from dealreg_shared.consumer import Incoming
from dealreg_shared.contracts import (
    DecisionRefused,
    EventType,
    ReasonCode,
    RegistrationDecided,
    RegistrationVetted,
    Status,
    TerritoryGranted,
)
from dealreg_shared.db import Conn
from dealreg_shared.envelope import utcnow
from dealreg_shared.outbox import Outbox
from dealreg_shared.regions import region_of
from dealreg_shared.statuses import emit_status
from dealreg_shared.topics import REGISTRATION_STATUS

log = structlog.get_logger(__name__)


class CreateOpportunity(Protocol):
    def __call__(
        self,
        conn: Conn,
        outbox: Outbox,
        *,
        registration_id: uuid.UUID,
        customer_key: str,
        data: dict[str, Any] | RegistrationVetted,
        until: datetime,
    ) -> Awaitable[None]: ...


def refuse(outbox: Outbox, *, decision_id: uuid.UUID, subject_id: str, decision: str, reason: str) -> None:
    """A decision that does not apply is answered, never dropped silently."""
    outbox.emit(
        REGISTRATION_STATUS,
        key=subject_id,
        type=EventType.DECISION_REFUSED,
        data=DecisionRefused(
            decision_id=decision_id, subject_id=subject_id, decision=decision, reason=reason, occurred_at=utcnow()
        ),
        correlation_id=subject_id,
    )
    log.info("decision_refused", subject_id=subject_id, decision=decision, reason=reason)


def candidate_of_row(row: asyncpg.Record) -> Candidate:
    return Candidate(
        str(row["registration_id"]),
        row["partner_id"],
        row["customer_key"],
        frozenset(row["product_lines"]),
        row["status"],
        row["registrable_domain"],
        row["name_norm"],
        row["country"],
        row["region"],
    )


class ManagerDecisions:
    def __init__(self, *, policies: Policies, clock: Clock, regions: dict[str, str]) -> None:
        self.policies = policies
        self.clock = clock
        self.regions = regions

    async def decide(self, conn: Conn, incoming: Incoming, outbox: Outbox, create: CreateOpportunity) -> None:
        decided = RegistrationDecided.model_validate(incoming.event.data)
        unlocked = await conn.fetchrow(
            "select registration_id, partner_id, customer_key, product_lines, status, registrable_domain, "
            "name_norm, country, region from registrations where registration_id = $1",
            decided.registration_id,
        )
        if unlocked is not None:
            # the same locks, in the same order, as a new registration of this customer takes
            await store.lock_blocking_keys(conn, blocking_keys(candidate_of_row(unlocked)))
        row = await store.get_registration(conn, decided.registration_id)
        now = await self.clock.now(conn)
        policy = self.policies.of(row["region"] if row else "")
        reason = refusal_of(
            decided.decision,
            status=row["status"] if row else None,
            protected_until=row["protected_until"] if row else None,
            extended_days=row["extended_days"] if row else 0,
            extend_days=decided.extend_days,
            policy=policy,
            now=now,
        )
        subject = str(decided.registration_id)
        competing: list[Candidate] = []
        if reason is None and row is not None and decided.decision == "approve":
            me = candidate_of_row(row)
            [active] = await store.get_active_candidates(conn, [me], now=now)
            conflicts = [c for c in detect_conflicts(me, active) if c.partner_id != me.partner_id]
            protected = [c for c in conflicts if c.status in ("approved", "expiring")]
            if protected:
                reason = f"another registration of this customer deal is protected: {protected[0].registration_id}"
            competing = [c for c in conflicts if c.status == "under_review"]
        if reason is not None or row is None:
            refuse(
                outbox,
                decision_id=decided.decision_id,
                subject_id=subject,
                decision=decided.decision,
                reason=reason or "",
            )
            return
        common: dict[str, Any] = {
            "registration_id": decided.registration_id,
            "partner_id": row["partner_id"],
            "stage": "conflict",
            "customer_name": row["company_name"],
            "region": row["region"],
        }
        detail = {"manager_id": decided.manager_id, "reason": decided.reason, "decision_id": str(decided.decision_id)}
        if decided.decision == "approve":
            until = now + timedelta(days=policy.protection_days)
            await store.mark_status(
                conn,
                subject,
                status=Status.APPROVED,
                protected_until=until,
                expiring_from=expiring_from(until, policy),
                decided_at=now,
            )
            emit_status(
                outbox,
                status=Status.APPROVED,
                protected_until=until,
                manager_detail=detail,
                partner_message=f"Your registration is approved and protected until {until.date()}.",
                **common,
            )
            await create(
                conn,
                outbox,
                registration_id=decided.registration_id,
                customer_key=row["customer_key"],
                data=json.loads(row["data"]),
                until=until,
            )
            for other in competing:  # approving one side resolves the conflict for the others
                await self._reject_competing(conn, outbox, other, winner=row, now=now, detail=detail)
        elif decided.decision == "reject":
            await store.mark_status(
                conn, subject, status=Status.REJECTED, reason_code=ReasonCode.REJECTED_BY_MANAGER, decided_at=now
            )
            emit_status(
                outbox,
                status=Status.REJECTED,
                reason_code=ReasonCode.REJECTED_BY_MANAGER,
                partner_message="Your registration was not accepted by the channel team.",
                manager_detail=detail,
                **common,
            )
        else:
            days = decided.extend_days or 0
            until = row["protected_until"] + timedelta(days=days)
            await store.mark_status(
                conn,
                subject,
                status=Status.APPROVED,
                protected_until=until,
                expiring_from=expiring_from(until, policy),
                extended_days=row["extended_days"] + days,
                decided_at=now,
            )
            emit_status(
                outbox,
                status=Status.APPROVED,
                protected_until=until,
                manager_detail={**detail, "extended_days": row["extended_days"] + days},
                partner_message=f"Your registration's protection was extended until {until.date()}.",
                **common,
            )

    async def _reject_competing(
        self, conn: Conn, outbox: Outbox, other: Candidate, *, winner: asyncpg.Record, now: datetime, detail: Any
    ) -> None:
        row = await store.get_registration(conn, uuid.UUID(other.registration_id))
        if row is None or row["status"] != "under_review":
            return
        await store.mark_status(
            conn,
            other.registration_id,
            status=Status.REJECTED,
            reason_code=ReasonCode.REGISTERED_BY_ANOTHER_PARTNER,
            decided_at=now,
        )
        emit_status(
            outbox,
            registration_id=other.registration_id,
            partner_id=other.partner_id,
            status=Status.REJECTED,
            stage="conflict",
            reason_code=ReasonCode.REGISTERED_BY_ANOTHER_PARTNER,
            partner_message=TAKEN,
            manager_detail={
                **detail,
                "competing_registration_id": str(winner["registration_id"]),
                "competing_partner_id": winner["partner_id"],
                "resolved_by": "manager_approved_competitor",
            },
            customer_name=row["company_name"],
            region=row["region"],
        )

    async def grant_territory(self, conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        grant = TerritoryGranted.model_validate(incoming.event.data)
        now = await self.clock.now(conn)
        region = grant.region or region_of(grant.country or "", self.regions)
        cap = self.policies.of(region).exclusivity_cap_days
        reason = None
        if (grant.region is None) == (grant.country is None):
            reason = "a territory is either a region or a country"
        elif grant.ends_at <= grant.starts_at or grant.ends_at <= now:
            reason = "the territory ends before it starts or has already ended"
        elif grant.ends_at - grant.starts_at > timedelta(days=cap):
            reason = f"exclusivity in {region} is capped at {cap} days"
        if reason is not None:
            refuse(
                outbox,
                decision_id=uuid.uuid5(uuid.NAMESPACE_URL, f"dealreg:territory:{grant.territory_id}"),
                subject_id=grant.territory_id,
                decision="grant_territory",
                reason=reason,
            )
            return
        territory = Territory(
            grant.territory_id,
            grant.partner_id,
            grant.product_line,
            grant.starts_at,
            grant.ends_at,
            grant.region,
            grant.country,
        )
        if await store.insert_territory(conn, territory, granted_by=grant.manager_id):
            log.info("territory_granted", territory_id=grant.territory_id, partner_id=grant.partner_id)
