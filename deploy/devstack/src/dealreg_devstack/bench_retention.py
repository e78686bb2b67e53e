"""`python -m dealreg_devstack.bench_retention`: how long the inbox's retention takes on a long history.

In a scratch schema of the stack's database (the local one by default; dropped at the end), an inbox of `--rows`
rows received over `--spread-days` days, as a service's would be after that long; then a round of the retention
at `--days`, a round with nothing left to delete, and a round at a third of `--days`. Prints each round's rows
deleted and seconds. The broker's check that comes before a round is not part of it (one request).
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import timedelta

import asyncpg

from dealreg_devstack.provision import provision
from dealreg_devstack.stack import from_environment, local_stack_up
from dealreg_shared.db import PLUMBING_TRACK, create_pool, migrate, service_migrations
from dealreg_shared.envelope import utcnow
from dealreg_shared.inbox_retention import purge_inbox
from dealreg_shared.topics import REGISTRATIONS_RECEIVED


async def bench(rows: int, spread_days: float, days: float) -> None:
    stack = from_environment() or await local_stack_up()
    await provision(stack)
    schema = f"bench_retention_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(stack.admin_dealreg_dsn)
    try:
        await admin.execute(f"create schema {schema}")
        plumbing = [m for m in service_migrations("dealreg_intake") if m.track == PLUMBING_TRACK]
        await migrate(admin, schema=schema, migrations=plumbing)
        print(f"filling {schema}.inbox with {rows:,} rows received over {spread_days:g} days ...", flush=True)
        started = time.monotonic()
        await admin.execute(
            f"insert into {schema}.inbox (event_id, topic, received_at) "
            "select gen_random_uuid()::text, $3, "
            "now() - make_interval(secs => $2 * 86400 * (1 - i::float8 / $1)) from generate_series(1, $1) i",
            rows,
            spread_days,
            REGISTRATIONS_RECEIVED.name,
        )
        await admin.execute(f"vacuum analyze {schema}.inbox")
        size = await admin.fetchval(f"select pg_size_pretty(pg_total_relation_size('{schema}.inbox'))")
        print(f"filled in {time.monotonic() - started:.1f} s: {size} with its index")
        pool = await create_pool(stack.admin_dealreg_dsn, schema=schema)
        try:
            for label, keep in (("a round", days), ("nothing left", days), ("a third", days / 3)):
                started = time.monotonic()
                deleted = await purge_inbox(pool, before=utcnow() - timedelta(days=keep))
                seconds = time.monotonic() - started
                print(f"{label:14} retention {keep:g} days: {deleted:>10,} rows deleted in {seconds:.1f} s")
        finally:
            await pool.close()
    finally:
        await admin.execute(f"drop schema if exists {schema} cascade")
        await admin.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dealreg-bench-retention", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--spread-days", type=float, default=60.0, help="the history's length")
    parser.add_argument("--days", type=float, default=30.0, help="the retention of the first round")
    args = parser.parse_args(argv)
    asyncio.run(bench(args.rows, args.spread_days, args.days))


if __name__ == "__main__":
    main()
