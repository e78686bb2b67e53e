"""Notify's SQL on the delivery side: leasing due notifications, recording attempts, folding held ones into digests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

from dealreg_shared.db import Conn, Pool

_CLAIM_SQL = (
    # the addresses with something pending, one index descent each (a loose index scan): the cost follows
    # how many addresses wait, not how many notifications do
    "with recursive addresses as ("
    "(select channel, address from notifications where status = 'pending' order by channel, address limit 1) "
    "union all select nxt.channel, nxt.address from addresses a cross join lateral (select channel, address "
    "from notifications where status = 'pending' and (channel, address) > (a.channel, a.address) "
    "order by channel, address limit 1) nxt), "
    # each one's head, read without a lock: a head that is leased belongs to a run in flight, whose sent marks
    # are being recorded by other transactions (a batch of them, across addresses). Locked as it was read, the
    # claim waited for those, and they for the heads the claim held: deadlocks, each a second lost to Postgres's
    # detector, one every two seconds or so with a backlog
    "heads as (select h.id from addresses a cross join lateral (select id, next_attempt_at, lease_until "
    "from notifications where status = 'pending' and channel = a.channel and address = a.address "
    "order by id limit 1) h where h.next_attempt_at <= now() and (h.lease_until is null or h.lease_until < now()) "
    "order by h.id limit $1), "
    # only the free ones are locked, and seen again once locked: a replica claiming at the same time waits, then
    # finds the head leased or sent and leaves the address alone, and never leases the rest of its run beside it.
    # By their ids alone, as below (`status || ''` keeps the planner off the partial indexes)
    "free as (select id, channel, address from notifications where id = any(array(select id from heads)) "
    "and status || '' = 'pending' and next_attempt_at <= now() and (lease_until is null or lease_until < now()) "
    "for update), "
    # each one's run, locked too: a row another replica finished meanwhile is seen in its new state, and skipped
    "runs as (select r.id from free h cross join lateral (select o.id from notifications o "
    "where o.status = 'pending' and o.channel = h.channel and o.address = h.address "
    "order by o.id limit $3 for update) r) "
    "update notifications n set lease_until = now() + make_interval(secs => $2), "
    "lease_token = gen_random_uuid(), attempts = n.attempts + 1 "
    # the rows by their ids alone, so through the primary key: asked again for pending ones, the planner would
    # weigh the partial indexes by statistics that may have been taken with nothing pending ("one row"), and
    # read the whole backlog to find a run
    "where n.id = any(array(select id from runs)) and (n.lease_until is null or n.lease_until < now()) "
    "returning n.id, n.event_id, n.recipient, n.channel, n.address, n.subject, n.body_text, n.body_html, "
    "n.payload::text as payload, n.attempts, n.lease_token, n.created_at"
)


async def claim_due(pool: Pool, *, limit: int, lease_s: float, run: int = 1) -> list[asyncpg.Record]:
    """Lease due notifications to this process; a crashed holder's lease runs out and another takes over.

    Up to `limit` addresses whose oldest pending notification is due and free, and for each its `run` oldest
    pending ones, returned in id order: an address hears its notifications in the order they were recorded,
    whatever the number of replicas, and its leased run keeps the rest waiting.
    """
    rows: list[asyncpg.Record] = await pool.fetch(
        _CLAIM_SQL,
        limit,
        lease_s,
        run,
    )
    return sorted(rows, key=lambda r: r["id"])


_NEXT_RUN_SQL = (
    "with head as (select id from notifications where status = 'pending' and channel = $1 and address = $2 "
    "order by id limit 1 for update) "
    "update notifications n set lease_until = now() + make_interval(secs => $3), "
    "lease_token = gen_random_uuid(), attempts = n.attempts + 1 "
    # locked as they are read (as a claim's runs are), then updated by their ids alone
    "where n.id = any(array(select id from notifications where status = 'pending' and channel = $1 "
    "and address = $2 order by id limit $4 for update)) "
    "and exists (select 1 from notifications h join head using (id) where h.next_attempt_at <= now() "
    "and (h.lease_until is null or h.lease_until < now())) "
    "and (n.lease_until is null or n.lease_until < now()) "
    "returning n.id, n.event_id, n.recipient, n.channel, n.address, n.subject, n.body_text, n.body_html, "
    "n.payload::text as payload, n.attempts, n.lease_token, n.created_at"
)


async def claim_next_run(pool: Pool, *, channel: str, address: str, lease_s: float, run: int) -> list[asyncpg.Record]:
    """The next run of an address whose run was just sent: no search through the other addresses.

    Nothing when its head is taken (another replica claimed it meanwhile) or not due."""
    rows: list[asyncpg.Record] = await pool.fetch(_NEXT_RUN_SQL, channel, address, lease_s, run)
    return sorted(rows, key=lambda r: r["id"])


_RELEASE_SQL = (
    "update notifications n set lease_until = null, attempts = n.attempts - 1 "
    "from unnest($1::bigint[], $2::uuid[]) as r(id, token) "
    # still leased with this token: pending, and ours (every outcome ends a lease; only pending rows are leased).
    # Said so, and not by the status, the statement goes by the primary key (see _CLAIM_SQL)
    "where n.id = any($1::bigint[]) and n.id = r.id and n.lease_token = r.token and n.lease_until is not null"
)


async def release(pool: Pool, rows: list[asyncpg.Record]) -> None:
    """Give back leased notifications never attempted (their run stopped before them): due again at once."""
    if rows:
        await pool.execute(
            _RELEASE_SQL,
            [r["id"] for r in rows],
            [r["lease_token"] for r in rows],
        )


@dataclass(frozen=True)
class Sent:
    notification_id: int
    attempt: int
    lease_token: UUID


_MARK_SENT_SQL = (
    "with s as (select * from unnest($1::bigint[], $2::uuid[], $3::int[]) as s(id, token, attempt)), "
    "sent as (update notifications n set status = 'sent', sent_at = now(), lease_until = null, "
    # still leased with this token: see _RELEASE_SQL
    "last_error = null from s where n.id = any($1::bigint[]) and n.id = s.id and n.lease_token = s.token "
    "and n.lease_until is not null "
    "returning n.id, s.attempt) "
    "insert into delivery_attempts (notification_id, attempt, outcome) select id, attempt, 'sent' from sent "
    "on conflict do nothing returning notification_id"
)


async def mark_sent(pool: Pool, sent: list[Sent]) -> set[int]:
    """The notifications recorded as sent, in one round trip; one missing from the answer had lost its lease
    meanwhile (another holder owns its outcome now)."""
    rows = await pool.fetch(
        _MARK_SENT_SQL,
        [s.notification_id for s in sent],
        [s.lease_token for s in sent],
        [s.attempt for s in sent],
    )
    return {r["notification_id"] for r in rows}


async def mark_failed_attempt(
    pool: Pool, notification_id: int, attempt: int, *, lease_token: UUID, error: str, retry_at: datetime | None
) -> bool:
    """A retry at `retry_at`, or (None) failed for good: visible in the table for operators."""
    recorded: bool | None = await pool.fetchval(
        "with failed as (update notifications set status = $2, next_attempt_at = coalesce($3, next_attempt_at), "
        "lease_until = null, last_error = $4 where id = $1 and lease_token = $5 and lease_until is not null "
        "returning id) "
        "insert into delivery_attempts (notification_id, attempt, outcome, error) "
        "select id, $6, $7, $4 from failed on conflict do nothing returning true",
        notification_id,
        "pending" if retry_at else "failed",
        retry_at,
        error[:2000],
        lease_token,
        attempt,
        "retry" if retry_at else "failed",
    )
    return bool(recorded)


async def first_id_since(pool: Pool, moment: datetime) -> int | None:
    """The id of the first notification created at or after `moment` (None: none was), found by bisecting the
    primary key (ids and creation times grow together): a few dozen index probes, however long the history,
    where walking the key from the oldest read every row that came before."""
    bounds = await pool.fetchrow("select min(id) as low, max(id) as high from notifications")
    assert bounds is not None
    low: int | None
    high: int | None
    low, high = bounds["low"], bounds["high"]
    if low is None or high is None:
        return None
    top, high = high, high + 1  # the answer lies in [low, high]; high: none since
    while low < high:
        middle = (low + high) // 2
        row = await pool.fetchrow(
            "select id, created_at >= $2 as since from notifications where id >= $1 order by id limit 1", middle, moment
        )
        if row is None or row["since"]:
            high = middle
        else:
            low = row["id"] + 1
    return None if low > top else low


# Finished notifications created before the cutoff ($1), the oldest first from after id $3 and below id $4, at most
# $2 of them, with their delivery attempts. A digest goes only with every notification it carried (they are
# older: they go first, or beside it). Answers how many went, how many were looked at and the last id looked at.
_PURGE_SQL = (
    "with doomed as (select id from notifications where id > $3 and id < $4 "
    "and status in ('sent', 'failed', 'digested') and created_at < $1 order by id limit $2 for update skip locked), "
    "gone as (select id from doomed d where not exists (select 1 from notifications i where i.digest_id = d.id "
    "and i.id <> all(array(select id from doomed)))), "
    "attempts as (delete from delivery_attempts where notification_id = any(array(select id from gone))), "
    "deleted as (delete from notifications where id = any(array(select id from gone)) returning id) "
    "select (select count(*) from deleted) as deleted, (select count(*) from doomed) as examined, "
    "(select max(id) from doomed) as last"
)


@dataclass(frozen=True)
class Purged:
    deleted: int
    examined: int
    last_id: int | None


async def purge_finished(pool: Pool, *, before: datetime, after_id: int, below_id: int, limit: int) -> Purged:
    """Deletes up to `limit` sent, failed or digested notifications created before `before` (ids between
    `after_id` and `below_id`, both excluded), with their delivery attempts. Pending and held ones stay, whatever
    their age; rows another transaction holds are left for the next round."""
    row = await pool.fetchrow(_PURGE_SQL, before, limit, after_id, below_id)
    assert row is not None
    return Purged(row["deleted"], row["examined"], row["last"])


async def get_due_digests(pool: Pool, *, hourly_s: float, daily_s: float) -> list[asyncpg.Record]:
    """(recipient, address, digest) of every held group with something from a period that has ended."""
    rows: list[asyncpg.Record] = await pool.fetch(
        "select recipient, address, digest from notifications where status = 'held' and created_at < "
        # the start of the current period: what was held before it is due now
        "date_bin(make_interval(secs => case when digest = 'hourly' then $1::float8 else $2::float8 end), "
        "now(), timestamptz 'epoch')"
        " group by recipient, address, digest",
        hourly_s,
        daily_s,
    )
    return rows


async def lock_digest(conn: Conn, recipient: str, address: str) -> bool:
    """One replica builds a recipient's digest at a time; the others skip it."""
    return bool(
        await conn.fetchval(
            "select pg_try_advisory_xact_lock(hashtext('dealreg.digest:' || $1 || ':' || $2))", recipient, address
        )
    )


