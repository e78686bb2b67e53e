"""Emitting a registration's status: one event per status it passes through, keyed by registration id."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from dealreg_shared.contracts import EventType, ReasonCode, RegistrationStatusChanged, Status
from dealreg_shared.envelope import utcnow
from dealreg_shared.outbox import Outbox
from dealreg_shared.topics import REGISTRATION_STATUS


def emit_status(
    outbox: Outbox,
    *,
    registration_id: UUID | str,
    partner_id: str,
    status: Status,
    stage: Literal["intake", "vetting", "conflict"],
    partner_message: str,
    reason_code: ReasonCode | None = None,
    manager_detail: dict[str, Any] | None = None,
    protected_until: datetime | None = None,
    customer_name: str | None = None,
    region: str | None = None,
) -> None:
    outbox.emit(
        REGISTRATION_STATUS,
        key=str(registration_id),
        type=EventType.REGISTRATION_STATUS_CHANGED,
        data=RegistrationStatusChanged(
            registration_id=UUID(str(registration_id)),
            partner_id=partner_id,
            status=status,
            reason_code=reason_code,
            stage=stage,
            partner_message=partner_message,
            manager_detail=manager_detail or {},
            protected_until=protected_until,
            occurred_at=utcnow(),
            customer_name=customer_name,
            region=region,
        ),
        correlation_id=str(registration_id),
    )
