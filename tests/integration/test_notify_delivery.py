"""Notify's delivery on a real Postgres with real SMTP and HTTP receivers: replicas, order, retries, leases, digests."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from dealreg_devstack.procs import wait_until
from dealreg_devstack.provision import Stack
from dealreg_devstack.sinks import SmtpSink, WebhookSink
from dealreg_notify import store, store_delivery
from dealreg_notify.app import DB_SETTINGS
from dealreg_notify.channels import SmtpConnections, build_email
from dealreg_notify.delivery import RUNS_IN_A_ROW, Deliverer, SentMarks
from dealreg_notify.digest import Digester
from dealreg_notify.directory import Directory
from dealreg_notify.domain import Notification
from dealreg_notify.retention import Retention
from dealreg_notify.settings import NotifySettings
from dealreg_shared.db import create_pool, migrate, service_migrations
from dealreg_shared.envelope import utcnow
from dealreg_shared.metrics import REGISTRY
from tests.conftest import unique
from tests.integration.plans import buffers, buffers_prepared

pytestmark = pytest.mark.integration


@dataclass
class Desk:
    """A throwaway notify schema, its pool, and the receivers it delivers to."""

    stack: Stack
    schema: str
    pool: asyncpg.Pool
    smtp: SmtpSink
    hooks: WebhookSink

    def settings(self, **overrides: Any) -> NotifySettings:
        values: dict[str, Any] = {
            "smtp_port": self.smtp.port,
            "delivery_backoff_s": 0.05,
            "delivery_backoff_max_s": 0.2,
            "delivery_poll_s": 0.05,
            "webhook_timeout_s": 3,
            "smtp_timeout_s": 3,
            "delivery_lease_s": 5,
        }
        return NotifySettings(**{**values, **overrides})

    async def record(self, items: list[Notification], event_id: str | None = None) -> None:
        async with self.pool.acquire() as conn:
            await store.insert_notifications(conn, [store.Recorded(event_id or unique("e-"), "t", items)])

    @asynccontextmanager
    async def deliverers(self, count: int = 1, **overrides: Any) -> AsyncIterator[None]:
        """`count` replicas, each with its own pool, as separate processes would have."""
        pools = [await self.service_pool() for _ in range(count)]
        settings = self.settings(**overrides)
        tasks = [
            asyncio.create_task(Deliverer(pool=p, settings=settings, directory=Directory({}, {})).run()) for p in pools
        ]
        try:
            yield
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for p in pools:
                await p.close()

    async def service_pool(self, max_size: int = 5) -> asyncpg.Pool:
        """A pool on this schema with the service's own connection settings."""
        return await create_pool(
            self.stack.admin_dealreg_dsn, schema=self.schema, max_size=max_size, server_settings=DB_SETTINGS
        )

    async def statuses(self) -> dict[int, str]:
        return {r["id"]: r["status"] for r in await self.pool.fetch("select id, status from notifications")}


@pytest.fixture
async def desk(stack: Stack) -> AsyncIterator[Desk]:
    schema = unique("t_notify_")
    admin = await asyncpg.connect(stack.admin_dealreg_dsn)
    await admin.execute(f"create schema {schema}")
    await migrate(admin, schema=schema, migrations=service_migrations("dealreg_notify"))
    await admin.close()
    pool = await create_pool(stack.admin_dealreg_dsn, schema=schema)
    smtp, hooks = SmtpSink(), WebhookSink()
    await smtp.start()
    await hooks.start()
    yield Desk(stack, schema, pool, smtp, hooks)
    await smtp.stop()
    await hooks.stop()
    await pool.close()


def hook(desk: Desk, name: str, seq: int) -> Notification:
    return Notification(f"partner:{name}", "webhook", desk.hooks.url(name), f"#{seq}", "t", {"seq": seq})


def mail(address: str, seq: int, digest: Any = "none") -> Notification:
    return Notification(f"manager:{address}", "email", address, f"#{seq}", f"body {seq}", {}, "<p>h</p>", digest)


async def eventually(condition: Any, what: str, timeout_s: float = 20) -> None:
    async def probe() -> bool:
        return bool(condition())

    await wait_until(probe, timeout_s=timeout_s, what=what)


