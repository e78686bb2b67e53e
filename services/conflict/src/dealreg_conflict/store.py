"""All of conflict's SQL, one small function per query."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from dealreg_conflict.domain import ACTIVE, Candidate, Territory
from dealreg_conflict.matching import name_keys
from dealreg_shared.db import Conn

# one index probe per way of being the same customer; the active statuses are written out as the partial
# indexes' predicate, verbatim, so the planner uses them. The ids are gathered first (`= any(array(...))`):
# joined instead, the prepared statement's generic plan hashed every active registration, a cost that grew
# with the table (5 ms at 5,000 active, against 0.3 ms this way). Each row's shared keys come from the keyed rows
# grouped once and joined: gathered row by row (a subquery over them per candidate), the cost grew with the
# candidates times their keys (a batch of 100 names, each registered 6 times before: 550 ms against 28 ms)
_CANDIDATES_SQL = (
    "with keyed as (select registration_id, array_agg(key) as keys from name_keys where key = any($3::text[]) "
    "group by registration_id) "
    "select registration_id, partner_id, customer_key, product_lines, status, registrable_domain, name_norm, "
    "country, region, coalesce(k.keys, '{}') as keys "
    "from registrations r left join keyed k using (registration_id) where registration_id = any(array("
    "  select registration_id from registrations"
    "   where customer_key = any($1::text[]) and status in ('under_review', 'approved', 'expiring')"
    "  union select registration_id from registrations"
    "   where registrable_domain = any($2::text[]) and status in ('under_review', 'approved', 'expiring')"
    "  union select registration_id from keyed"
    ")) and status in ('under_review', 'approved', 'expiring') and (protected_until is null or protected_until > $4) "
    "order by vetted_at"
)
assert all(f"'{s}'" in _CANDIDATES_SQL for s in ACTIVE)


async def lock_blocking_keys(conn: Conn, keys: list[str]) -> None:
    """Serialize deciding about one customer across all replicas until this transaction ends."""
    await conn.execute("select lock_blocking_keys($1::text[])", keys)


def _candidate(r: asyncpg.Record) -> Candidate:
    return Candidate(
        str(r["registration_id"]),
        r["partner_id"],
        r["customer_key"],
        frozenset(r["product_lines"]),
        r["status"],
        r["registrable_domain"],
        r["name_norm"],
        r["country"],
        r["region"],
    )


async def get_active_candidates(conn: Conn, news: list[Candidate], *, now: datetime) -> list[list[Candidate]]:
    """For each registration being decided, the active ones that may be the same customer: same customer key,
    same domain, or a shared name key in the country, each through its partial index; in the order they were
    vetted. One statement for all of them. The domain rules decide which really are."""
    keys = [sorted(name_keys(new.name, new.country)) for new in news]
    rows = await conn.fetch(
        _CANDIDATES_SQL,
        sorted({new.customer_key for new in news}),
        sorted({new.domain for new in news if new.domain}),
        sorted({k for mine in keys for k in mine}),
        now,
    )
    found = [_candidate(r) for r in rows]
    # each registration's candidates through maps of the rows by customer, domain and name key: comparing every
    # registration of a batch with every row found grew with their product (a tenth of conflict's CPU once the
    # table held two benchmark runs' registrations)
    by_customer: dict[str, list[int]] = defaultdict(list)
    by_domain: dict[str, list[int]] = defaultdict(list)
    by_key: dict[str, list[int]] = defaultdict(list)
    for i, (candidate, row) in enumerate(zip(found, rows, strict=True)):
        by_customer[candidate.customer_key].append(i)
        if candidate.domain:
            by_domain[candidate.domain].append(i)
        for key in row["keys"]:
            by_key[key].append(i)
    out = []
    for new, mine in zip(news, keys, strict=True):
        hits = set(by_customer.get(new.customer_key, ()))
        if new.domain:
            hits.update(by_domain.get(new.domain, ()))
        for key in mine:
            hits.update(by_key.get(key, ()))
        out.append([found[i] for i in sorted(hits)])  # in the rows' order: the order they were vetted
    return out


async def get_active_territories(conn: Conn, *, product_lines: list[str], now: datetime) -> list[Territory]:
    rows = await conn.fetch(
        "select * from territories where product_line = any($1::text[]) and ends_at > $2 and starts_at <= $2",
        product_lines,
        now,
    )
    return [
        Territory(
            r["territory_id"],
            r["partner_id"],
            r["product_line"],
            r["starts_at"],
            r["ends_at"],
            r["region"],
            r["country"],
        )
        for r in rows
    ]


_EXISTING_SQL = "select registration_id from registrations where registration_id = any($1::uuid[])"


async def existing_registrations(conn: Conn, registration_ids: list[UUID]) -> set[UUID]:
    """Which of these registrations are here already (decided before)."""
    rows = await conn.fetch(_EXISTING_SQL, registration_ids)
    return {r["registration_id"] for r in rows}


@dataclass(frozen=True)
class Decided:
    """A decided registration as stored, with its opportunity's id when it opens one."""

    registration_id: UUID
    partner_id: str
    customer_key: str
    registrable_domain: str | None
    company_name: str
    name_norm: str
    country: str
    product_lines: list[str]
    region: str
    status: str
    reason_code: str | None
    protected_until: datetime | None
    expiring_from: datetime | None
    review_due_at: datetime | None
    decided_at: datetime
    decided_by: str
    data: dict[str, Any]
    opportunity_id: UUID | None = None


