"""Fixtures shared by every layer: the real stack, found in the environment, in containers, or started locally.

Unit tests request none of these and never touch the network.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import ExitStack

import pytest

from dealreg_devstack import kafka_local, postgres_local
from dealreg_devstack.provision import Stack
from dealreg_devstack.stack import resolve


@pytest.fixture(scope="session")
async def stack() -> AsyncIterator[Stack]:
    """A provisioned stack. One this session started locally is stopped at the end (DEALREG_KEEP_STACK=1 keeps it)."""
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # refused connections while the broker starts
    was_running = kafka_local.running() and postgres_local.running()
    with ExitStack() as containers:
        found, how = await resolve(containers)
        yield found
    if how == "local" and not was_running and os.environ.get("DEALREG_KEEP_STACK") != "1":
        kafka_local.down()
        postgres_local.down()


def unique(prefix: str) -> str:
    """Ids and domains no other test uses, so tests never clean up after each other."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"
