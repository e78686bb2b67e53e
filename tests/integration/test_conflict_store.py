"""Conflict's store and sweeper on a real Postgres: indexed candidate lookups, locks, sweeps racing."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from dealreg_conflict import store
from dealreg_conflict.app import DB_SETTINGS
from dealreg_conflict.clock import Clock
from dealreg_conflict.domain import Candidate
from dealreg_conflict.matching import name_keys
from dealreg_conflict.policies import ConflictConfig, Policies
from dealreg_conflict.settings import ConflictSettings
from dealreg_conflict.sweeper import Sweeper
from dealreg_devstack.provision import Stack
from dealreg_shared.db import Pool, create_pool, migrate, service_migrations
from dealreg_shared.envelope import utcnow
from tests.conftest import unique
from tests.integration.plans import buffers, buffers_prepared, plan_nodes

pytestmark = pytest.mark.integration

SETTINGS = ConflictSettings(sweep_batch=50)


@pytest.fixture
async def schema(stack: Stack) -> AsyncIterator[str]:
    """A throwaway schema with conflict's migrations, as the service has it."""
    name = unique("t_")
    admin = await asyncpg.connect(stack.admin_dealreg_dsn)
    await admin.execute(f"create schema {name}")
    await migrate(admin, schema=name, migrations=service_migrations("dealreg_conflict"))
    await admin.close()
    yield name
    admin = await asyncpg.connect(stack.admin_dealreg_dsn)
    await admin.execute(f"drop schema {name} cascade")
    await admin.close()


async def _pool(stack: Stack, schema: str, max_size: int = 3) -> Pool:
    """Connections as the service has them: its Postgres settings on each."""
    return await create_pool(stack.admin_dealreg_dsn, schema=schema, max_size=max_size, server_settings=DB_SETTINGS)


@pytest.fixture
async def pool(stack: Stack, schema: str) -> AsyncIterator[Pool]:
    """A pool on the throwaway schema, closed after the test."""
    pool = await _pool(stack, schema)
    yield pool
    await pool.close()


async def _seed(
    conn: asyncpg.Connection, count: int, *, protected_for: timedelta, status: str = "approved", analyze: bool = True
) -> None:
    until = utcnow() + protected_for
    await conn.execute(
        "insert into registrations (registration_id, partner_id, customer_key, registrable_domain, company_name, "
        "name_norm, country, product_lines, region, status, protected_until, expiring_from, data) "
        "select gen_random_uuid(), 'p-' || i, 'seed' || i || '.com', 'seed' || i || '.com', 'Seed ' || i, "
        "'seed ' || i, 'DE', array['analytics'], 'default', $2, $3, $3, '{}' "
        "from generate_series(1, $1) as i",
        count,
        status,
        until,
    )
    await conn.execute(
        "insert into name_keys (key, registration_id) "
        "select 'DE:k:' || replace(name_norm, ' ', ''), registration_id from registrations on conflict do nothing"
    )
    if analyze:
        await conn.execute("analyze registrations")
        await conn.execute("analyze name_keys")


async def _explain_candidates(
    conn: asyncpg.Connection, options: str, customers: list[str], domains: list[str], keys: list[str]
) -> list[asyncpg.Record]:
    """The candidates statement's plan, as the service plans it (generic)."""
    await conn.execute("set plan_cache_mode = force_generic_plan")
    return await conn.fetch(f"explain {options} " + store._CANDIDATES_SQL, customers, domains, keys, utcnow())


async def test_candidates_are_found_through_the_indexes_never_by_scanning_all_registrations(pool: Pool) -> None:
    async with pool.acquire() as conn:
        await _seed(conn, 20_000, protected_for=timedelta(days=30))
        plan = "\n".join(
            r[0]
            for r in await _explain_candidates(
                conn,
                "",
                ["name:de:contoso", "name:de:fabrikam"],
                ["contoso.de", "fabrikam.de"],
                ["DE:k:contoso", "DE:k:fabrikam"],
            )
        )
    assert "Seq Scan" not in plan, plan
    for index in ("registrations_active_by_customer", "registrations_active_by_domain", "name_keys_pkey"):
        assert index in plan, plan


