"""What the integration tests share: a throwaway schema with a service's plumbing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from dealreg_devstack.provision import Stack
from dealreg_shared.db import PLUMBING_TRACK, create_pool, migrate, service_migrations
from tests.conftest import unique


@dataclass
class Plumbing:
    pool: asyncpg.Pool
    schema: str
    dsn: str


@pytest.fixture
async def plumbing(stack: Stack) -> AsyncIterator[Plumbing]:
    """A throwaway schema with the inbox/outbox tables, as a service would have it."""
    schema = unique("t_")
    admin = await asyncpg.connect(stack.admin_dealreg_dsn)
    await admin.execute(f"create schema {schema}")
    plumbing_only = [m for m in service_migrations("dealreg_intake") if m.track == PLUMBING_TRACK]
    await migrate(admin, schema=schema, migrations=plumbing_only)
    await admin.close()
    pool = await create_pool(stack.admin_dealreg_dsn, schema=schema)
    yield Plumbing(pool, schema, stack.admin_dealreg_dsn)
    await pool.close()
