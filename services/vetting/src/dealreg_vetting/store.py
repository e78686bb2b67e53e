"""All of vetting's SQL, one small function per query."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import asyncpg

from dealreg_shared.db import Conn
from dealreg_vetting.domain import PartnerStanding, Screening


async def get_partner_domains(conn: Conn) -> set[str]:
    rows = await conn.fetch("select domain from partners")
    return {r["domain"] for r in rows}


async def insert_application(
    conn: Conn, *, application_id: UUID, partner_id: str, data: dict[str, Any], screening: Screening
) -> bool:
    inserted = await conn.fetchval(
        "insert into applications (application_id, partner_id, domain, data, checks, flags, recommendation, status) "
        "values ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, 'pending') "
        "on conflict (application_id) do nothing returning true",
        application_id,
        partner_id,
        screening.domain,
        json.dumps(data),
        json.dumps([c.model_dump() for c in screening.checks]),
        screening.flags,
        screening.recommendation,
    )
    return bool(inserted)


async def get_application(conn: Conn, application_id: UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "select application_id, partner_id, domain, data, status from applications where application_id = $1 "
        "for update",
        application_id,
    )
    return row


async def mark_application_decided(conn: Conn, *, application_id: UUID, status: str, manager_id: str) -> None:
    await conn.execute(
        "update applications set status = $2, decided_at = now(), decided_by = $3 where application_id = $1",
        application_id,
        status,
        manager_id,
    )


async def insert_partner(
    conn: Conn,
    *,
    partner_id: str,
    application_id: UUID,
    domain: str,
    company_name: str,
    tier: str,
    region: str,
) -> None:
    await conn.execute(
        "insert into partners (partner_id, application_id, domain, company_name, tier, region, active) "
        "values ($1, $2, $3, $4, $5, $6, true)",
        partner_id,
        application_id,
        domain,
        company_name,
        tier,
        region,
    )


async def get_partner(conn: Conn, partner_id: str) -> PartnerStanding | None:
    row = await conn.fetchrow(
        "select partner_id, domain, tier, region, active from partners where partner_id = $1", partner_id
    )
    if row is None:
        return None
    return PartnerStanding(row["partner_id"], row["domain"], row["tier"], row["region"], row["active"])


async def insert_screened(
    conn: Conn, *, registration_id: UUID, partner_id: str, eligible: bool, reason_code: str | None
) -> bool:
    inserted = await conn.fetchval(
        "insert into screened_registrations (registration_id, partner_id, eligible, reason_code) "
        "values ($1, $2, $3, $4) on conflict (registration_id) do nothing returning true",
        registration_id,
        partner_id,
        eligible,
        reason_code,
    )
    return bool(inserted)