async def test_asking_which_were_decided_before_goes_by_index_on_a_plan_made_while_registrations_were_few(
    stack: Stack, schema: str
) -> None:
    """A connection keeps the generic plans it made, from when `registrations` held a few rows (a fresh deployment;
    every benchmark run), until Postgres happens to analyze the table. Asking which of a batch's registrations were
    decided before must not go on reading the whole table once it holds thousands."""
    pool = await _pool(stack, schema, max_size=1)  # one connection: the one that prepared it
    try:
        async with pool.acquire() as conn:
            await conn.execute("alter table registrations set (autovacuum_enabled = false)")  # no analyze meanwhile
            await _stored(conn, "p-1", "contoso.de", "contoso.de", "contoso ag")
            for _ in range(8):  # past the five custom plans, were Postgres not told to keep a generic one
                await store.existing_registrations(conn, [uuid.uuid4()])
            await _seed(conn, 20_000, protected_for=timedelta(days=30), analyze=False)
            cost = await buffers_prepared(conn, store._EXISTING_SQL, [uuid.uuid4() for _ in range(100)])
            pages = await conn.fetchval("select pg_relation_size('registrations') / 8192")
    finally:
        await pool.close()
    # a hundred descents of the primary key: 203 buffers when written; a plan that reads the table touches every
    # page of its 20,000 rows (508)
    assert pages > 500
    assert cost < 350, (cost, pages)


async def test_a_decision_writes_each_name_key_with_one_descent_of_the_keys_index(pool: Pool) -> None:
    """The decision write is the database's costliest statement at full speed, and most of it is the name keys
    (16 or so a registration). They cannot be there already, so no conflict check looks each one up first."""
    names = [f"northwind {i:05d} trading" for i in range(3000)]
    async with pool.acquire() as conn:
        for start in range(0, 2900, 100):
            await store.insert_registrations(conn, [_namesake(i, names[i]) for i in range(start, start + 100)])
        await conn.execute("analyze")
        batch = [_namesake(i, names[i]) for i in range(2900, 3000)]
        args = store.decide_args(batch)
        keys = len(args[1])
        cost = await buffers(conn, store._DECIDE_SQL, *args)
        stored = await store.insert_registrations(conn, batch)
        written = await conn.fetchval(
            "select count(*) from name_keys where registration_id = any($1::uuid[])", [d.registration_id for d in batch]
        )
    assert len(stored) == 0 and written == keys  # no opportunity asked for; every key written
    # measured: 8.5 buffers a key with the conflict check, 4.5 without (the registration's own rows included)
    assert cost / keys < 6.5, (cost, keys)


def _decided(partner_id: str, customer_key: str, domain: str | None, name: str, country: str = "DE") -> store.Decided:
    """An approved registration, as conflict stores one."""
    return store.Decided(
        registration_id=uuid.uuid4(),
        partner_id=partner_id,
        customer_key=customer_key,
        registrable_domain=domain,
        company_name=name.title(),
        name_norm=name,
        country=country,
        product_lines=["analytics"],
        region="default",
        status="approved",
        reason_code=None,
        protected_until=utcnow() + timedelta(days=3),
        expiring_from=None,
        review_due_at=None,
        decided_at=utcnow(),
        decided_by="test",
        data={},
    )


def _namesake(i: int, name: str) -> store.Decided:
    return _decided(f"p-{i % 20}", f"name:de:{name}", None, name)


async def _stored(
    conn: asyncpg.Connection, partner_id: str, customer_key: str, domain: str | None, name: str, country: str = "DE"
) -> uuid.UUID:
    decided = _decided(partner_id, customer_key, domain, name, country)
    await store.insert_registrations(conn, [decided])
    return decided.registration_id


