"""`python -m dealreg_conflict.benchmark`: conflict decision time with 10k and 1M active registrations.

Each size gets a throwaway schema with conflict's migrations, seeded in one `insert ... select` over
generate_series (indexes built after the load), then a few hundred decisions go through the same store
calls, in the same transaction shape, as a registration.vetted event does: half of them near-duplicates of
seeded customers (by name, no domain), half new customers. Prints per-decision latency for each size.

    DEALREG_ADMIN_DATABASE_URL=postgresql://admin:pw@host:5432/dealreg python -m dealreg_conflict.benchmark
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from dataclasses import dataclass

import asyncpg

from dealreg_conflict import store
from dealreg_conflict.domain import Candidate, Policy, blocking_keys, decide, detect_conflicts
from dealreg_conflict.matching import clean_company_name, name_keys
from dealreg_shared.db import load_migrations, migrate, service_migrations
from dealreg_shared.envelope import utcnow

COUNTRIES = ["US", "DE", "GB", "FR", "NL", "ES", "IT", "JP", "AU", "CA", "BR", "IN", "SE", "PL", "CH", "AT"]
GENERIC = ["solutions", "group", "services", "technology", "global", "systems", "consulting", "partners"]
POLICY = Policy(protection_days=90, resolution="first_come", approval="auto", extension_cap_days=90)


def vocabulary(size: int, seed: int = 7) -> list[str]:
    """Pronounceable made-up words: company names that share words the way real ones do."""
    rng = random.Random(seed)  # noqa: S311 - made-up company names, not secrets
    onsets, vowels, codas = "b c d f g h k l m n p r s t v w z br tr st pl kr gr".split(), "aeiou", "nrstlmx"
    words: set[str] = set()
    while len(words) < size:
        syllables = rng.randint(2, 3)
        words.add("".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(syllables)) + rng.choice(codas))
    return sorted(words)


def seeded_name(i: int, vocab: list[str]) -> str:
    """The name of seeded registration i (the same formula as the SQL below, for picking duplicates)."""
    # the first word runs through the vocabulary, the second moves on each lap: every name is distinct
    first, second = vocab[(i * 7919) % len(vocab)], vocab[((i // len(vocab)) * 104_729 + 13) % len(vocab)]
    return f"{first} {second} {GENERIC[i % len(GENERIC)]}"


SEED_SQL = """
insert into registrations (registration_id, partner_id, customer_key, registrable_domain, company_name, name_norm,
    country, product_lines, region, status, protected_until, expiring_from, decided_at, data)
select gen_random_uuid(), 'p-seed-' || (i % 500), coalesce(n.domain, 'name:' || lower(n.country) || ':' || n.name),
    n.domain, n.name, n.name, n.country, array['analytics'], 'default', 'approved', $4, $4, now(), '{}'
from generate_series(0::bigint, $1 - 1) as i,
lateral (select
    ($2::text[])[1 + ((i * 7919) % cardinality($2::text[]))::int] || ' ' ||
        ($2::text[])[1 + (((i / cardinality($2::text[])) * 104729 + 13) % cardinality($2::text[]))::int] || ' ' ||
        ($5::text[])[1 + (i % cardinality($5::text[]))::int] as name,
    case when i % 10 < 7 then 'seed' || i || '.com' end as domain,
    ($3::text[])[1 + (i % cardinality($3::text[]))::int] as country) as n
"""

# matching.name_keys written in SQL, so a million names are keyed inside the database (checked against the
# Python version before measuring)
KEYS_SQL = """
insert into name_keys (key, registration_id)
select k.key, r.registration_id from registrations as r,
lateral (select (select string_agg(w, '' order by w collate "C")
                 from unnest(string_to_array(r.name_norm, ' ')) as w) as sorted) as s,
lateral (select r.country || ':k:' || replace(r.name_norm, ' ', '') as key
         union select r.country || ':d:' || s.sorted
         union select r.country || ':d:' || left(s.sorted, p - 1) || substr(s.sorted, p + 1)
               from generate_series(1, length(s.sorted)) as p) as k
