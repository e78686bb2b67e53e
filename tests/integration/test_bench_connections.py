"""The benchmark counts the database's CPU for each service apart: it finds each one's connections by name."""

from __future__ import annotations

import asyncpg
import pytest

from dealreg_devstack.bench.measure import DATABASE_PREFIX, database_connections
from dealreg_devstack.provision import Stack

pytestmark = pytest.mark.integration


async def test_a_services_pool_and_relay_connections_are_its_and_an_operators_are_no_ones(stack: Stack) -> None:
    # the names the services' pools and relays give their connections (dealreg_shared.db, dealreg_shared.outbox)
    names = {"pool": "dealreg-intake", "relay": "dealreg-intake-outbox", "other": "dealreg-cli"}
    conns = {
        k: await asyncpg.connect(stack.admin_dealreg_dsn, server_settings={"application_name": v})
        for k, v in names.items()
    }
    try:
        pids = {k: c.get_server_pid() for k, c in conns.items()}
        groups = await database_connections(stack.admin_dsn, ["intake", "notify"])
        assert {pids["pool"], pids["relay"]} <= set(groups[DATABASE_PREFIX + "intake"])
        assert pids["other"] not in {pid for members in groups.values() for pid in members}
        assert pids["pool"] not in groups[DATABASE_PREFIX + "notify"]
    finally:
        for c in conns.values():
            await c.close()