_DECIDED_COLUMNS = [f.name for f in fields(Decided) if f.name != "opportunity_id"]


# The decided registrations, the name keys of the active ones and the opportunities, in one statement. The keys go
# in without a conflict check: they are written only here, beside their registration's own insert (which fails on a
# registration stored before, and registrations are never deleted), and a registration's keys are a set. `on
# conflict do nothing` made each key's insert look it up first, then insert it: two descents of the keys' index
# instead of one, for each of a registration's 16 or so keys (the database's costliest statement at full speed).
_DECIDE_SQL = (
    "with reg as (insert into registrations (registration_id, partner_id, customer_key, registrable_domain, "
    "company_name, name_norm, country, product_lines, region, status, reason_code, protected_until, "
    "expiring_from, review_due_at, decided_at, decided_by, data) "
    "select registration_id, partner_id, customer_key, registrable_domain, company_name, name_norm, country, "
    "product_lines, region, status, reason_code, protected_until, expiring_from, review_due_at, decided_at, "
    "decided_by, data from rows from (jsonb_to_recordset($1::jsonb) as (registration_id uuid, partner_id text, "
    "customer_key text, registrable_domain text, company_name text, name_norm text, country text, "
    "product_lines text[], region text, status text, reason_code text, protected_until timestamptz, "
    "expiring_from timestamptz, review_due_at timestamptz, decided_at timestamptz, decided_by text, "
    "data jsonb)) with ordinality as r order by r.ordinality returning registration_id), "
    "keys as (insert into name_keys (key, registration_id) select k.key, k.registration_id "
    "from unnest($2::text[], $3::uuid[]) as k(key, registration_id) join reg using (registration_id)) "
    "insert into opportunities (opportunity_id, registration_id, customer_key) "
    "select o.opportunity_id, o.registration_id, o.customer_key "
    "from unnest($4::uuid[], $5::uuid[], $6::text[]) as o(opportunity_id, registration_id, customer_key) "
    "join reg using (registration_id) on conflict (registration_id) do nothing returning registration_id"
)


def decide_args(decided: list[Decided]) -> tuple[Any, ...]:
    """`_DECIDE_SQL`'s arguments for these decided registrations."""
    keyed = [
        (k, d.registration_id) for d in decided if d.status in ACTIVE for k in sorted(name_keys(d.name_norm, d.country))
    ]
    return (
        # a shallow copy: `asdict` would deep-copy each registration's data (an eighth of conflict's time)
        json.dumps([{f: getattr(d, f) for f in _DECIDED_COLUMNS} for d in decided], default=str),
        [k for k, _ in keyed],
        [registration_id for _, registration_id in keyed],
        [d.opportunity_id for d in decided if d.opportunity_id],
        [d.registration_id for d in decided if d.opportunity_id],
        [d.customer_key for d in decided if d.opportunity_id],
    )