async def test_three_replicas_deliver_every_notification_once_and_in_order_per_address(desk: Desk) -> None:
    names = [unique("h") for _ in range(3)]
    addresses = [f"{unique('m')}@vendor.example" for _ in range(3)]
    for seq in range(10):
        await desk.record([hook(desk, n, seq) for n in names] + [mail(a, seq) for a in addresses])
    async with desk.deliverers(3):
        await eventually(
            lambda: len(desk.hooks.hooks) == 30 and len(desk.smtp.mails) == 30, "every notification is delivered"
        )
    for name in names:
        assert [h.json["data"]["seq"] for h in desk.hooks.to(name)] == list(range(10))
    for address in addresses:
        assert [m.subject for m in desk.smtp.to(address)] == [f"#{seq}" for seq in range(10)]
    assert set((await desk.statuses()).values()) == {"sent"}


async def test_recording_the_same_event_twice_records_its_notifications_once(desk: Desk) -> None:
    items = [mail(f"{unique('m')}@vendor.example", 1)]
    await desk.record(items, event_id="e-same")
    await desk.record(items, event_id="e-same")
    assert len(await desk.statuses()) == 1


async def test_a_failing_then_recovering_webhook_gets_the_notification_once_after_backoff(desk: Desk) -> None:
    name = unique("flaky")
    desk.hooks.fail_next[name] = 2
    await desk.record([hook(desk, name, 1)])
    async with desk.deliverers():
        await eventually(lambda: desk.hooks.to(name), "the webhook recovers and receives it")
    assert desk.hooks.arrivals[name] == 3 and len(desk.hooks.to(name)) == 1
    attempts = await desk.pool.fetch("select attempt, outcome, error, attempted_at from delivery_attempts order by 1")
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(1, "retry"), (2, "retry"), (3, "sent")]
    assert "HTTP 503" in attempts[0]["error"]
    assert attempts[1]["attempted_at"] > attempts[0]["attempted_at"]


async def test_a_refusing_mail_server_that_recovers_gets_the_mail_once(desk: Desk) -> None:
    address = f"{unique('m')}@vendor.example"
    desk.smtp.fail_next[address] = 2
    await desk.record([mail(address, 1)])
    async with desk.deliverers():
        await eventually(lambda: desk.smtp.to(address), "the mail server accepts it at last")
    assert len(desk.smtp.to(address)) == 1
    outcomes = await desk.pool.fetch("select outcome from delivery_attempts order by attempt")
    assert [o["outcome"] for o in outcomes] == ["retry", "retry", "sent"]


async def test_a_run_stops_at_a_refused_mail_and_the_address_still_hears_all_in_order(desk: Desk) -> None:
    address = f"{unique('m')}@vendor.example"
    for seq in range(6):
        await desk.record([mail(address, seq)])
    run = await store_delivery.claim_due(desk.pool, limit=10, lease_s=30, run=4)
    assert [r["subject"] for r in run] == ["#0", "#1", "#2", "#3"]  # one address: its four oldest, in order
    assert await store_delivery.claim_due(desk.pool, limit=10, lease_s=30, run=4) == []  # leased: nothing else
    await store_delivery.release(desk.pool, run)  # given back untried: not charged an attempt
    assert await desk.pool.fetchval("select sum(attempts) from notifications") == 0

    # the run's first is refused once: the three after it go back untried, and wait for it
    desk.smtp.fail_next[address] = 1
    async with desk.deliverers(delivery_run=4):
        await eventually(lambda: len(desk.smtp.to(address)) == 6, "all six arrive")
    assert [m.subject for m in desk.smtp.to(address)] == [f"#{seq}" for seq in range(6)]
    tries = await desk.pool.fetch(
        "select n.subject, array_agg(a.outcome order by a.attempt) as outcomes from delivery_attempts a "
        "join notifications n on n.id = a.notification_id group by n.subject order by n.subject"
    )
    assert {t["subject"]: t["outcomes"] for t in tries} == {"#0": ["retry", "sent"]} | {
        f"#{seq}": ["sent"] for seq in range(1, 6)
    }


async def test_an_address_next_run_is_never_leased_beside_a_run_in_flight(desk: Desk) -> None:
    address = f"{unique('m')}@vendor.example"
    for seq in range(3):
        await desk.record([mail(address, seq)])
    [head] = await store_delivery.claim_due(desk.pool, limit=10, lease_s=30, run=1)  # another replica's run
    assert await store_delivery.claim_next_run(desk.pool, channel="email", address=address, lease_s=30, run=5) == []
    await store_delivery.release(desk.pool, [head])
    run = await store_delivery.claim_next_run(desk.pool, channel="email", address=address, lease_s=30, run=5)
    assert [r["subject"] for r in run] == ["#0", "#1", "#2"]


