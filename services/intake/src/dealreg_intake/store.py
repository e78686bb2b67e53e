"""All of intake's SQL, one small function per query."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

from dealreg_intake.domain import PartnerView
from dealreg_shared.db import Conn


async def get_partner(conn: Conn, partner_id: str) -> PartnerView | None:
    row = await conn.fetchrow("select partner_id, active from partners where partner_id = $1", partner_id)
    if row is None:
        return None
    keys = await conn.fetch("select key_id, public_key from partner_keys where partner_id = $1", partner_id)
    return PartnerView(row["partner_id"], row["active"], {k["key_id"]: k["public_key"] for k in keys})


async def upsert_partner(conn: Conn, *, partner_id: str, active: bool, tier: str, region: str) -> None:
    await conn.execute(
        "insert into partners (partner_id, active, tier, region) values ($1, $2, $3, $4) "
        "on conflict (partner_id) do update set active = excluded.active, tier = excluded.tier, "
        "region = excluded.region, updated_at = now()",
        partner_id,
        active,
        tier,
        region,
    )


async def mark_partner_active(conn: Conn, *, partner_id: str, active: bool) -> bool:
    result: str = await conn.execute(
        "update partners set active = $2, updated_at = now() where partner_id = $1", partner_id, active
    )
    return result.endswith(" 1")


async def replace_partner_keys(conn: Conn, *, partner_id: str, keys: dict[str, str]) -> None:
    await conn.execute("delete from partner_keys where partner_id = $1", partner_id)
    await conn.executemany(
        "insert into partner_keys (partner_id, key_id, public_key) values ($1, $2, $3)",
        [(partner_id, key_id, public_key) for key_id, public_key in keys.items()],
    )


async def get_content_hash(conn: Conn, registration_id: UUID) -> str | None:
    value: str | None = await conn.fetchval(
        "select content_sha256 from registrations where registration_id = $1", registration_id
    )
    return value


async def insert_registration(
    conn: Conn,
    *,
    registration_id: UUID,
    partner_id: str,
    content_sha256: str,
    customer_key: str,
    region: str,
    received_at: Any,
    data: dict[str, Any],
) -> bool:
    """False when the id is already taken (a concurrent twin got there first)."""
    inserted = await conn.fetchval(
        "insert into registrations (registration_id, partner_id, content_sha256, customer_key, region, "
        "received_at, data) values ($1, $2, $3, $4, $5, $6, $7::jsonb) "
        "on conflict (registration_id) do nothing returning true",
        registration_id,
        partner_id,
        content_sha256,
        customer_key,
        region,
        received_at,
        json.dumps(data),
    )
    return bool(inserted)


async def insert_rejection(
    conn: Conn,
    *,
    event_id: str,
    registration_id: str | None,
    partner_id: str | None,
    reason_code: str,
    detail: dict[str, Any],
) -> None:
    await conn.execute(
        "insert into rejections (event_id, registration_id, partner_id, reason_code, detail) "
        "values ($1, $2, $3, $4, $5::jsonb)",
        event_id,
        UUID(registration_id) if registration_id else None,
        partner_id,
        reason_code,
        json.dumps(detail, default=str),
    )
