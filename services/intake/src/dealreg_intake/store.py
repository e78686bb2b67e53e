"""All of intake's SQL, one small function per query."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from dealreg_intake.domain import PartnerView
from dealreg_shared.db import Conn


async def get_partners(conn: Conn, partner_ids: list[str]) -> dict[str, PartnerView]:
    rows = await conn.fetch(
        "select p.partner_id, p.active, p.tier, k.key_id, k.public_key from partners p "
        "left join partner_keys k using (partner_id) where p.partner_id = any($1::text[])",
        partner_ids,
    )
    keys: dict[str, dict[str, str]] = {}
    for r in rows:
        found = keys.setdefault(r["partner_id"], {})
        if r["key_id"] is not None:
            found[r["key_id"]] = r["public_key"]
    first = {r["partner_id"]: r for r in reversed(rows)}
    return {pid: PartnerView(pid, r["active"], keys[pid], r["tier"]) for pid, r in first.items()}


async def lock_partners(conn: Conn, partner_ids: list[str]) -> None:
    """Until this transaction ends, no other replica checks or changes these partners' limits. In the list's
    order: give it sorted, so two transactions wanting the same partners cannot wait for each other."""
    await conn.execute(
        "select pg_advisory_xact_lock(hashtextextended('dealreg.intake.partner:' || p, 0)) "
        "from unnest($1::text[]) with ordinality as l(p, n) order by n",
        partner_ids,
    )


@dataclass(frozen=True)
class Admission:
    """What the limits and idempotency need to know about one submission, read under the partner's lock."""

    existing_sha256: str | None  # the content already stored under this registration id, if any
    token_taken: bool  # the partner's rate allowed this submission (none is taken for a same-content retry)
    active_registrations: int


async def admit(
    conn: Conn, *, partner_id: str, registration_id: UUID, content_sha256: str, per_second: float, burst: int
) -> Admission:
    """One round trip: the stored content under this id, a token from the partner's bucket, its active count.

    The bucket refills for the time elapsed since it was last used and gives a token only if one is whole.
    """
    row = await conn.fetchrow(
        """
        with existing as (
            select content_sha256 from registrations where registration_id = $4
        ), token as (
            insert into submission_buckets as b (partner_id, tokens, refilled_at)
            select $1, $3::float8 - 1, clock_timestamp()
            where not exists (select 1 from existing where content_sha256 = $5)
            on conflict (partner_id) do update
                set tokens = least($3::float8, b.tokens
                        + greatest(0, extract(epoch from clock_timestamp() - b.refilled_at)::float8) * $2::float8) - 1,
                    refilled_at = greatest(b.refilled_at, clock_timestamp())
                where least($3::float8, b.tokens
                        + greatest(0, extract(epoch from clock_timestamp() - b.refilled_at)::float8) * $2::float8) >= 1
            returning true as taken
        )
        select (select content_sha256 from existing) as existing,
               coalesce((select taken from token), false) as taken,
               (select count(*) from registrations where partner_id = $1 and active) as active
        """,
        partner_id,
        per_second,
        burst,
        registration_id,
        content_sha256,
    )
    assert row is not None
    return Admission(row["existing"], row["taken"], row["active"])


@dataclass(frozen=True)
class StatusChange:
    registration_id: UUID
    partner_id: str
    status: str
    active: bool
    at: datetime


async def mark_registration_statuses(conn: Conn, changes: list[StatusChange]) -> None:
    """Each registration takes its last change of the list; one intake never stored (for this partner) none."""
    last = {(c.registration_id, c.partner_id): c for c in changes}  # an update touches a row once: keep the last
    await conn.execute(
        "update registrations r set status = c.status, active = c.active, status_at = c.at "
        "from unnest($1::uuid[], $2::text[], $3::text[], $4::bool[], $5::timestamptz[]) "
        "as c(registration_id, partner_id, status, active, at) "
        "where r.registration_id = c.registration_id and r.partner_id = c.partner_id",
        [c.registration_id for c in last.values()],
        [c.partner_id for c in last.values()],
        [c.status for c in last.values()],
        [c.active for c in last.values()],
        [c.at for c in last.values()],
    )


async def partner_known(conn: Conn, partner_id: str) -> bool:
    return bool(await conn.fetchval("select true from partners where partner_id = $1", partner_id))


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