async def test_a_claim_does_not_wait_for_the_outcomes_of_runs_in_flight(desk: Desk) -> None:
    """A run's sent marks are recorded while other addresses are claimed. A claim that locked the leased heads it
    passed waited for those marks, and a batch of marks (for several addresses) for the heads the claim held:
    a deadlock, a second lost to Postgres's detector each time."""
    busy, free = f"{unique('busy')}@vendor.example", f"{unique('free')}@vendor.example"
    for seq in range(2):
        await desk.record([mail(busy, seq), mail(free, seq)])
    [head] = await store_delivery.claim_due(desk.pool, limit=1, lease_s=30, run=1)
    assert head["address"] == busy
    async with desk.pool.acquire() as marking:
        transaction = marking.transaction()
        await transaction.start()
        try:
            # the busy address's head, sent, its mark being recorded (not committed yet)
            sent = store_delivery.Sent(head["id"], head["attempts"], head["lease_token"])
            assert await marking.fetch(store_delivery._MARK_SENT_SQL, [sent.notification_id], [sent.lease_token], [1])
            claim = store_delivery.claim_due(desk.pool, limit=10, lease_s=30, run=5)
            run = await asyncio.wait_for(claim, timeout=15)  # before: waits until the mark commits
        finally:
            await transaction.rollback()
    assert [(r["address"], r["subject"]) for r in run] == [(free, "#0"), (free, "#1")]


async def test_a_lease_is_a_heap_only_update(desk: Desk) -> None:
    """A lease changes no indexed column: with room left on the page, Postgres writes no index entry for it and
    logs only the bytes that changed. On full pages every lease went to another page, with an entry in each index."""
    addresses = [f"{unique('m')}@vendor.example" for _ in range(20)]
    text, html = "A status line of a mail.\n" * 16, "<p>" + "A status line of a mail.<br>" * 36 + "</p>"
    for seq in range(15):  # a real notification's size, about 1.5 KB: the bodies are most of it
        await desk.record([Notification(f"manager:{a}", "email", a, f"#{seq}", text, {}, html) for a in addresses])
    async with desk.pool.acquire() as conn, conn.transaction():
        leased = await conn.fetch(store_delivery._CLAIM_SQL, 50, 30.0, 20)
        counts = await conn.fetchrow(
            "select n_tup_upd, n_tup_hot_upd from pg_stat_xact_user_tables where relid = 'notifications'::regclass"
        )
    assert len(leased) == 300 and counts["n_tup_upd"] == 300
    assert counts["n_tup_hot_upd"] == 300


async def test_a_busy_address_does_not_keep_its_slot_from_another_address_for_ever(desk: Desk) -> None:
    busy, other = f"{unique('busy')}@vendor.example", f"{unique('other')}@vendor.example"
    turn = RUNS_IN_A_ROW * 2  # what a task sends to one address in a row, in runs of 2
    # the other address's notification is older than most of the busy one's: it must not wait behind them all
    for seq in range(turn):
        await desk.record([mail(busy, seq)])
    await desk.record([mail(other, 0)])
    for seq in range(turn, 4 * turn):
        await desk.record([mail(busy, seq)])
    async with desk.deliverers(delivery_concurrency=1, delivery_run=2):
        await eventually(lambda: len(desk.smtp.mails) == 4 * turn + 1, "everything arrives")
    order = [m.rcpt_tos[0] for m in desk.smtp.mails]
    assert order.index(other) == turn, "the other address was served after one turn of the busy one"
    assert [m.subject for m in desk.smtp.to(busy)] == [f"#{seq}" for seq in range(4 * turn)]


def deliveries() -> dict[str, float]:
    """Notify's webhook delivery attempts by outcome, as its /metrics counts them (this process's registry)."""
    return {
        outcome: REGISTRY.get_sample_value(
            "dealreg_notification_deliveries_total", {"channel": "webhook", "outcome": outcome}
        )
        or 0.0
        for outcome in ("sent", "retry", "failed")
    }


