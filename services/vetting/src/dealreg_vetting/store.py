"""All of vetting's SQL, one small function per query."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import asyncpg

from dealreg_shared.db import Conn
from dealreg_vetting.domain import Screening
from dealreg_vetting.eligibility import PartnerStanding


async def get_partners_by_domain(conn: Conn, domains: list[str]) -> dict[str, str]:
    """Registrable domain → partner id, for the partners of these domains (suspended ones too)."""
    rows = await conn.fetch(
        "select domain, min(partner_id) as partner_id from partners where domain = any($1::text[]) group by domain",
        [d for d in domains if d],
    )
    return {r["domain"]: r["partner_id"] for r in rows}


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


async def mark_application_decided(
    conn: Conn, *, application_id: UUID, status: str, manager_id: str, tier: str | None = None, reason: str = ""
) -> None:
    await conn.execute(
        "update applications set status = $2, decided_at = now(), decided_by = $3, tier = $4, decision_reason = $5 "
        "where application_id = $1",
        application_id,
        status,
        manager_id,
        tier,
        reason,
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
    public_keys: list[dict[str, Any]],
) -> None:
    await conn.execute(
        "insert into partners (partner_id, application_id, domain, company_name, tier, region, active, public_keys) "
        "values ($1, $2, $3, $4, $5, $6, true, $7::jsonb)",
        partner_id,
        application_id,
        domain,
        company_name,
        tier,
        region,
        json.dumps(public_keys),
    )


_PARTNER = "select partner_id, domain, tier, region, active from partners where partner_id = $1"
_PARTNER_FOR_UPDATE = _PARTNER + " for update"


async def get_partner(conn: Conn, partner_id: str, *, for_update: bool = False) -> PartnerStanding | None:
    """The partner's standing; `for_update` locks its row for a decision about it."""
    row = await conn.fetchrow(_PARTNER_FOR_UPDATE if for_update else _PARTNER, partner_id)
    if row is None:
        return None
    return PartnerStanding(row["partner_id"], row["domain"], row["tier"], row["region"], row["active"])


async def mark_partner_active(conn: Conn, *, partner_id: str, active: bool, reason: str) -> None:
    await conn.execute(
        "update partners set active = $2, status_changed_at = now(), status_reason = $3 where partner_id = $1",
        partner_id,
        active,
        reason,
    )


async def replace_partner_keys(conn: Conn, *, partner_id: str, public_keys: list[dict[str, Any]]) -> None:
    await conn.execute(
        "update partners set public_keys = $2::jsonb, keys_updated_at = now() where partner_id = $1",
        partner_id,
        json.dumps(public_keys),
    )


async def decision_seen(conn: Conn, decision_id: UUID) -> bool:
    return bool(await conn.fetchval("select true from decisions where decision_id = $1", decision_id))


async def insert_decision(
    conn: Conn, *, decision_id: UUID, subject_id: str, decision: str, outcome: str, detail: str, manager_id: str
) -> None:
    await conn.execute(
        "insert into decisions (decision_id, subject_id, decision, outcome, detail, manager_id) "
        "values ($1, $2, $3, $4, $5, $6)",
        decision_id,
        subject_id,
        decision,
        outcome,
        detail,
        manager_id,
    )


async def insert_screened(
    conn: Conn,
    *,
    registration_id: UUID,
    partner_id: str,
    eligible: bool,
    reason_code: str | None,
    flags: list[str],
    detail: str,
) -> bool:
    inserted = await conn.fetchval(
        "insert into screened_registrations (registration_id, partner_id, eligible, reason_code, flags, detail) "
        "values ($1, $2, $3, $4, $5, $6) on conflict (registration_id) do nothing returning true",
        registration_id,
        partner_id,
        eligible,
        reason_code,
        flags,
        detail,
    )
    return bool(inserted)