async def test_a_similar_name_in_the_country_is_a_candidate_and_one_abroad_is_not(pool: Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        for country in ("DE", "AT"):
            await _stored(conn, "p-a", f"name:{country}:contoso pharma", None, "contoso pharma", country)
        new = Candidate(
            str(uuid.uuid4()),
            "p-b",
            "name:de:contoso pharmaa",
            frozenset({"analytics"}),
            "new",
            None,
            "contoso pharmaa",
            "DE",
        )
        [found] = await store.get_active_candidates(conn, [new], now=utcnow())
    assert [(c.country, c.name) for c in found] == [("DE", "contoso pharma")]


async def test_a_batch_finds_for_each_registration_what_it_finds_alone_in_the_order_vetted(pool: Pool) -> None:
    async with pool.acquire() as conn:
        # one statement each, so each has its own vetted_at: the order candidates come in
        await _stored(conn, "p-1", "contoso.de", "contoso.de", "contoso pharma")
        await _stored(conn, "p-2", "name:de:fabrikam", None, "fabrikam textil")
        await _stored(conn, "p-3", "northwind.de", "northwind.de", "northwind foods")
        await _stored(conn, "p-4", "contoso.de", "contoso.de", "contoso analytics")
        await _stored(conn, "p-5", "tailspin.de", "tailspin.de", "fabrikam textill")  # a typo of p-2's name
        news = [
            # by customer and domain (two), by a name one edit away (two), by nothing, by the domain alone
            Candidate("n1", "p-9", "contoso.de", frozenset({"analytics"}), "new", "contoso.de", "contoso ag", "DE"),
            Candidate("n2", "p-9", "name:de:fabrikam", frozenset({"analytics"}), "new", None, "fabrikam textil", "DE"),
            Candidate("n3", "p-9", "litware.de", frozenset({"analytics"}), "new", "litware.de", "litware inc", "DE"),
            Candidate("n4", "p-9", "other-key", frozenset({"analytics"}), "new", "northwind.de", "wingtip toys", "DE"),
        ]
        together = await store.get_active_candidates(conn, news, now=utcnow())
        alone = [(await store.get_active_candidates(conn, [new], now=utcnow()))[0] for new in news]
    assert together == alone
    assert [[c.partner_id for c in found] for found in together] == [["p-1", "p-4"], ["p-2", "p-5"], [], ["p-3"]]


async def test_the_shared_name_keys_are_read_once_for_all_candidates_not_once_per_candidate(pool: Pool) -> None:
    """A customer many partners registered: each stored registration shares all of its name keys with a new one."""
    async with pool.acquire() as conn:
        for i in range(40):
            await _stored(conn, f"p-{i}", "name:de:contoso pharma", None, "contoso pharma")
        new = Candidate(
            "n1", "p-new", "name:de:contoso pharma", frozenset({"analytics"}), "new", None, "contoso pharma", "DE"
        )
        [found] = await store.get_active_candidates(conn, [new], now=utcnow())
        [[text]] = await _explain_candidates(
            conn, "(analyze, format json)", [new.customer_key], [], sorted(name_keys("contoso pharma", "DE"))
        )
        [plan] = json.loads(text)
    assert len(found) == 40
    scans = [n for n in plan_nodes(plan["Plan"]) if n.get("CTE Name") == "keyed"]
    assert scans and all(n["Actual Loops"] == 1 for n in scans), [(n["Node Type"], n["Actual Loops"]) for n in scans]


async def test_a_registration_leaving_the_active_statuses_loses_its_name_keys_and_a_namesake_keeps_its_own(
    pool: Pool,
) -> None:
    async with pool.acquire() as conn:
        kept = await _stored(conn, "p-1", "name:de:contoso pharma", None, "contoso pharma")
        gone = await _stored(conn, "p-2", "name:de:contoso pharma", None, "contoso pharma")
        assert await conn.fetchval("select count(*) from name_keys where registration_id = $1", gone) > 1
        await store.mark_status(conn, gone, status="rejected", decided_at=utcnow(), reason_code="withdrawn")
        rows = await conn.fetch("select key, registration_id from name_keys")
    assert {(r["key"], r["registration_id"]) for r in rows} == {(k, kept) for k in name_keys("contoso pharma", "DE")}


async def test_blocking_keys_are_locked_once_each_until_the_transaction_ends_and_a_rival_waits(
    stack: Stack, schema: str
) -> None:
    pools = [await _pool(stack, schema) for _ in range(2)]
    try:
        async with pools[0].acquire() as conn:
            keys = [f"DE:d:key{i}" for i in range(300)] * 2  # each named twice
            async with conn.transaction():
                await store.lock_blocking_keys(conn, keys)
                held = await conn.fetchval(
                    "select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid() and granted"
                )
                assert held == 300
                async with pools[1].acquire() as rival:
                    await rival.execute("set lock_timeout = '200ms'")
                    with pytest.raises(asyncpg.LockNotAvailableError):
                        await store.lock_blocking_keys(rival, ["DE:d:other", "DE:d:key299"])
            held = await conn.fetchval(
                "select count(*) from pg_locks where locktype = 'advisory' and pid = pg_backend_pid()"
            )
            assert held == 0
    finally:
        for pool in pools:
            await pool.close()


async def test_two_sweepers_racing_expire_each_due_registration_exactly_once(stack: Stack, schema: str) -> None:
    pools = [await _pool(stack, schema) for _ in range(2)]
    try:
        async with pools[0].acquire() as conn:
            await _seed(conn, 400, protected_for=timedelta(seconds=-1))  # all due
            await _seed(conn, 30, protected_for=timedelta(days=30))  # none due
        policies = Policies(ConflictConfig(), SETTINGS)
        sweepers = [
            Sweeper(pool=lambda p=p: p, service="conflict", clock=Clock(), policies=policies, settings=SETTINGS)
            for p in pools
        ]
        results = await asyncio.gather(*(s.sweep() for s in sweepers))
        assert sum(r["expired"] for r in results) == 400
        async with pools[0].acquire() as conn:
            assert await conn.fetchval("select count(*) from registrations where status = 'expired'") == 400
            assert await conn.fetchval("select count(*) from registrations where status = 'approved'") == 30
            per_registration = await conn.fetch("select key, count(*) from outbox group by key having count(*) <> 1")
            assert per_registration == []
            assert await conn.fetchval("select count(*) from outbox") == 400
            # an expired registration is nobody's match any more: its keys are gone with its protection
            assert await conn.fetchval("select count(*) from name_keys") == 30
    finally:
        for p in pools:
            await p.close()


async def test_a_sweep_with_the_clock_moved_past_the_notice_marks_expiring_and_escalates_overdue_reviews(
    pool: Pool,
) -> None:
    async with pool.acquire() as conn:
        await _seed(conn, 5, protected_for=timedelta(days=10))
        await conn.execute("update registrations set expiring_from = protected_until - interval '14 days'")
        await conn.execute(
            "update registrations set status = 'under_review', review_due_at = now() + interval '1 hour', "
            "protected_until = null, expiring_from = null where partner_id in ('p-1', 'p-2')"
        )
        await conn.execute("update clock_offset set offset_s = 7200")
    sweeper = Sweeper(
        pool=lambda: pool,
        service="conflict",
        clock=Clock(controllable=True),
        policies=Policies(ConflictConfig(), SETTINGS),
        settings=SETTINGS,
    )
    assert await sweeper.sweep() == {"expired": 0, "expiring": 3, "escalated": 2}
    assert await sweeper.sweep() == {"expired": 0, "expiring": 0, "escalated": 0}
