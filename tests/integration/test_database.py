"""The database plumbing on a real Postgres: migrations, the pool, and each service's role confined to its schema."""

from __future__ import annotations

import asyncio
import dataclasses

import asyncpg
import pytest

from dealreg_devstack.provision import SERVICES, Stack
from dealreg_shared.db import PLUMBING_TRACK, Migration, create_pool, load_migrations, migrate, service_migrations
from tests.conftest import unique

pytestmark = pytest.mark.integration


async def _fresh_schema(stack: Stack) -> str:
    schema = unique("t_")
    conn = await asyncpg.connect(stack.admin_dealreg_dsn)
    await conn.execute(f"create schema {schema}")
    await conn.close()
    return schema


async def test_migrations_apply_once_even_when_replicas_start_together(stack: Stack) -> None:
    schema = await _fresh_schema(stack)
    migrations = service_migrations("dealreg_conflict")
    conns = [await asyncpg.connect(stack.admin_dealreg_dsn) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c, schema=schema, migrations=migrations) for c in conns))
        applied = sorted(name for result in results for name in result)
        assert applied == sorted(f"{m.track}/{m.version:03d}_{m.name}" for m in migrations)
        assert await migrate(conns[0], schema=schema, migrations=migrations) == []
        count = await conns[0].fetchval(f"select count(*) from {schema}.schema_migrations")
        assert count == len(migrations)
    finally:
        for c in conns:
            await c.close()


async def test_a_changed_applied_migration_stops_start_up(stack: Stack) -> None:
    schema = await _fresh_schema(stack)
    original = load_migrations(PLUMBING_TRACK, "dealreg_shared")
    conn = await asyncpg.connect(stack.admin_dealreg_dsn)
    try:
        await migrate(conn, schema=schema, migrations=original)
        edited: list[Migration] = [dataclasses.replace(original[0], sql=original[0].sql + "\n-- edited")]
        with pytest.raises(RuntimeError, match="was changed after it was applied"):
            await migrate(conn, schema=schema, migrations=edited)
    finally:
        await conn.close()


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_role_can_touch_only_its_own_schema(stack: Stack, service: str) -> None:
    conn = await asyncpg.connect(stack.service_dsn(service))
    try:
        assert await conn.fetchval("show search_path") == service
        await conn.execute(f"create table if not exists {service}.role_probe (id int)")
        for other in SERVICES:
            if other == service:
                continue
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.fetch(f"select * from {other}.inbox limit 1")
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(f"create table {other}.intruder (id int)")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("create table public.intruder (id int)")
    finally:
        await conn.close()


async def test_a_connection_goes_back_to_the_pool_without_a_reset_round_trip(stack: Stack) -> None:
    schema = await _fresh_schema(stack)
    pool = await create_pool(stack.admin_dealreg_dsn, schema=schema, max_size=1)
    observer = await asyncpg.connect(stack.admin_dealreg_dsn)
    try:
        async with pool.acquire() as conn:
            pid = await conn.fetchval("select pg_backend_pid()")
        assert await pool.fetchval("select 'the last statement'") == "the last statement"  # the same connection
        # with asyncpg's default the session's last statement would be its reset query, sent on release
        last = await observer.fetchval("select query from pg_stat_activity where pid = $1", pid)
        assert last == "select 'the last statement'"
    finally:
        await observer.close()
        await pool.close()


async def test_a_transaction_left_open_is_still_rolled_back_when_its_connection_goes_back(stack: Stack) -> None:
    schema = await _fresh_schema(stack)
    pool = await create_pool(stack.admin_dealreg_dsn, schema=schema, max_size=1)
    try:
        conn = await pool.acquire()
        await conn.execute("begin")
        await conn.execute(f"create table {schema}.left_open (id int)")
        await pool.release(conn)
        async with pool.acquire() as again:
            assert not again.is_in_transaction()
            assert await again.fetchval("select to_regclass($1)::text", f"{schema}.left_open") is None
    finally:
        await pool.close()


async def test_migrating_on_a_pooled_connection_leaves_no_session_lock_behind(stack: Stack) -> None:
    """The pool no longer unlocks a session's advisory locks on release: migrate must, even when it fails."""
    schema = await _fresh_schema(stack)
    migrations = service_migrations("dealreg_vetting")
    pool = await create_pool(stack.admin_dealreg_dsn, schema=schema, max_size=1)
    observer = await asyncpg.connect(stack.admin_dealreg_dsn)
    try:
        async with pool.acquire() as conn:
            pid = await conn.fetchval("select pg_backend_pid()")
            assert await migrate(conn, schema=schema, migrations=migrations)
            edited = [dataclasses.replace(migrations[0], sql=migrations[0].sql + "\n-- edited")]
            with pytest.raises(RuntimeError, match="was changed after it was applied"):
                await migrate(conn, schema=schema, migrations=edited)
        held = await observer.fetchval(
            "select count(*) from pg_locks where locktype = 'advisory' and pid = $1 and granted", pid
        )
        assert held == 0
    finally:
        await observer.close()
        await pool.close()
