"""Reading what the conflict replicas answered: statuses, refusals, opportunities and their rows."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from dealreg_devstack.procs import wait_until
from dealreg_shared.contracts import EventType, RegistrationVetted
from tests.e2e.conftest import Conflict


def conflict_statuses(c: Conflict, registration_id: uuid.UUID | str) -> list[dict[str, Any]]:
    return [
        s
        for s in c.statuses.of_type(EventType.REGISTRATION_STATUS_CHANGED, registration_id)
        if s["stage"] == "conflict"
    ]


async def decided(c: Conflict, reg: RegistrationVetted, count: int = 1) -> dict[str, Any]:
    """The `count`-th conflict status of the registration, once it is there."""
    await c.statuses.wait_for(
        f"{count} conflict status(es) of {reg.registration_id}",
        lambda: len(conflict_statuses(c, reg.registration_id)) >= count,
    )
    return conflict_statuses(c, reg.registration_id)[count - 1]


async def refused(c: Conflict, decision_id: uuid.UUID) -> dict[str, Any]:
    def found() -> list[dict[str, Any]]:
        return [r for r in c.statuses.of_type(EventType.DECISION_REFUSED) if r["decision_id"] == str(decision_id)]

    await c.statuses.wait_for(f"decision {decision_id} refused", found)
    return found()[0]


def opportunities_of(c: Conflict, registration_id: uuid.UUID | str) -> list[dict[str, Any]]:
    return [
        o
        for o in c.opportunities.of_type(EventType.OPPORTUNITY_CREATED)
        if o["registration_id"] == str(registration_id)
    ]


async def row_of(c: Conflict, registration_id: uuid.UUID) -> asyncpg.Record:
    conn = await asyncpg.connect(c.stack.admin_dealreg_dsn)
    try:
        row = await conn.fetchrow("select * from conflict.registrations where registration_id = $1", registration_id)
        assert row is not None
        return row
    finally:
        await conn.close()


def partner_view(status: dict[str, Any]) -> str:
    """Everything of a status that reaches the partner (manager_detail never does)."""
    return " ".join(str(v) for k, v in status.items() if k != "manager_detail")


async def territory_stored(c: Conflict, partner_id: str) -> None:
    """Grants travel on another topic than registrations: wait until conflict holds the territory."""

    async def stored() -> bool:
        conn = await asyncpg.connect(c.stack.admin_dealreg_dsn)
        try:
            return bool(await conn.fetchval("select true from conflict.territories where partner_id = $1", partner_id))
        finally:
            await conn.close()

    await wait_until(stored, timeout_s=45, what=f"territory of {partner_id} stored")