async def test_a_notification_that_keeps_failing_is_marked_failed_and_the_address_moves_on(desk: Desk) -> None:
    name = unique("dead")
    desk.hooks.fail_next[name] = 3  # every attempt the first notification gets
    await desk.record([hook(desk, name, 1)])
    await desk.record([hook(desk, name, 2)])
    before = deliveries()
    async with desk.deliverers(delivery_max_attempts=3):
        await eventually(lambda: desk.hooks.to(name), "the next notification reaches the address")
    [failed] = await store.get_failed(desk.pool, limit=10)
    assert failed["attempts"] == 3 and "HTTP 503" in failed["last_error"]
    assert [h.json["data"]["seq"] for h in desk.hooks.to(name)] == [2]
    after = deliveries()
    assert {k: after[k] - before[k] for k in after} == {"sent": 1, "retry": 2, "failed": 1}, "every attempt counted"


async def test_a_slow_webhook_does_not_hold_up_other_recipients(desk: Desk) -> None:
    slow, other = unique("slow"), unique("other")
    desk.hooks.hold(slow)
    await desk.record([hook(desk, slow, 1), hook(desk, other, 1)])
    await desk.record([hook(desk, other, 2)])
    await desk.record([hook(desk, other, 3)])
    async with desk.deliverers(webhook_timeout_s=20, delivery_lease_s=30):
        await eventually(lambda: len(desk.hooks.to(other)) == 3, "the other recipient hears all three", timeout_s=10)
        # still the first attempt at the slow one: nothing waited for it to time out
        assert desk.hooks.arrivals[slow] == 1 and desk.hooks.waiting(slow) == 1
        desk.hooks.release(slow)
        await eventually(lambda: desk.hooks.to(slow), "the slow one completes")


async def test_the_outcome_of_a_lost_lease_is_not_recorded(desk: Desk) -> None:
    await desk.record([mail(f"{unique('m')}@vendor.example", 1)])
    [first] = await store_delivery.claim_due(desk.pool, limit=10, lease_s=30)
    # the first holder stalls past its lease (a pause, a partition): another takes the notification over
    await desk.pool.execute("update notifications set lease_until = now() - interval '1 second'")
    [second] = await store_delivery.claim_due(desk.pool, limit=10, lease_s=30)
    assert second["attempts"] == 2
    stale = store_delivery.Sent(first["id"], 1, first["lease_token"])
    assert await store_delivery.mark_sent(desk.pool, [stale]) == set()
    # the stale holder's mark, carried in the same statement as the new holder's, changes nothing either
    current = store_delivery.Sent(second["id"], 2, second["lease_token"])
    assert await store_delivery.mark_sent(desk.pool, [stale, current]) == {second["id"]}
    attempts = await desk.pool.fetch(
        "select attempt, outcome from delivery_attempts where notification_id = $1", second["id"]
    )
    assert [(a["attempt"], a["outcome"]) for a in attempts] == [(2, "sent")]


