"""Postgres plumbing: a pool on the service's own role and a forward-only migration runner per schema."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import TypeAlias

import asyncpg
import structlog

log = structlog.get_logger(__name__)

# what handlers and stores take: a plain connection or one lent by the pool
Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"
Pool: TypeAlias = "asyncpg.Pool[asyncpg.Record]"

# what a database chore may meet and try again later: the server away or refusing, the connection broken
DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


async def every(interval_s: float, chore: Callable[[], Awaitable[object]], *, failed: str) -> None:
    """Run `chore` now, then every `interval_s`, for ever; a round the database fails is logged as `failed` and
    the next round tries again (anything else ends the task, for its supervisor to log and restart)."""
    while True:
        try:
            await chore()
        except DB_ERRORS as exc:
            log.warning(failed, error=repr(exc))
        await asyncio.sleep(interval_s)


_MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


async def create_pool(
    dsn: str, *, schema: str, max_size: int = 5, server_settings: dict[str, str] | None = None
) -> Pool:
    """A pool whose connections see only `schema` (and pg_catalog) on their search path.

    A connection going back to the pool is not sent asyncpg's reset query (`SELECT pg_advisory_unlock_all();
    CLOSE ALL; UNLISTEN *; RESET ALL`): a round trip each time, after every `pool.fetch`, for session state that
    dealreg never leaves behind on a pooled connection. Its advisory locks are transaction-scoped (migrate's is
    unlocked by migrate), its settings are `set local` or given at connect, its cursors live in transactions, and
    the one connection that listens is the outbox relay's own. asyncpg still rolls back a transaction left open
    and drops listener callbacks.
    """
    pool = await asyncpg.create_pool(
        dsn,
        min_size=1,
        max_size=max_size,
        reset=_keep_session,
        server_settings={"search_path": schema, "application_name": f"dealreg-{schema}", **(server_settings or {})},
    )
    assert pool is not None
    return pool


async def _keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """The pool's reset: nothing beyond what asyncpg always does (see `create_pool`)."""


@dataclass(frozen=True)
class Migration:
    track: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations(track: str, package: str) -> list[Migration]:
    """Numbered `NNN_name.sql` files of a package's `migrations` folder, in order."""
    folder: Traversable = resources.files(package) / "migrations"
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append(Migration(track, int(match.group(1)), match.group(2), entry.read_text("utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations of {package} share a number: {sorted(versions)}")
    return sorted(found, key=lambda m: m.version)


PLUMBING_TRACK = "plumbing"


def service_migrations(service_package: str) -> list[Migration]:
    """Inbox and outbox tables (shared), then the service's own migrations."""
    return load_migrations(PLUMBING_TRACK, "dealreg_shared") + load_migrations("service", service_package)


async def migrate(conn: Conn, *, schema: str, migrations: list[Migration]) -> list[str]:
    """Apply what is new, each in its own transaction, under an advisory lock so replicas can start together.

    Forward only: an applied migration whose file changed stops start-up rather than drifting silently.
    """
    applied_now: list[str] = []
    lock_key = f"dealreg.migrate.{schema}"
    await conn.execute("select pg_advisory_lock(hashtext($1))", lock_key)
    try:
        await conn.execute(
            f"""create table if not exists {schema}.schema_migrations (
                    track text not null, version int not null, name text not null, checksum text not null,
                    applied_at timestamptz not null default now(), primary key (track, version))"""
        )
        rows = await conn.fetch(f"select track, version, name, checksum from {schema}.schema_migrations")
        done = {(r["track"], r["version"]): r for r in rows}
        for m in migrations:
            row = done.get((m.track, m.version))
            if row is not None:
                if row["checksum"] != m.checksum:
                    raise RuntimeError(
                        f"migration {m.track}/{m.version:03d}_{m.name} was changed after it was applied "
                        f"to schema {schema}; add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(f"set local search_path to {schema}")
                await conn.execute(m.sql)
                await conn.execute(
                    f"insert into {schema}.schema_migrations (track, version, name, checksum) values ($1, $2, $3, $4)",
                    m.track,
                    m.version,
                    m.name,
                    m.checksum,
                )
            applied_now.append(f"{m.track}/{m.version:03d}_{m.name}")
            log.info("migration_applied", schema=schema, migration=applied_now[-1])
    finally:
        await conn.execute("select pg_advisory_unlock(hashtext($1))", lock_key)
    return applied_now