async def get_held_due(
    conn: Conn, recipient: str, address: str, *, hourly_s: float, daily_s: float, limit: int
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "select id, subject, body_text, created_at, digest from notifications "
        "where status = 'held' and recipient = $3 and address = $4 and created_at < "
        # the start of the current period: what was held before it is due now
        "date_bin(make_interval(secs => case when digest = 'hourly' then $1::float8 else $2::float8 end), "
        "now(), timestamptz 'epoch')"
        " order by id limit $5 for update",
        hourly_s,
        daily_s,
        recipient,
        address,
        limit,
    )
    return rows


async def insert_digest(
    conn: Conn, *, recipient: str, address: str, first_id: int, subject: str, text: str, html: str, count: int
) -> int | None:
    """The digest is itself a notification, delivered like any other; keyed by its first item, so never twice."""
    digest_id: int | None = await conn.fetchval(
        "insert into notifications (event_id, event_type, recipient, channel, address, subject, body_text, "
        "body_html, payload) values ($1, 'notify.digest', $2, 'email', $3, $4, $5, $6, $7::jsonb) "
        "on conflict do nothing returning id",
        f"digest:{first_id}",
        recipient,
        address,
        subject,
        text,
        html,
        f'{{"type": "notify.digest", "count": {count}}}',
    )
    return digest_id


async def mark_digested(conn: Conn, ids: list[int], digest_id: int) -> None:
    await conn.execute(
        "update notifications set status = 'digested', digest_id = $2 where id = any($1::bigint[])", ids, digest_id
    )
