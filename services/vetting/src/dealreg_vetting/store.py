"""All of vetting's SQL, one small function per query."""

from __future__ import annotations

import json
from dataclasses import dataclass
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


async def get_partners(conn: Conn, partner_ids: list[str]) -> dict[str, PartnerStanding]:
    rows = await conn.fetch(
        "select partner_id, domain, tier, region, active from partners where partner_id = any($1::text[])",
        partner_ids,
    )
    return {r["partner_id"]: _standing(r) for r in rows}


def _standing(row: asyncpg.Record) -> PartnerStanding:
    return PartnerStanding(row["partner_id"], row["domain"], row["tier"], row["region"], row["active"])


async def get_partner(conn: Conn, partner_id: str, *, for_update: bool = False) -> PartnerStanding | None:
    """The partner's standing; `for_update` locks its row for a decision about it."""
    row = await conn.fetchrow(_PARTNER_FOR_UPDATE if for_update else _PARTNER, partner_id)
    return None if row is None else _standing(row)


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


@dataclass(frozen=True)
class Screened:
    registration_id: UUID
    partner_id: str
    eligible: bool
    reason_code: str | None
    flags: list[str]
    detail: str


async def insert_screened(conn: Conn, screened: list[Screened]) -> list[bool]:
    """One statement for the list; for each, whether it was stored (False: its registration was screened before,
    or earlier in the list)."""
    rows = await conn.fetch(
        "insert into screened_registrations (registration_id, partner_id, eligible, reason_code, flags, detail) "
        "select registration_id, partner_id, eligible, reason_code, flags, detail "
        "from rows from (jsonb_to_recordset($1::jsonb) as (registration_id uuid, partner_id text, eligible bool, "
        "reason_code text, flags text[], detail text)) with ordinality as s order by s.ordinality "
        "on conflict (registration_id) do nothing returning registration_id",
        # the fields as they are (`asdict` copied each one deeply: 15 µs a registration against 1)
        json.dumps([{**vars(s), "registration_id": str(s.registration_id)} for s in screened]),
    )
    stored = {r["registration_id"] for r in rows}
    first = []
    for s in screened:
        first.append(s.registration_id in stored)
        stored.discard(s.registration_id)
    return first
