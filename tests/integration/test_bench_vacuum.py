"""The benchmark vacuums the warm-up's rows before the ceilings: the services' schemas, and nothing else."""

from __future__ import annotations

import asyncpg
import pytest

from dealreg_devstack.bench.measure import vacuum
from dealreg_devstack.procs import wait_until
from dealreg_devstack.provision import Stack
from tests.conftest import unique

pytestmark = pytest.mark.integration


async def _vacuumed(admin: asyncpg.Connection, schema: str) -> asyncpg.Record:
    row = await admin.fetchrow(
        "select last_vacuum, last_analyze, n_dead_tup from pg_stat_user_tables where schemaname = $1", schema
    )
    assert row is not None
    return row


async def test_the_benchmark_vacuums_the_tables_of_the_schemas_it_names_and_no_others(stack: Stack) -> None:
    named, other = unique("t_vac_"), unique("t_vac_")
    admin = await asyncpg.connect(stack.admin_dealreg_dsn)
    try:
        for schema in (named, other):
            await admin.execute(
                f"create schema {schema}; "
                f"create table {schema}.t (id int primary key, v text) with (autovacuum_enabled = off); "
                f"insert into {schema}.t select i, 'x' from generate_series(1, 1000) i; "
                f"delete from {schema}.t where id % 2 = 0"
            )
        await vacuum(stack.admin_dealreg_dsn, [named])

        async def recorded() -> bool:  # the statistics reach other sessions within a second or so
            return (await _vacuumed(admin, named))["last_vacuum"] is not None

        await wait_until(recorded, timeout_s=10, what="the vacuum of the named schema, in pg_stat_user_tables")
        done = await _vacuumed(admin, named)
        assert done["last_analyze"] is not None
        assert done["n_dead_tup"] == 0
        left = await _vacuumed(admin, other)
        assert left["last_vacuum"] is None
        assert left["last_analyze"] is None
    finally:
        await admin.close()
