"""All of conflict's SQL, one small function per query."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from dealreg_conflict.domain import Candidate
from dealreg_shared.db import Conn


async def lock_customer(conn: Conn, customer_key: str) -> None:
    """Serialize deciding about one customer across all replicas until this transaction ends."""
    await conn.execute("select pg_advisory_xact_lock(hashtext('conflict.customer:' || $1))", customer_key)


async def get_active_for_customer(conn: Conn, customer_key: str, now: datetime) -> list[Candidate]:
    rows = await conn.fetch(
        "select registration_id, partner_id, customer_key, product_lines, status from registrations "
        "where customer_key = $1 and status in ('under_review', 'approved', 'expiring') "
        "and (protected_until is null or protected_until > $2) order by vetted_at",
        customer_key,
        now,
    )
    return [
        Candidate(
            str(r["registration_id"]),
            r["partner_id"],
            r["customer_key"],
            frozenset(r["product_lines"]),
            r["status"],
        )
        for r in rows
    ]


async def registration_exists(conn: Conn, registration_id: UUID) -> bool:
    return bool(await conn.fetchval("select true from registrations where registration_id = $1", registration_id))


async def insert_registration(
    conn: Conn,
    *,
    registration_id: UUID,
    partner_id: str,
    customer_key: str,
    company_name: str,
    country: str,
    product_lines: list[str],
    region: str,
    status: str,
    reason_code: str | None,
    protected_until: datetime | None,
    data: dict[str, Any],
) -> None:
    await conn.execute(
        "insert into registrations (registration_id, partner_id, customer_key, company_name, country, product_lines, "
        "region, status, reason_code, protected_until, data) values ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11::jsonb)",
        registration_id,
        partner_id,
        customer_key,
        company_name,
        country,
        product_lines,
        region,
        status,
        reason_code,
        protected_until,
        json.dumps(data),
    )


async def get_registration(conn: Conn, registration_id: UUID) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "select * from registrations where registration_id = $1 for update", registration_id
    )
    return row


async def mark_status(
    conn: Conn,
    registration_id: UUID | str,
    *,
    status: str,
    reason_code: str | None = None,
    protected_until: datetime | None = None,
) -> None:
    await conn.execute(
        "update registrations set status = $2, reason_code = $3, protected_until = $4 where registration_id = $1",
        UUID(str(registration_id)),
        status,
        reason_code,
        protected_until,
    )


async def insert_opportunity(conn: Conn, *, opportunity_id: UUID, registration_id: UUID, customer_key: str) -> bool:
    """False when this registration already has its opportunity (never two)."""
    inserted = await conn.fetchval(
        "insert into opportunities (opportunity_id, registration_id, customer_key) values ($1, $2, $3) "
        "on conflict (registration_id) do nothing returning true",
        opportunity_id,
        registration_id,
        customer_key,
    )
    return bool(inserted)
