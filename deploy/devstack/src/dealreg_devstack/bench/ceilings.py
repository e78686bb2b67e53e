"""The ceilings the pipeline is compared with: a do-nothing four-hop relay, and the database's own rate."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import uuid
from pathlib import Path

import asyncpg

from dealreg_devstack.launcher import child_process
from dealreg_devstack.procs import tail
from dealreg_devstack.provision import Stack
from dealreg_shared.kafka import ensure_topics
from dealreg_shared.topics import Topic

HOPS = 4
RELAY_PARTITIONS = 6


async def start_relay(stack: Stack, run: str, log_dir: Path) -> tuple[list[str], list[subprocess.Popen[bytes]]]:
    """Topics bench.relay.<run>.0..4 and four relay processes between them; returns (topics, processes)."""
    topics = [Topic(f"bench.relay.{run}.{i}", RELAY_PARTITIONS, "registration", "bench relay") for i in range(HOPS + 1)]
    await ensure_topics(stack.kafka_bootstrap, topics)
    procs = []
    for i in range(HOPS):
        log = (log_dir / f"relay-{i}.log").open("ab")
        procs.append(
            child_process(
                [
                    sys.executable,
                    "-m",
                    "dealreg_devstack.bench.relay",
                    stack.kafka_bootstrap,
                    topics[i].name,
                    topics[i + 1].name,
                    f"bench-relay-{run}-{i}",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        )
    for p, i in zip(procs, range(HOPS), strict=True):
        if p.poll() is not None:
            raise RuntimeError(f"relay hop {i} died: {tail(log_dir / f'relay-{i}.log')}")
    return [t.name for t in topics], procs


def stop_relay(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()


async def database_ceiling(stack: Stack, *, seconds: float = 10, workers: int = 4, batch: int = 1) -> float:
    """Records per second of a stage's kind of work: inbox row, state row, outbox row, `batch` records to a
    transaction and its commit (fsync on); batch=1 is one transaction per record."""
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(stack.admin_dealreg_dsn)
    await admin.execute(f"""
        create schema {schema};
        create table {schema}.inbox (event_id text primary key, topic text not null,
                                     received_at timestamptz default now());
        create table {schema}.state (id uuid primary key, data jsonb not null);
        create table {schema}.outbox (id bigserial primary key, topic text, key bytea, value bytea, headers jsonb,
                                      created_at timestamptz default now(), published_at timestamptz);
    """)
    payload = '{"customer": {"company_name": "Contoso GmbH", "domain": "contoso.de"}, "amount": "48000.00"}'
    done = 0
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        nonlocal done
        conn = await asyncpg.connect(stack.admin_dealreg_dsn, server_settings={"search_path": schema})
        try:
            while time.monotonic() < deadline:
                async with conn.transaction():
                    # as a stage applies a batch: one inbox statement, the records' own writes, one outbox one
                    await conn.execute(
                        "insert into inbox (event_id, topic) select unnest($1::text[]), 't'",
                        [str(uuid.uuid4()) for _ in range(batch)],
                    )
                    for _ in range(batch):
                        await conn.execute("insert into state (id, data) values ($1, $2::jsonb)", uuid.uuid4(), payload)
                    await conn.execute(
                        "insert into outbox (topic, key, value, headers) "
                        "select 't', 'k', v, '[]' from unnest($1::bytea[]) v",
                        [payload.encode()] * batch,
                    )
                done += batch
        finally:
            await conn.close()

    started = time.monotonic()
    try:
        await asyncio.gather(*(worker() for _ in range(workers)))
    finally:
        await admin.execute(f"drop schema {schema} cascade")
        await admin.close()
    return done / (time.monotonic() - started)
