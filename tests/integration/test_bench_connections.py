"""The benchmark counts the database's CPU for each service apart: it finds each one's connections by name."""

from __future__ import annotations

import asyncpg
import pytest

from dealreg_devstack.bench.measure import DATABASE_PREFIX, database_connections
from dealreg_devstack.provision import Stack
from dealreg_shared.db import create_pool
from dealreg_shared.outbox import OutboxRelay

pytestmark = pytest.mark.integration


async def test_a_services_pool_and_relay_connections_are_its_and_an_operators_are_no_ones(stack: Stack) -> None:
    # connected as the services connect (their pool, their relay), and one of an operator's
    pool = await create_pool(stack.admin_dealreg_dsn, schema="intake", max_size=1)
    relay = await OutboxRelay(dsn=stack.admin_dealreg_dsn, schema="intake", producer=None).connect()  # type: ignore[arg-type]
    other = await asyncpg.connect(stack.admin_dealreg_dsn, server_settings={"application_name": "dealreg-cli"})
    try:
        async with pool.acquire() as conn:
            pool_pid = conn.get_server_pid()
        groups = await database_connections(stack.admin_dsn, ["intake", "notify"])
        assert {pool_pid, relay.get_server_pid()} <= set(groups[DATABASE_PREFIX + "intake"])
        assert other.get_server_pid() not in {pid for members in groups.values() for pid in members}
        assert pool_pid not in groups[DATABASE_PREFIX + "notify"]
    finally:
        await pool.close()
        await relay.close()
        await other.close()
