"""All of intake's SQL, one small function per query."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from dealreg_intake.domain import PartnerView
from dealreg_shared.contracts import RegistrationReceived
from dealreg_shared.db import Conn


async def get_partners(conn: Conn, partner_ids: list[str]) -> dict[str, PartnerView]:
    rows = await conn.fetch(
        "select p.partner_id, p.active, p.tier, k.key_id, k.public_key from partners p "
        "left join partner_keys k using (partner_id) where p.partner_id = any($1::text[])",
        partner_ids,
    )
    partners: dict[str, PartnerView] = {}
    for r in rows:  # a row per key (one without keys when it has none)
        view = partners.setdefault(r["partner_id"], PartnerView(r["partner_id"], r["active"], {}, r["tier"]))
        if r["key_id"] is not None:
            view.keys[r["key_id"]] = r["public_key"]
    return partners


async def lock_partners(conn: Conn, partner_ids: list[str]) -> None:
    """Until this transaction ends, no other replica checks or changes these partners' limits. In the list's
    order: give it sorted, so two transactions wanting the same partners cannot wait for each other."""
    await conn.execute(
        "select pg_advisory_xact_lock(hashtextextended('dealreg.intake.partner:' || p, 0)) "
        "from unnest($1::text[]) with ordinality as l(p, n) order by n",
        partner_ids,
    )


@dataclass
class Bucket:
    tokens: float  # submissions the partner may still send right now
    refilled_at: datetime


@dataclass
class AdmissionState:
    """What the limits and idempotency need to know about a run's submissions, read under their partners' locks
    (and kept up to date as the run's submissions are admitted, for `write_admissions` to store)."""

    now: datetime  # the database's clock: the buckets refill by it
    buckets: dict[str, Bucket]
    active: dict[str, int]  # each partner's active registrations
    existing: dict[UUID, str]  # the content stored under each registration id
    changed: set[str] = field(default_factory=set)  # partners whose bucket is to be written

    def take_token(self, partner_id: str, *, per_second: float, burst: int) -> bool:
        """A token from the partner's bucket, refilled for the time since it was last used, if one is whole."""
        bucket = self.buckets.get(partner_id)
        if bucket is None:
            self.buckets[partner_id] = Bucket(burst - 1, self.now)
        else:
            elapsed = max(0.0, (self.now - bucket.refilled_at).total_seconds())
            tokens = min(float(burst), bucket.tokens + elapsed * per_second)
            if tokens < 1:
                return False
            self.buckets[partner_id] = Bucket(tokens - 1, max(bucket.refilled_at, self.now))
        self.changed.add(partner_id)
        return True


async def admission_state(conn: Conn, *, partner_ids: list[str], registration_ids: list[UUID]) -> AdmissionState:
    """The partners' buckets and active counts and the registrations already stored under these ids: one
    round trip."""
    rows = await conn.fetch(
        "select 'now' as kind, null as id, null::float8 as tokens, clock_timestamp() as at, null::bigint as n, "
        "null as sha union all "
        "select 'bucket', partner_id, tokens, refilled_at, null, null from submission_buckets "
        "where partner_id = any($1::text[]) union all "
        "select 'active', partner_id, null, null, n, null from partner_active_registrations "
        "where partner_id = any($1::text[]) union all "
        "select 'existing', registration_id::text, null, null, null, content_sha256 from registrations "
        "where registration_id = any($2::uuid[])",
        partner_ids,
        registration_ids,
    )
    [now] = [r["at"] for r in rows if r["kind"] == "now"]
    return AdmissionState(
        now=now,
        buckets={r["id"]: Bucket(r["tokens"], r["at"]) for r in rows if r["kind"] == "bucket"},
        active={r["id"]: r["n"] for r in rows if r["kind"] == "active"},
        existing={UUID(r["id"]): r["sha"] for r in rows if r["kind"] == "existing"},
    )


@dataclass(frozen=True)
class NewRegistration:
    received: RegistrationReceived
    content_sha256: str


@dataclass(frozen=True)
class RejectionRow:
    """Every answer that was a rejection, for support and audit."""

    event_id: str
    registration_id: str | None
    partner_id: str | None
    reason_code: str
    detail: dict[str, Any]


async def write_admissions(
    conn: Conn,
    state: AdmissionState | None,
    *,
    registrations: list[NewRegistration],
    rejections: list[RejectionRow],
) -> set[UUID]:
    """The run's changed buckets, its new registrations and its rejections (in order), in one statement.
    Returns the ids another partner's submission took meanwhile (those were not stored)."""
    buckets = sorted(state.changed) if state else []
    rows = await conn.fetch(
        "with buckets as (insert into submission_buckets as b (partner_id, tokens, refilled_at) "
        "select * from unnest($1::text[], $2::float8[], $3::timestamptz[]) "
        "on conflict (partner_id) do update set tokens = excluded.tokens, refilled_at = excluded.refilled_at), "
        "rejected as (insert into rejections (event_id, registration_id, partner_id, reason_code, detail) "
        "select e, r, p, c, d from unnest($4::text[], $5::uuid[], $6::text[], $7::text[], $8::jsonb[]) "
        "with ordinality as x(e, r, p, c, d, n) order by n) "
        "insert into registrations (registration_id, partner_id, content_sha256, customer_key, region, "
        "received_at, data) select * from unnest($9::uuid[], $10::text[], $11::text[], $12::text[], $13::text[], "
        "$14::timestamptz[], $15::jsonb[]) "
        "on conflict (registration_id) do nothing returning registration_id",
        buckets,
        [state.buckets[p].tokens for p in buckets] if state else [],
        [state.buckets[p].refilled_at for p in buckets] if state else [],
        [r.event_id for r in rejections],
        [UUID(r.registration_id) if r.registration_id else None for r in rejections],
        [r.partner_id for r in rejections],
        [r.reason_code for r in rejections],
        [json.dumps(r.detail, default=str) for r in rejections],
        [n.received.registration_id for n in registrations],
        [n.received.partner_id for n in registrations],
        [n.content_sha256 for n in registrations],
        [n.received.customer_key for n in registrations],
        [n.received.region for n in registrations],
        [n.received.received_at for n in registrations],
        [json.dumps(n.received.model_dump(mode="json")) for n in registrations],
    )
    stored = {r["registration_id"] for r in rows}
    return {n.received.registration_id for n in registrations} - stored


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
