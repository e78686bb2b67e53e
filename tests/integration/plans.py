"""What a statement's plan costs, counted in shared buffers: the work it does, whatever the machine's speed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import asyncpg


def plan_nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A plan's node and all below it (EXPLAIN's JSON)."""
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


def _blocks(node: dict[str, Any]) -> int:
    return int(node["Shared Hit Blocks"]) + int(node["Shared Read Blocks"])


def total_buffers(plan: dict[str, Any]) -> int:
    """A plan's shared buffers, all of them. A node counts its children's with its own, but a data-modifying CTE
    that nothing reads (`with gone as (delete ...) update ...`) runs after the statement's top node has finished:
    its buffers are its own node's alone, and are added here."""
    nodes = list(plan_nodes(plan))
    read = {n["CTE Name"] for n in nodes if n["Node Type"] == "CTE Scan"}
    unread = [n for n in nodes if n.get("Subplan Name", "").startswith("CTE ") and n["Subplan Name"][4:] not in read]
    return sum(_blocks(n) for n in [plan, *unread])


async def buffers(conn: asyncpg.Connection, sql: str, *args: Any) -> int:
    """Shared buffers a statement touches (run, then rolled back)."""
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute("set local statement_timeout = '60s'")  # a plan that reads everything: minutes
        [plan] = json.loads(await conn.fetchval("explain (analyze, buffers, format json) " + sql, *args))
    finally:
        await transaction.rollback()
    return total_buffers(plan["Plan"])


async def buffers_prepared(conn: asyncpg.Connection, sql: str, *args: Any) -> int:
    """Shared buffers a statement this connection prepared touches when run again as prepared (then rolled back):
    with the plan the connection keeps, not one made afresh."""
    name = await conn.fetchval("select name from pg_prepared_statements where statement = $1", sql)
    assert name is not None, "the connection never prepared this statement"
    # EXECUTE takes no bind parameters: its arguments are literals, cast to the statement's own parameter types
    literals = ", ".join(f"'{{{','.join(map(str, a))}}}'" if isinstance(a, list) else f"'{a}'" for a in args)
    return await buffers(conn, f"execute {name}({literals})")
