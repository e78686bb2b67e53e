"""Notify's SQL on the consumer side and for operators: partners' contacts, recording notifications, failures."""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

from dealreg_notify import store_actions
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


_PARTNERS_OF = (
    "select partner_id, company_name, emails, webhook_url, region from partners where partner_id = any({}::text[])"
)
_PARTNERS_SQL = _PARTNERS_OF.format("$1")
# the registrations' states and their partners' contacts in one round trip: a status event's transaction was a
# statement longer with the two apart (at low rates, a batch holds an event or two: 6 statements an event, now 5).
# The insert runs whatever the select reads (a data-modifying WITH always runs to its end)
_STATES_AND_PARTNERS_SQL = f"with states as ({store_actions.SET_STATES_SQL}) {_PARTNERS_OF.format('$4')}"


def _contacts(rows: list[asyncpg.Record]) -> dict[str, PartnerContacts]:
    return {
        r["partner_id"]: PartnerContacts(
            r["partner_id"], r["company_name"], tuple(r["emails"]), r["webhook_url"], r["region"]
        )
        for r in rows
    }


async def get_partners(conn: Conn, partner_ids: list[str]) -> dict[str, PartnerContacts]:
    return _contacts(await conn.fetch(_PARTNERS_SQL, partner_ids))


async def set_states_get_partners(
    conn: Conn, *, kind: str, states: list[tuple[str, str]], partner_ids: list[str]
) -> dict[str, PartnerContacts]:
    """`store_actions.set_states` and `get_partners` in one statement."""
    if not states:
        return await get_partners(conn, partner_ids) if partner_ids else {}
    rows = await conn.fetch(_STATES_AND_PARTNERS_SQL, *store_actions.states_args(kind, states), partner_ids)
    return _contacts(rows)


@dataclass(frozen=True)
class Recorded:
    """The notifications one event makes."""

    event_id: str
    event_type: str
    items: list[Notification]


async def insert_notifications(conn: Conn, recorded: list[Recorded]) -> None:
    """Recorded before anything is sent, in the list's order (their ids are the delivery order), in one statement;
    the unique key makes a second recording of the same event a no-op."""
    rows = [(r.event_id, r.event_type, n) for r in recorded for n in r.items]
    if not rows:
        return
    await conn.execute(
        "insert into notifications (event_id, event_type, recipient, channel, address, subject, body_text, "
        "body_html, payload, digest, status) "
        "select event_id, event_type, recipient, channel, address, subject, body_text, body_html, payload, digest, "
        "status from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], "
        "$8::text[], $9::jsonb[], $10::text[], $11::text[]) with ordinality as n(event_id, event_type, recipient, "
        "channel, address, subject, body_text, body_html, payload, digest, status, i) order by i "
        "on conflict do nothing",
        [event_id for event_id, _, _ in rows],
        [event_type for _, event_type, _ in rows],
        [n.recipient for _, _, n in rows],
        [n.channel for _, _, n in rows],
        [n.address for _, _, n in rows],
        [n.subject for _, _, n in rows],
        [n.text for _, _, n in rows],
        [n.html for _, _, n in rows],
        [json.dumps(n.payload) for _, _, n in rows],
        [n.digest for _, _, n in rows],
        ["held" if n.digest != "none" else "pending" for _, _, n in rows],
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
