"""Conflict's subscribers and its one wiring point, `build_app`."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

import structlog
from faststream import FastStream

from dealreg_conflict import store
from dealreg_conflict.domain import Candidate, Outcome, Policy, decide, detect_conflicts
from dealreg_conflict.settings import ConflictSettings
from dealreg_shared.consumer import Incoming
from dealreg_shared.contracts import (
    DecisionRefused,
    EventType,
    OpportunityCreated,
    ReasonCode,
    RegistrationDecided,
    RegistrationVetted,
    Status,
)
from dealreg_shared.db import Conn
from dealreg_shared.envelope import utcnow
from dealreg_shared.outbox import Outbox
from dealreg_shared.runtime import ServiceRuntime
from dealreg_shared.statuses import emit_status
from dealreg_shared.topics import (
    OPPORTUNITIES,
    REGISTRATION_DECISIONS,
    REGISTRATION_STATUS,
    REGISTRATIONS_VETTED,
)

SERVICE = "conflict"
log = structlog.get_logger(__name__)


def emit_opportunity(outbox: Outbox, data: dict[str, Any], protected_until: datetime) -> None:
    reg = RegistrationVetted.model_validate(data)
    outbox.emit(
        OPPORTUNITIES,
        key=reg.customer_key,
        type=EventType.OPPORTUNITY_CREATED,
        data=OpportunityCreated(
            opportunity_id=uuid.uuid5(uuid.NAMESPACE_URL, f"dealreg:opportunity:{reg.registration_id}"),
            registration_id=reg.registration_id,
            partner_id=reg.partner_id,
            customer={**reg.customer.model_dump(mode="json"), "customer_key": reg.customer_key},
            product_lines=reg.opportunity.product_lines,
            estimated_value=reg.opportunity.estimated_value,
            expected_close_date=reg.opportunity.expected_close_date,
            protected_until=protected_until,
        ),
        correlation_id=str(reg.registration_id),
    )


def build_app(settings: ConflictSettings) -> FastStream:
    runtime = ServiceRuntime(service=SERVICE, settings=settings, package="dealreg_conflict")
    policy = Policy(settings.protection_days, settings.resolution, settings.approval, settings.extension_cap_days)

    async def approve(
        conn: Conn,
        outbox: Outbox,
        reg_id: uuid.UUID,
        customer_key: str,
        data: dict[str, Any],
        protected_until: datetime,
    ) -> None:
        opportunity_id = uuid.uuid5(uuid.NAMESPACE_URL, f"dealreg:opportunity:{reg_id}")
        if await store.insert_opportunity(
            conn, opportunity_id=opportunity_id, registration_id=reg_id, customer_key=customer_key
        ):
            emit_opportunity(outbox, data, protected_until)

    async def on_registration_vetted(conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        reg = RegistrationVetted.model_validate(incoming.event.data)
        await store.lock_customer(conn, reg.customer_key)
        if await store.registration_exists(conn, reg.registration_id):
            return
        now = utcnow()
        new = Candidate(
            str(reg.registration_id),
            reg.partner_id,
            reg.customer_key,
            frozenset(reg.opportunity.product_lines),
        )
        conflicts = detect_conflicts(new, await store.get_active_for_customer(conn, reg.customer_key, now))
        outcome: Outcome = decide(new, conflicts, policy, now)
        data = reg.model_dump(mode="json")
        await store.insert_registration(
            conn,
            registration_id=reg.registration_id,
            partner_id=reg.partner_id,
            customer_key=reg.customer_key,
            company_name=reg.customer.company_name,
            country=reg.customer.country,
            product_lines=reg.opportunity.product_lines,
            region=reg.region,
            status=outcome.status,
            reason_code=outcome.reason_code,
            protected_until=outcome.protected_until,
            data=data,
        )
        emit_status(
            outbox,
            registration_id=reg.registration_id,
            partner_id=reg.partner_id,
            status=outcome.status,
            stage="conflict",
            reason_code=outcome.reason_code,
            partner_message=outcome.partner_message,
            manager_detail=outcome.manager_detail,
            protected_until=outcome.protected_until,
            customer_name=reg.customer.company_name,
            region=reg.region,
        )
        if outcome.creates_opportunity and outcome.protected_until is not None:
            await approve(conn, outbox, reg.registration_id, reg.customer_key, data, outcome.protected_until)
        log.info(
            "registration_decided",
            registration_id=str(reg.registration_id),
            status=outcome.status,
            reason_code=outcome.reason_code,
        )

    async def on_registration_decided(conn: Conn, incoming: Incoming, outbox: Outbox) -> None:
        decided = RegistrationDecided.model_validate(incoming.event.data)
        row = await store.get_registration(conn, decided.registration_id)
        refusal = _refusal(decided, row, policy)
        if refusal is not None or row is None:
            outbox.emit(
                REGISTRATION_STATUS,
                key=str(decided.registration_id),
                type=EventType.DECISION_REFUSED,
                data=DecisionRefused(
                    decision_id=decided.decision_id,
                    subject_id=str(decided.registration_id),
                    decision=decided.decision,
                    reason=refusal or "",
                    occurred_at=utcnow(),
                ),
                correlation_id=str(decided.registration_id),
            )
            return
        await store.lock_customer(conn, row["customer_key"])
        now = utcnow()
        common = {
            "registration_id": decided.registration_id,
            "partner_id": row["partner_id"],
            "stage": "conflict",
            "customer_name": row["company_name"],
            "region": row["region"],
        }
        detail = {"manager_id": decided.manager_id, "reason": decided.reason}
        if decided.decision == "approve":
            until = now + timedelta(days=policy.protection_days)
            await store.mark_status(conn, decided.registration_id, status=Status.APPROVED, protected_until=until)
            emit_status(
                outbox,
                status=Status.APPROVED,
                protected_until=until,
                manager_detail=detail,
                partner_message=f"Your registration is approved and protected until {until.date()}.",
                **common,
            )
            await approve(conn, outbox, decided.registration_id, row["customer_key"], json.loads(row["data"]), until)
        elif decided.decision == "reject":
            await store.mark_status(
                conn,
                decided.registration_id,
                status=Status.REJECTED,
                reason_code=ReasonCode.REJECTED_BY_MANAGER,
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
            until = row["protected_until"] + timedelta(days=decided.extend_days or 0)
            await store.mark_status(conn, decided.registration_id, status=Status.APPROVED, protected_until=until)
            emit_status(
                outbox,
                status=Status.APPROVED,
                protected_until=until,
                manager_detail=detail,
                partner_message=f"Your registration's protection was extended until {until.date()}.",
                **common,
            )

    runtime.subscribe(REGISTRATIONS_VETTED, on_registration_vetted)
    runtime.subscribe(REGISTRATION_DECISIONS, on_registration_decided)
    return runtime.app()


def _refusal(decided: RegistrationDecided, row: Any, policy: Policy) -> str | None:
    """Why a manager's decision cannot apply, or None when it can."""
    if row is None:
        return "unknown registration"
    if decided.decision in ("approve", "reject") and row["status"] != "under_review":
        return f"registration is {row['status']}, not under review"
    if decided.decision == "extend":
        if row["status"] not in ("approved", "expiring") or row["protected_until"] is None:
            return f"registration is {row['status']}, not protected"
        if not decided.extend_days or decided.extend_days > policy.extension_cap_days:
            return f"extension must be 1 to {policy.extension_cap_days} days"
    return None