"""

KEYS_CHECK_SQL = """
select r.name_norm, r.country, array_agg(k.key) as keys
from registrations as r join name_keys as k using (registration_id) group by r.registration_id limit 50
"""


@dataclass
class Result:
    active: int
    seed_s: float
    latencies_ms: list[float]
    candidates: list[int]


async def _schema(admin: asyncpg.Connection, active: int) -> str:
    schema = f"bench_{active}_{uuid.uuid4().hex[:6]}"
    await admin.execute(f"create schema {schema}")
    await migrate(admin, schema=schema, migrations=service_migrations("dealreg_conflict"))
    return schema


async def seed(dsn: str, active: int, vocab: list[str]) -> tuple[str, float]:
    """A schema holding `active` approved registrations; the registrations' indexes are built after the load."""
    admin = await asyncpg.connect(dsn)
    try:
        schema = await _schema(admin, active)
        started = time.perf_counter()
        await admin.execute(f"set search_path to {schema}, conflict")
        indexes = await admin.fetch(
            "select indexname, indexdef from pg_indexes where schemaname = $1 and tablename = 'registrations' "
            "and indexname <> 'registrations_pkey'",
            schema,
        )
        for index in indexes:
            await admin.execute(f"drop index {schema}.{index['indexname']}")
        # keys are loaded without their indexes and get them back after: the same table, built in bulk
        await admin.execute("alter table name_keys drop constraint name_keys_pkey")
        until = utcnow().replace(year=utcnow().year + 5)
        await admin.execute(SEED_SQL, active, vocab, COUNTRIES, until, GENERIC)
        await admin.execute(KEYS_SQL)
        for index in indexes:
            await admin.execute(index["indexdef"])
        await admin.execute("alter table name_keys add primary key (key, registration_id)")
        await admin.execute("analyze registrations")
        await admin.execute("analyze name_keys")
        for row in await admin.fetch(KEYS_CHECK_SQL):
            assert set(row["keys"]) == name_keys(row["name_norm"], row["country"]), row["name_norm"]
        return schema, time.perf_counter() - started
    finally:
        await admin.close()


async def measure(
    dsn: str, schema: str, active: int, vocab: list[str], decisions: int
) -> tuple[list[float], list[int]]:
    rng = random.Random(active)  # noqa: S311 - which customers to duplicate, not secrets
    conn = await asyncpg.connect(dsn, server_settings={"search_path": f"{schema}, conflict"})
    latencies: list[float] = []
    candidates: list[int] = []
    try:
        for n in range(decisions):
            i = rng.randrange(active)
            country = COUNTRIES[i % len(COUNTRIES)]
            if n % 2 == 0:  # a near-duplicate of a seeded customer, written differently, without a domain
                company = seeded_name(i, vocab).upper() + " GmbH"
            else:  # a new customer
                company = f"{rng.choice(vocab)} {rng.choice(vocab)} {rng.choice(GENERIC)}"
            name = clean_company_name(company)
            new = Candidate(
                str(uuid.uuid4()),
                f"p-bench-{n}",
                f"name:{country.lower()}:{name}",
                frozenset({"analytics"}),
                "new",
                None,
                name,
                country,
                "default",
            )
            started = time.perf_counter()
            async with conn.transaction():
                await store.lock_blocking_keys(conn, blocking_keys(new))
                now = utcnow()
                [active_rows] = await store.get_active_candidates(conn, [new], now=now)
                territories = await store.get_active_territories(conn, product_lines=["analytics"], now=now)
                outcome = decide(new, detect_conflicts(new, active_rows), POLICY, now, territories)
                await store.insert_registration(
                    conn,
                    registration_id=uuid.UUID(new.registration_id),
                    partner_id=new.partner_id,
                    customer_key=new.customer_key,
                    registrable_domain=None,
                    company_name=company,
                    name_norm=name,
                    country=country,
                    product_lines=["analytics"],
                    region="default",
                    status=outcome.status,
                    reason_code=outcome.reason_code,
                    protected_until=outcome.protected_until,
                    expiring_from=None,
                    review_due_at=None,
                    decided_at=now,
                    decided_by="benchmark",
                    data={},
                )
            latencies.append((time.perf_counter() - started) * 1000)
            candidates.append(len(active_rows))
    finally:
        await conn.close()
    return latencies, candidates


def _report(r: Result) -> None:
    lat = sorted(r.latencies_ms)
    p95 = lat[int(len(lat) * 0.95) - 1]
    print(
        f"active {r.active:>9,}: seeded in {r.seed_s:6.1f}s | decision ms: median {statistics.median(lat):6.2f}, "
        f"mean {statistics.fmean(lat):6.2f}, p95 {p95:6.2f}, max {lat[-1]:6.2f} | "
        f"candidates per decision: mean {statistics.fmean(r.candidates):.2f}, max {max(r.candidates)}"
    )


async def run(dsn: str, sizes: list[int], decisions: int, keep: bool) -> None:
    vocab = vocabulary(3000)
    assert load_migrations("service", "dealreg_conflict"), "conflict's migrations are missing"
    for active in sizes:
        schema, seed_s = await seed(dsn, active, vocab)
        try:
            await measure(dsn, schema, active, vocab, 20)  # warm the caches and the prepared statements
            latencies, candidates = await measure(dsn, schema, active, vocab, decisions)
            _report(Result(active, seed_s, latencies, candidates))
        finally:
            if not keep:
                admin = await asyncpg.connect(dsn)
                await admin.execute(f"drop schema {schema} cascade")
                await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", default=os.environ.get("DEALREG_ADMIN_DATABASE_URL", ""), help="a superuser DSN")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--decisions", type=int, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the seeded schemas")
    args = parser.parse_args()
    if not args.dsn:
        parser.error("give --dsn or DEALREG_ADMIN_DATABASE_URL (a superuser on the dealreg database)")
    asyncio.run(run(args.dsn, args.sizes, args.decisions, args.keep))


if __name__ == "__main__":
    main()