async def test_sends_in_flight_at_once_are_marked_together_each_hearing_its_own_outcome(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[int] = []
    mark_sent = store_delivery.mark_sent

    async def counted(pool: Any, sent: list[store_delivery.Sent]) -> set[int]:
        statements.append(len(sent))
        return await mark_sent(pool, sent)

    monkeypatch.setattr(store_delivery, "mark_sent", counted)
    address = f"{unique('m')}@vendor.example"
    for n in range(6):
        await desk.record([mail(address, n)])
    rows = await store_delivery.claim_due(desk.pool, limit=10, lease_s=30, run=6)
    marks = SentMarks(desk.pool)
    sent = [store_delivery.Sent(r["id"], r["attempts"], r["lease_token"]) for r in rows]
    sent[2] = store_delivery.Sent(rows[2]["id"], rows[2]["attempts"], uuid.uuid4())  # a lease lost meanwhile
    outcomes = await asyncio.gather(*(marks.mark(s) for s in sent))
    assert outcomes == [True, True, False, True, True, True]
    assert statements == [6]  # all asked before the writer ran: one statement
    statuses = await desk.pool.fetch("select status from notifications where address = $1 order by id", address)
    assert [r["status"] for r in statuses] == ["sent", "sent", "pending", "sent", "sent", "sent"]


async def test_held_notifications_become_one_digest_even_with_racing_replicas(desk: Desk) -> None:
    address, other = f"{unique('d')}@vendor.example", f"{unique('d')}@vendor.example"
    for seq in range(3):
        await desk.record([mail(address, seq, "hourly")])
    await desk.record([mail(other, 9, "daily")])
    # these three belong to an hour that has ended; one more arrives in the current hour. Only these: two hours
    # back, between midnight and 02:00 UTC, the daily one would belong to a day that has ended too
    await desk.pool.execute(
        "update notifications set created_at = now() - interval '2 hours' where address = $1", address
    )
    await desk.record([mail(address, 3, "hourly")])
    digesters = [Digester(pool=desk.pool, settings=desk.settings()) for _ in range(3)]
    built = await asyncio.gather(*(d.build_due() for d in digesters))
    assert sum(built) == 1, "the daily one waits for its day to end; the hourly one is built once"
    rows = await desk.pool.fetch("select subject, status, digest_id, event_type from notifications order by id")
    [digest] = [r for r in rows if r["event_type"] == "notify.digest"]
    assert digest["subject"] == "[dealreg] Your hourly digest: 3 notifications" and digest["status"] == "pending"
    assert [r["status"] for r in rows if r["subject"] in ("#0", "#1", "#2")] == ["digested"] * 3
    assert [r["status"] for r in rows if r["subject"] in ("#3", "#9")] == ["held", "held"]
    async with desk.deliverers():
        await eventually(lambda: desk.smtp.to(address), "the digest is mailed")
    [mailed] = desk.smtp.to(address)
    assert all(f"body {seq}" in mailed.text for seq in range(3)) and "body 3" not in mailed.text


async def test_mail_goes_over_a_few_kept_sessions_and_a_dropped_one_is_replaced(desk: Desk) -> None:
    settings = desk.settings(smtp_max_connections=2)
    smtp = SmtpConnections(settings)
    rows = [
        {"id": i, "address": f"m{i % 5}@vendor.example", "subject": f"#{i}", "body_text": "t", "body_html": None}
        for i in range(20)
    ]
    try:
        await asyncio.gather(*(smtp.send(build_email(r, settings)) for r in rows))
        assert sorted(m.subject for m in desk.smtp.mails) == sorted(f"#{i}" for i in range(20))
        assert desk.smtp.sessions <= 2  # twenty messages, at most the allowed sessions: none opened per message
        opened = desk.smtp.sessions

        # the server closes the idle sessions (as an idle timeout would): the next message still goes, once
        desk.smtp.drop_sessions()
        row = {"id": 99, "address": "late@vendor.example", "subject": "#99", "body_text": "t", "body_html": None}
        await smtp.send(build_email(row, settings))
        assert [m.subject for m in desk.smtp.to("late@vendor.example")] == ["#99"]
        assert desk.smtp.sessions == opened + 1
    finally:
        smtp.close()


async def test_claims_follow_the_addresses_waiting_even_on_statistics_taken_with_nothing_pending(desk: Desk) -> None:
    """Postgres plans from statistics gathered now and then: taken when nothing was pending (all mail sent after a
    burst), they say 'about one row' until the next analyze, whatever the backlog has become. Claiming and marking
    must still go by index descents per address and row, not read the whole backlog for every address."""
    addresses = [f"{unique('m')}@vendor.example" for _ in range(5)]
    async with desk.pool.acquire() as conn:
        await conn.execute("alter table notifications set (autovacuum_enabled = false)")  # no analyze meanwhile
        events = [store.Recorded(unique("e-"), "t", [mail(a, seq) for a in addresses]) for seq in range(5000)]
        await store.insert_notifications(conn, events[:1000])
        await conn.execute("update notifications set status = 'sent'")
        await conn.execute("analyze notifications")
        # then a burst: 20,000 pending, 4,000 an address
        await store.insert_notifications(conn, events[1000:])
        # two addresses busy (their heads leased), three free
        claimed = await store_delivery.claim_due(desk.pool, limit=2, lease_s=60, run=20)
        assert len({r["address"] for r in claimed}) == 2 and len(claimed) == 40
        ids, tokens = [r["id"] for r in claimed], [r["lease_token"] for r in claimed]
        costs = {
            "claim": await buffers(conn, store_delivery._CLAIM_SQL, 32, 60.0, 20),
            "next run": await buffers(conn, store_delivery._NEXT_RUN_SQL, "email", addresses[0], 60.0, 20),
            "sent": await buffers(conn, store_delivery._MARK_SENT_SQL, ids, tokens, [1] * len(ids)),
            "release": await buffers(conn, store_delivery._RELEASE_SQL, ids, tokens),
        }
    # index descents for each address and each row leased or marked (60 at most here): a few hundred buffers to a
    # thousand; reading the backlog (before: the claim read 1.8 million for a fifth of it) takes tens of thousands
    assert max(costs.values()) < 2000, costs


async def test_marks_and_claims_prepared_while_the_table_was_small_go_by_index_once_it_has_grown(desk: Desk) -> None:
    """A connection lives for hours and keeps what it prepared. Prepared while `notifications` held a few rows (a
    fresh deployment; every benchmark run), marking and claiming must not go on reading the whole table once it holds
    thousands, until Postgres happens to analyze it."""
    address = f"{unique('m')}@vendor.example"
    await desk.pool.execute("alter table notifications set (autovacuum_enabled = false)")  # no analyze meanwhile
    pool = await desk.service_pool(max_size=1)  # one connection: the one that prepared them
    try:
        for seq in range(8):  # past the five custom plans after which Postgres may keep a generic one
            await desk.record([mail(address, seq)])
            [row] = await store_delivery.claim_due(pool, limit=1, lease_s=30)
            sent = store_delivery.Sent(row["id"], row["attempts"], row["lease_token"])
            assert await store_delivery.mark_sent(pool, [sent]) == {row["id"]}
        others = [f"{unique('m')}@vendor.example" for _ in range(4)]
        events = [store.Recorded(unique("e-"), "t", [mail(a, seq) for a in others]) for seq in range(10000)]
        async with desk.pool.acquire() as conn:
            await store.insert_notifications(conn, events)
        claimed = await store_delivery.claim_due(desk.pool, limit=1, lease_s=60, run=20)
        ids, tokens = [r["id"] for r in claimed], [r["lease_token"] for r in claimed]
        async with pool.acquire() as conn:
            costs = {
                "sent": await buffers_prepared(conn, store_delivery._MARK_SENT_SQL, ids, tokens, [1] * len(ids)),
                "claim": await buffers_prepared(conn, store_delivery._CLAIM_SQL, 1, 30.0, 1),
            }
    finally:
        await pool.close()
    # index descents for the 20 rows marked and the address claimed: tens to a few hundred buffers (331 and 52 when
    # written); a plan that reads the table (its 40,000 rows) touches thousands (2,193 and 3,858 when written)
    assert max(costs.values()) < 1000, costs


async def _age(desk: Desk, address: str, days: float) -> None:
    await desk.pool.execute(
        "update notifications set created_at = now() - make_interval(secs => $2) where address = $1",
        address,
        days * 86400,
    )


async def test_retention_deletes_finished_notifications_past_it_with_their_attempts_and_keeps_the_rest(
    desk: Desk,
) -> None:
    old, recent, waiting = (f"{unique(n)}@vendor.example" for n in ("old", "new", "wait"))
    digested = f"{unique('dig')}@vendor.example"
    for seq in range(3):
        await desk.record([mail(old, seq)])
    # a digest built from two held ones, with what it carried
    for seq in range(2):
        await desk.record([mail(digested, seq, "hourly")])
    await _age(desk, digested, 1 / 12)
    assert await Digester(pool=desk.pool, settings=desk.settings()).build_due() == 1
    # not finished: a mail waiting for its retry, and one held for a digest
    await desk.record([mail(waiting, 0)])
    await desk.record([mail(waiting, 1, "daily")])
    await desk.pool.execute(
        "update notifications set next_attempt_at = now() + interval '1 hour' where address = $1", waiting
    )
    last_old = await desk.pool.fetchval("select max(id) from notifications")
    for seq in range(3):
        await desk.record([mail(recent, seq)])
    async with desk.deliverers():
        await eventually(
            lambda: len(desk.smtp.to(old)) == 3 and len(desk.smtp.to(recent)) == 3 and desk.smtp.to(digested),
            "the old and recent mails and the digest sent",
        )
    await desk.pool.execute("update notifications set status = 'failed' where address = $1 and subject = '#2'", old)
    # in id order, as they were recorded: everything up to the waiting ones 91 days old, the recent ones 89
    await desk.pool.execute(
        "update notifications set created_at = now() - make_interval(days => case when id <= $1 then 91 else 89 end)",
        last_old,
    )
    attempts_before = await desk.pool.fetchval("select count(*) from delivery_attempts")

    pool = await desk.service_pool()
    try:
        deleted = await Retention(pool=pool, settings=desk.settings(notification_retention_days=90)).purge()
    finally:
        await pool.close()

    left = await desk.pool.fetch("select address, status from notifications order by id")
    assert deleted == 6, "the old address's three (two sent, one failed), the digest and the two it carried"
    assert [(r["address"], r["status"]) for r in left] == [(waiting, "pending"), (waiting, "held")] + [
        (recent, "sent")
    ] * 3
    attempts = await desk.pool.fetch(
        "select n.address from delivery_attempts a join notifications n on n.id = a.notification_id"
    )
    assert [r["address"] for r in attempts] == [recent] * 3
    assert attempts_before - len(attempts) == 3 + 1, "the old address's attempts and the digest's went with them"


async def test_retention_never_deletes_a_digest_before_what_it_carried(desk: Desk) -> None:
    address = f"{unique('dig')}@vendor.example"
    for seq in range(2):
        await desk.record([mail(address, seq, "hourly")])
    await _age(desk, address, 1 / 12)
    assert await Digester(pool=desk.pool, settings=desk.settings()).build_due() == 1
    await desk.pool.execute("update notifications set status = 'sent' where event_type = 'notify.digest'")
    await _age(desk, address, 91)
    items = [r["id"] for r in await desk.pool.fetch("select id from notifications where digest_id is not null")]
    before = utcnow() - timedelta(days=90)
    # a batch that reaches the digest without the two it carried (they came first, so a batch never does that
    # by itself): the digest stays, no foreign key error
    alone = await store_delivery.purge_finished(desk.pool, before=before, after_id=max(items), below_id=2**62, limit=10)
    assert (alone.deleted, alone.examined) == (0, 1)
    together = await store_delivery.purge_finished(desk.pool, before=before, after_id=0, below_id=2**62, limit=10)
    assert (together.deleted, together.examined) == (3, 3)
    assert await desk.pool.fetchval("select count(*) from notifications") == 0


async def test_a_long_history_goes_in_batches_each_starting_where_the_last_ended(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = f"{unique('long')}@vendor.example"
    for seq in range(25):
        await desk.record([mail(address, seq)])
    await desk.pool.execute("update notifications set status = 'sent'")
    # four days apart, in id order, the oldest 120 days back: the first eight (120 to 92 days old) are past 90
    await desk.pool.execute(
        "update notifications set created_at = now() - make_interval(days => 120 - (id - (select min(id) from "
        "notifications))::int * 4)"
    )
    ids = [r["id"] for r in await desk.pool.fetch("select id from notifications order by id")]
    assert await store_delivery.first_id_since(desk.pool, utcnow() - timedelta(days=90)) == ids[8]
    assert await store_delivery.first_id_since(desk.pool, utcnow() - timedelta(days=200)) == ids[0]
    assert await store_delivery.first_id_since(desk.pool, utcnow()) is None
    calls: list[tuple[int, int]] = []
    purge = store_delivery.purge_finished

    async def counted(pool: Any, **kwargs: Any) -> store_delivery.Purged:
        calls.append((kwargs["after_id"], kwargs["below_id"]))
        return await purge(pool, **kwargs)

    monkeypatch.setattr(store_delivery, "purge_finished", counted)
    monkeypatch.setattr("dealreg_notify.retention.PURGE_BATCH", 3)
    assert await Retention(pool=desk.pool, settings=desk.settings(notification_retention_days=90)).purge() == 8
    # batches of three from id 0 up to the first notification since the cutoff (88 days old)
    assert calls == [(0, ids[8]), (ids[2], ids[8]), (ids[5], ids[8])]
    left = [r["id"] for r in await desk.pool.fetch("select id from notifications order by id")]
    assert left == ids[8:]


async def test_notify_purges_its_history_when_it_starts(desk: Desk) -> None:
    address = f"{unique('start')}@vendor.example"
    for seq in range(3):
        await desk.record([mail(address, seq)])
    await desk.pool.execute("update notifications set status = 'sent'")
    await _age(desk, address, 2)
    settings = desk.settings(notification_retention_days=1, retention_interval_s=3600)
    task = asyncio.create_task(Retention(pool=desk.pool, settings=settings).run())
    try:
        await wait_until(
            lambda: _none_left(desk), timeout_s=10, what="the retention's first round, at start, deletes the old ones"
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _none_left(desk: Desk) -> bool:
    return await desk.pool.fetchval("select count(*) from notifications") == 0
