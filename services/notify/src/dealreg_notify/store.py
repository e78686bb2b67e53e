"""All of notify's SQL, one small function per query."""

from __future__ import annotations

import json
from datetime import datetime

import asyncpg

from dealreg_notify.domain import Notification, PartnerContacts
from dealreg_shared.db import Conn, Pool


async def upsert_partner(conn: Conn, partner: PartnerContacts, *, active: bool) -> None:
    await conn.execute(
        "insert into partners (partner_id, company_name, emails, webhook_url, active) values ($1, $2, $3, $4, $5) "
        "on conflict (partner_id) do update set company_name = excluded.company_name, emails = excluded.emails, "
        "webhook_url = excluded.webhook_url, active = excluded.active, updated_at = now()",
        partner.partner_id,
        partner.company_name,
        list(partner.emails),
        partner.webhook_url,
        active,
    )


async def mark_partner_active(conn: Conn, partner_id: str, *, active: bool) -> None:
    await conn.execute("update partners set active = $2, updated_at = now() where partner_id = $1", partner_id, active)


async def get_partner(conn: Conn, partner_id: str) -> PartnerContacts | None:
    row = await conn.fetchrow(
        "select partner_id, company_name, emails, webhook_url from partners where partner_id = $1", partner_id
    )
    if row is None:
        return None
    return PartnerContacts(row["partner_id"], row["company_name"], tuple(row["emails"]), row["webhook_url"])


async def insert_notifications(conn: Conn, *, event_id: str, event_type: str, items: list[Notification]) -> None:
    await conn.executemany(
        "insert into notifications (event_id, event_type, recipient, channel, address, subject, body_text, payload) "
        "values ($1, $2, $3, $4, $5, $6, $7, $8::jsonb) on conflict do nothing",
        [
            (
                event_id,
                event_type,
                n.recipient,
                n.channel,
                n.address,
                n.subject,
                n.text,
                json.dumps(n.payload),
            )
            for n in items
        ],
    )


async def claim_due(pool: Pool, *, limit: int, lease_s: float) -> list[asyncpg.Record]:
    """Lease due notifications to this process; a crashed holder's lease runs out and another takes over."""
    rows: list[asyncpg.Record] = await pool.fetch(
        "update notifications set lease_until = now() + make_interval(secs => $2), attempts = attempts + 1 "
        "where id in (select n.id from notifications n where n.status = 'pending' and n.next_attempt_at <= now() "
        "and (n.lease_until is null or n.lease_until < now()) "
        # one address hears its notifications in the order they were recorded
        "and not exists (select 1 from notifications e where e.channel = n.channel and e.address = n.address "
        "and e.status = 'pending' and e.id < n.id) "
        "order by n.id limit $1 for update skip locked) "
        "returning id, event_id, recipient, channel, address, subject, body_text, payload::text as payload, "
        "attempts, created_at",
        limit,
        lease_s,
    )
    return rows


async def mark_sent(pool: Pool, notification_id: int, attempt: int) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "update notifications set status = 'sent', sent_at = now(), lease_until = null, last_error = null "
            "where id = $1",
            notification_id,
        )
        await conn.execute(
            "insert into delivery_attempts (notification_id, attempt, outcome) values ($1, $2, 'sent') "
            "on conflict do nothing",
            notification_id,
            attempt,
        )


async def mark_failed_attempt(
    pool: Pool, notification_id: int, attempt: int, *, error: str, retry_at: datetime | None
) -> None:
    """A retry at `retry_at`, or (None) failed for good: visible in the table for operators."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "update notifications set status = $2, next_attempt_at = coalesce($3, next_attempt_at), "
            "lease_until = null, last_error = $4 where id = $1",
            notification_id,
            "pending" if retry_at else "failed",
            retry_at,
            error[:2000],
        )
        await conn.execute(
            "insert into delivery_attempts (notification_id, attempt, outcome, error) values ($1, $2, $3, $4) "
            "on conflict do nothing",
            notification_id,
            attempt,
            "retry" if retry_at else "failed",
            error[:2000],
        )
