"""Notify's SQL on the consumer side and for operators: partners' contacts, recording notifications, failures."""

from __future__ import annotations

import json

import asyncpg

from dealreg_notify.domain import Notification, PartnerContacts
from dealreg_shared.db import Conn, Pool


async def upsert_partner(conn: Conn, partner: PartnerContacts, *, active: bool) -> None:
    await conn.execute(
        "insert into partners (partner_id, company_name, emails, webhook_url, active, region) "
        "values ($1, $2, $3, $4, $5, $6) "
        "on conflict (partner_id) do update set company_name = excluded.company_name, emails = excluded.emails, "
        "webhook_url = excluded.webhook_url, active = excluded.active, region = excluded.region, updated_at = now()",
        partner.partner_id,
        partner.company_name,
        list(partner.emails),
        partner.webhook_url,
        active,
        partner.region,
    )


async def mark_partner_active(conn: Conn, partner_id: str, *, active: bool) -> None:
    await conn.execute("update partners set active = $2, updated_at = now() where partner_id = $1", partner_id, active)


async def get_partner(conn: Conn, partner_id: str) -> PartnerContacts | None:
    row = await conn.fetchrow(
        "select partner_id, company_name, emails, webhook_url, region from partners where partner_id = $1",
        partner_id,
    )
    if row is None:
        return None
    return PartnerContacts(
        row["partner_id"], row["company_name"], tuple(row["emails"]), row["webhook_url"], row["region"]
    )


async def get_partner_names(conn: Conn, partner_ids: list[str]) -> dict[str, str]:
    rows = await conn.fetch(
        "select partner_id, company_name from partners where partner_id = any($1::text[])", partner_ids
    )
    return {r["partner_id"]: r["company_name"] for r in rows}


async def insert_notifications(conn: Conn, *, event_id: str, event_type: str, items: list[Notification]) -> None:
    """Recorded before anything is sent; the unique key makes a second recording of the same event a no-op."""
    await conn.executemany(
        "insert into notifications (event_id, event_type, recipient, channel, address, subject, body_text, "
        "body_html, payload, digest, status) values ($1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, $10, $11) "
        "on conflict do nothing",
        [
            (
                event_id,
                event_type,
                n.recipient,
                n.channel,
                n.address,
                n.subject,
                n.text,
                n.html,
                json.dumps(n.payload),
                n.digest,
                "held" if n.digest != "none" else "pending",
            )
            for n in items
        ],
    )


async def get_failed(pool: Pool, *, limit: int) -> list[asyncpg.Record]:
    """What gave up, newest first: for operators."""
    rows: list[asyncpg.Record] = await pool.fetch(
        "select id, event_id, event_type, recipient, channel, address, subject, attempts, last_error, created_at "
        "from notifications where status = 'failed' order by id desc limit $1",
        limit,
    )
    return rows


async def count_by_status(pool: Pool) -> dict[str, int]:
    rows = await pool.fetch("select status, count(*) as n from notifications group by status")
    return {r["status"]: r["n"] for r in rows}