async def insert_registrations(conn: Conn, decided: list[Decided]) -> set[UUID]:
    """The decided registrations, the name keys of the active ones and the opportunities, in one statement.
    Returns the registrations whose opportunity was opened now (a registration never gets two)."""
    rows = await conn.fetch(_DECIDE_SQL, *decide_args(decided))
    return {r["registration_id"] for r in rows}


async def insert_registration(conn: Conn, **decided: Any) -> bool:
    """One decided registration (see `insert_registrations`); True when its opportunity was opened now."""
    return bool(await insert_registrations(conn, [Decided(**decided)]))


async def get_registration(conn: Conn, registration_id: UUID) -> asyncpg.Record | None:
    """The registration, row-locked until the transaction ends (a sweep or another decision waits)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "select * from registrations where registration_id = $1 for update", registration_id
    )
    return row


async def mark_status(
    conn: Conn,
    registration_id: UUID | str,
    *,
    status: str,
    decided_at: datetime,
    reason_code: str | None = None,
    protected_until: datetime | None = None,
    expiring_from: datetime | None = None,
    extended_days: int | None = None,
) -> None:
    registration_id = UUID(str(registration_id))
    named = await conn.fetchrow(
        "update registrations set status = $2, reason_code = $3, protected_until = $4, expiring_from = $5, "
        "decided_at = $6, extended_days = coalesce($7, extended_days) where registration_id = $1 "
        "returning name_norm, country",
        registration_id,
        status,
        reason_code,
        protected_until,
        expiring_from,
        decided_at,
        extended_days,
    )
    if named is not None and status not in ACTIVE:  # a rejected or expired registration is nobody's match any more
        await delete_name_keys(conn, registration_id, name_norm=named["name_norm"], country=named["country"])


async def delete_name_keys(conn: Conn, registration_id: UUID, *, name_norm: str, country: str) -> None:
    """A registration's name keys, found through the keys' own index: they are the keys of its stored name and
    country (`insert_registrations` wrote exactly those; a change to `matching.name_keys` re-keys the stored
    registrations in a migration, as the lookups need anyway). An index by registration would cost every decision a
    second index entry for each of its 16 or so keys, for the few that later leave the active statuses."""
    await conn.execute(
        "delete from name_keys where key = any($2::text[]) and registration_id = $1",
        registration_id,
        sorted(name_keys(name_norm, country)),
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


async def insert_territory(conn: Conn, territory: Territory, *, granted_by: str) -> bool:
    """False when this territory id was granted before (a replayed grant changes nothing)."""
    inserted = await conn.fetchval(
        "insert into territories (territory_id, partner_id, region, country, product_line, starts_at, ends_at, "
        "granted_by) values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict (territory_id) do nothing returning true",
        territory.territory_id,
        territory.partner_id,
        territory.region,
        territory.country,
        territory.product_line,
        territory.starts_at,
        territory.ends_at,
        granted_by,
    )
    return bool(inserted)


# the sweeper: each claims a batch of due rows, skipping those another replica (or a decision) holds


async def claim_expired(conn: Conn, *, now: datetime, limit: int) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "select * from registrations where status in ('approved', 'expiring') and protected_until <= $1 "
            "order by protected_until limit $2 for update skip locked",
            now,
            limit,
        )
    )


async def claim_expiring(conn: Conn, *, now: datetime, limit: int) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "select * from registrations where status = 'approved' and expiring_from <= $1 "
            "and protected_until > $1 order by expiring_from limit $2 for update skip locked",
            now,
            limit,
        )
    )


async def claim_overdue_reviews(conn: Conn, *, now: datetime, limit: int) -> list[asyncpg.Record]:
    return list(
        await conn.fetch(
            "select * from registrations where status = 'under_review' and escalated_at is null "
            "and review_due_at <= $1 order by review_due_at limit $2 for update skip locked",
            now,
            limit,
        )
    )


async def mark_escalated(conn: Conn, registration_id: UUID, *, at: datetime) -> None:
    await conn.execute("update registrations set escalated_at = $2 where registration_id = $1", registration_id, at)
