"""`make bench`: the pipeline's throughput, latency, per-stage rates and memory, beside the machine's ceilings.

uv run python -m dealreg_devstack.bench [--seconds 60] [--rate-seconds 30] [--partners 20] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import math
import os
import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiokafka.structs import ConsumerRecord

from dealreg_devstack import kafka_local, postgres_local
from dealreg_devstack.bench.ceilings import RELAY_PARTITIONS, database_ceiling, start_relay, stop_relay
from dealreg_devstack.bench.measure import (
    DATABASE_PREFIX,
    CpuClock,
    Run,
    Sampler,
    Watcher,
    cpu_figures,
    database_connections,
    hop_latencies_ms,
    phase,
    settle,
    vacuum,
    write_json,
)
from dealreg_devstack.bench.workload import BENCH_ID, Submission, make_submissions, onboard_partners, relay_copies
from dealreg_devstack.launcher import start_all, stop_all_while_serving
from dealreg_devstack.paths import state_dir
from dealreg_devstack.provision import SERVICES, provision
from dealreg_devstack.sinks import CountingSmtpSink, WebhookSink
from dealreg_devstack.stack import from_environment, local_stack_up, reset_local
from dealreg_shared.kafka import make_producer
from dealreg_shared.topics import (
    REGISTRATION_STATUS,
    REGISTRATIONS_RECEIVED,
    REGISTRATIONS_SUBMITTED,
    REGISTRATIONS_VETTED,
)

CONFIG_FILE = Path(__file__).with_name("bench.toml")
WINDOW_S = 5.0  # the fixed rate's latency is also reported for each of these, in order
BATCH = 100  # about the batch a stage applies at full speed (DEALREG_BATCH_MAX_RECORDS is the most)
# what a registration of the benchmark's mix may end as; anything else means the run measured something else
# (rate limits or capacity turning registrations away, say) and the summary says so
EXPECTED_OUTCOMES = (
    "approved",
    "under_review",
    "rejected:unauthenticated",
    "rejected:registered_by_another_partner",
    "rejected:duplicate_of_own",  # a conflicting pick can land on a customer the same partner registered
)


def pipeline_finished(record: ConsumerRecord[Any, Any]) -> tuple[str, str] | None:
    """A registration is finished at its decision (conflict stage) or at a rejection before it."""
    if dict(record.headers or ()).get("ce_type") != b"registration.status-changed":
        return None
    data = json.loads(record.value)
    if data["stage"] == "conflict" or data["status"] == "rejected":
        reason = f":{data['reason_code']}" if data["status"] == "rejected" else ""
        return str(data["registration_id"]), f"{data['status']}{reason}"
    return None


def passed(record: ConsumerRecord[Any, Any]) -> tuple[str, str] | None:
    """A registration seen on a topic between the stages (received, vetted)."""
    return str(json.loads(record.value)["registration_id"]), "passed"


def relay_finished(record: ConsumerRecord[Any, Any]) -> tuple[str, str] | None:
    value = dict(record.headers or ()).get(BENCH_ID)
    return (value.decode(), "relayed") if value else None


def cycle_fresh(submissions: list[Submission]) -> Iterator[Submission]:
    """The relay's endless supply: the same records again and again, each time with new ids."""
    for _ in itertools.count():
        yield from relay_copies(submissions)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    run_id = uuid.uuid4().hex[:6]
    stack = from_environment()
    local = stack is None
    if stack is None:
        # earlier runs' registrations (active for months) would be candidates of this run's: start from empty
        print("bench: starting a fresh local stack (its data is wiped: a benchmark measures from empty tables)")
        reset_local()
        stack = await local_stack_up()
    await provision(stack)
    log_dir = state_dir() / "logs" / f"bench-{run_id}"
    smtp, hooks = CountingSmtpSink(), WebhookSink()  # the mail is counted, not kept
    await smtp.start()
    await hooks.start()
    config = {"DEALREG_CONFIG_FILE": str(CONFIG_FILE)}
    services = await start_all(
        stack,
        log_dir=log_dir,
        extra_env={s: config for s in SERVICES} | {"notify": config | {"DEALREG_SMTP_PORT": str(smtp.port)}},
    )
    producer = make_producer(stack.kafka_bootstrap, client_id="bench-publisher")
    await producer.start()
    sampler = Sampler({name: (p.health_port, p.proc.pid) for name, p in services.items()})
    processes = {name: p.proc.pid for name, p in services.items()} | {"harness": os.getpid()}
    broker, database = (kafka_local.pid(), postgres_local.pid()) if local else (None, None)
    cpu = CpuClock(
        processes | ({"broker": broker} if broker else {}), trees={"postgres": database} if database else None
    )

    async def read_cpu() -> tuple[float, dict[str, float]]:
        """The CPU clock, with each service's database connections as they are now."""
        try:
            cpu.groups = await database_connections(stack.admin_dsn, SERVICES)
        except (OSError, asyncpg.PostgresError) as exc:  # the groups as last read: they are a detail
            print(f"bench: could not list the database's connections ({exc!r})")
        return cpu.read()

    figures: dict[str, Any] = {"run": run_id, "when": datetime.now(UTC).isoformat(), "args": recorded_arguments(args)}
    hop_watchers: list[Watcher] = []
    try:
        print(f"bench {run_id}: onboarding {args.partners} partners, signing {args.registrations} registrations ...")
        partners = await onboard_partners(stack, producer, args.partners, run_id)
        pool = make_submissions(partners, args.registrations, run_id, random.Random(7))  # noqa: S311
        supply = iter(pool)
        watch = Watcher(
            stack.kafka_bootstrap, REGISTRATION_STATUS.name, REGISTRATION_STATUS.partitions, pipeline_finished
        )
        await watch.start()
        await sampler.start()

        async def full_speed(name: str, seconds: float) -> Run:
            run = Run(name)
            watch.runs.append(run)
            await phase(
                producer, REGISTRATIONS_SUBMITTED.name, supply, run, seconds=seconds, window=args.window, label=name
            )
            return run

        if args.warmup_seconds > 0:
            # a fresh broker spends most of its first minutes compiling itself (its JIT took more CPU than its
            # requests did during the first minute at full speed); Postgres and the services warm up too. Measured
            # from here on is what a stack that has been running a while does.
            warm = await full_speed("warm-up (not measured)", args.warmup_seconds)
            figures["warmup_per_s"] = round(warm.throughput(), 1)
            await settle(stack.admin_dealreg_dsn, sampler)
            # the warm-up's dead rows: autovacuum digests them in rounds a minute apart, and a round (16% of a core)
            # ran through most of the relay's measurement. Done now, the ceilings measure the machine and not the
            # pipeline's leftovers; the pipeline's own phases pay autovacuum's rounds as they come
            figures["warmup_vacuum_s"] = round(await vacuum(stack.admin_dealreg_dsn, SERVICES), 1)
            print(f"vacuumed the warm-up's rows in {figures['warmup_vacuum_s']:.1f} s (not measured)")
        figures["database_tx_per_s"] = round(await database_ceiling(stack, seconds=args.db_seconds / 2), 1)
        figures["database_batched_records_per_s"] = round(
            await database_ceiling(stack, seconds=args.db_seconds / 2, batch=BATCH), 1
        )
        print(
            f"database ceiling: {figures['database_tx_per_s']:.0f} stage-like transactions/s (a record each), "
            f"{figures['database_batched_records_per_s']:.0f} records/s in batches of {BATCH}"
        )

        topics, relays = await start_relay(stack, run_id, log_dir)
        watch_relay = Watcher(stack.kafka_bootstrap, topics[-1], RELAY_PARTITIONS, relay_finished)
        await watch_relay.start()
        relay_supply = cycle_fresh(pool[:5000])

        async def relay_phase(name: str, seconds: float) -> Run:
            run = Run(name)
            watch_relay.runs[:] = [run]
            await phase(
                producer,
                topics[0],
                relay_supply,
                run,
                seconds=seconds,
                window=args.window * 4,
                label=f"ceiling: {name}",
            )
            return run

        try:
            if args.relay_warmup_seconds > 0:
                # four consumer groups join first (seconds in which nothing moves), and the relay's processes start
                # cold: the ceiling is what the relay does once it runs, as the pipeline's is after its warm-up
                await relay_phase("relay warm-up", args.relay_warmup_seconds)
            relay_run = await relay_phase("4-hop relay", args.relay_seconds)
        finally:
            await watch_relay.stop()
            stop_relay(relays)
        figures["relay_per_s"] = round(relay_run.throughput(), 1)

        cpu_before = await read_cpu()
        full = await full_speed("pipeline: as fast as it goes", args.seconds)
        cpu_full = await read_cpu()
        figures["pipeline_per_s"] = round(full.throughput(), 1)
        figures["pipeline_finished"] = len(full.finished)
        figures["outcomes_full_speed"] = dict(full.outcomes.most_common())
        figures["stages_full_speed"] = sampler.stage_rates(full.started, full.ended)

        # the latency phase measures the pipeline in a steady state, not draining the full-speed phase's backlog
        settled = await settle(stack.admin_dealreg_dsn, sampler)
        figures["settled_s"] = None if settled is None else round(settled, 1)
        # where the machine's CPU went: shares of a core while at full speed, and the cost of a registration
        # over its whole way (from the burst's start until its last mail was sent)
        figures["cpu_full_speed"] = cpu_figures(cpu_before, cpu_full, len(full.finished))
        figures["cpu_until_idle"] = cpu_figures(cpu_before, await read_cpu(), len(full.finished))
        figures["cpu_count"] = os.cpu_count()
        figures["mails_until_idle"] = smtp.messages
        # the rate at which everything keeps up, mail included: the burst's registrations over the time from its
        # first publication until nothing was left to do
        figures["with_mail_per_s"] = (
            None if settled is None else round(len(full.finished) / (full.ended - full.started + settled), 1)
        )
        rate = args.rate or max(1.0, round(full.throughput() / 2))
        # enough signed registrations left for the whole fixed-rate phase, however fast the earlier phases went
        left = list(supply)
        if (more := math.ceil(rate * args.rate_seconds) + 1 - len(left)) > 0:
            print(f"signing {more} more registrations for the fixed rate (not measured) ...")
            left += make_submissions(partners, more, f"{run_id}-more", random.Random(8))  # noqa: S311
        supply = iter(left)
        fixed = Run("fixed-rate")
        watch.runs.append(fixed)
        # where a registration's time goes: when it leaves intake and vetting too (only in this phase: reading
        # every record of two more topics would take the harness's CPU from the pipeline at full speed)
        hops: dict[str, Run] = {}
        for stage, topic in (("intake", REGISTRATIONS_RECEIVED), ("vetting", REGISTRATIONS_VETTED)):
            hops[stage] = Run(stage, published=fixed.published)
            hop_watch = Watcher(stack.kafka_bootstrap, topic.name, topic.partitions, passed)
            hop_watch.runs.append(hops[stage])
            await hop_watch.start()
            hop_watchers.append(hop_watch)
        cpu_fixed = await read_cpu()
        await phase(
            producer,
            REGISTRATIONS_SUBMITTED.name,
            supply,
            fixed,
            seconds=args.rate_seconds,
            rate=rate,
            label=f"pipeline: offered {rate:.0f}/s",
        )
        # how busy the machine was meanwhile: a stage applies smaller batches at a lower rate, each record costing
        # more, so half the rate is not half the load
        figures["cpu_fixed_rate"] = cpu_figures(cpu_fixed, await read_cpu(), len(fixed.finished))
        figures["fixed_rate_hops_ms"] = hop_latencies_ms(
            fixed.published,
            ("intake", hops["intake"].finished),
            ("vetting", hops["vetting"].finished),
            ("conflict", fixed.finished),
        )
        figures["fixed_rate_offered_per_s"] = rate
        figures["fixed_rate_published"] = len(fixed.published)
        figures["fixed_rate_latency_ms"] = {k: round(v, 1) for k, v in fixed.latencies_ms().items()}
        figures["fixed_rate_latency_windows_ms"] = [
            {k: round(v, 1) for k, v in w.items()} for w in fixed.latency_windows_ms(WINDOW_S)
        ]
        figures["fixed_rate_unfinished"] = len(fixed.published) - len(fixed.finished)
        figures["outcomes_fixed_rate"] = dict(fixed.outcomes.most_common())
        figures["ran_out"] = {
            r.name: round(r.ran_out_after_s, 1) for r in (full, fixed) if r.ran_out_after_s is not None
        }
        figures["send_failures"] = dict(full.send_failures + fixed.send_failures + relay_run.send_failures)
        await watch.stop()
        await sampler.stop()
        figures["peak_rss_mb"] = {k: round(v, 1) for k, v in sampler.peak_rss_mb.items()}
        figures["pipeline_vs_relay"] = round(figures["pipeline_per_s"] / max(figures["relay_per_s"], 1e-9), 3)
    finally:
        for hop_watch in hop_watchers:
            await hop_watch.stop()
        await producer.stop()
        await stop_all_while_serving(services)
        await smtp.stop()
        await hooks.stop()
        if local:
            # what the benchmark left (tens of thousands of registrations, notifications still due) would be
            # in the way of the next demo or test on this stack: the figures are what it keeps
            print("bench: wiping the local stack's data (the benchmark's only)")
            reset_local()
    return figures


def report(f: dict[str, Any]) -> str:
    lat = f.get("fixed_rate_latency_ms", {})
    rss = f.get("peak_rss_mb", {})
    lines = [
        "",
        f"dealreg bench {f['run']} ({f['when'][:19]}Z)",
        "-" * 78,
        *(
            [
                f"{'warm-up, not measured (' + format(f['args']['warmup_seconds'], '.0f') + ' s at full speed)':<48} "
                f"{f['warmup_per_s']:>10.1f} /s"
            ]
            if "warmup_per_s" in f
            else []
        ),
        f"{'end-to-end throughput (submitted -> decided)':<48} {f['pipeline_per_s']:>10.1f} /s   target >= 1000",
        f"{'do-nothing 4-hop relay, same broker and harness':<48} {f['relay_per_s']:>10.1f} /s",
        f"{'pipeline / relay':<48} {f['pipeline_vs_relay']:>10.1%}      target >= 30%",
        f"{'database ceiling (inbox+state+outbox tx)':<48} {f['database_tx_per_s']:>10.1f} /s",
        f"{'  the same work in batches of ' + str(BATCH) + ' (records)':<48} "
        f"{f.get('database_batched_records_per_s', 0):>10.1f} /s",
        f"{'latency at ' + format(f['fixed_rate_offered_per_s'], '.0f') + '/s offered  p50 / p95 / p99':<48} "
        + (
            f"{lat['p50']:>6.0f} / {lat['p95']:.0f} / {lat['p99']:.0f} ms   target p99 < 500"
            if lat
            else "   not measured: no registration was left for it (raise --registrations)"
        ),
        *(
            f"{'  of which the ' + stage + ' hop (to its output)':<48} "
            f"{h['p50']:>6.0f} / {h['p95']:.0f} / {h['p99']:.0f} ms"
            for stage, h in f.get("fixed_rate_hops_ms", {}).items()
            if h
        ),
        *latency_windows_line(f),
        *fixed_rate_machine_line(f),
        f"{'unfinished at the fixed rate':<48} {f['fixed_rate_unfinished']:>10}",
        f"{'idle again after the full-speed phase (all mail sent)':<48} "
        + (
            f"{f['settled_s']:>10.0f} s"
            if f.get("settled_s") is not None
            else "       not: latency measured over a backlog"
        ),
        f"{'  so everything, mail included, kept up with':<48} "
        + (f"{f['with_mail_per_s']:>10.1f} /s" if f.get("with_mail_per_s") is not None else "         -"),
        *([f"{'  mail sent by then (all phases)':<48} {f['mails_until_idle']:>10}"] if "mails_until_idle" in f else []),
        "",
        f"{'stage (service <- topic), at full speed':<62} {'per s':>8} {'peak lag':>8}",
    ]
    for stage, v in sorted(f.get("stages_full_speed", {}).items()):
        lines.append(f"  {stage:<60} {v['per_s']:>8.1f} {v['peak_lag']:>8.0f}")
    lines.append("")
    lines.extend(cpu_lines(f))
    for name in ("full_speed", "fixed_rate"):
        outcomes = f.get(f"outcomes_{name}", {})
        total = max(sum(outcomes.values()), 1)
        lines.append(
            f"outcomes ({name.replace('_', ' ')}): "
            + ", ".join(f"{k} {v} ({v / total:.0%})" for k, v in outcomes.items())
        )
        unexpected = {k: v for k, v in outcomes.items() if k not in EXPECTED_OUTCOMES}
        if unexpected:
            lines.append(f"  WARNING: outcomes outside the workload's mix, counted in the figures above: {unexpected}")
    for name, after_s in f.get("ran_out", {}).items():
        lines.append(
            f"  WARNING: '{name}' published for {after_s:.0f} s only: its signed registrations ran out "
            "(raise --registrations)"
        )
    if f.get("send_failures"):
        lines.append(f"  WARNING: the broker refused some of the benchmark's records (left out): {f['send_failures']}")
    lines.append("")
    lines.append("peak RSS: " + ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items()) + "   (target < 150 MB each)")
    return "\n".join(lines)


def latency_windows_line(f: dict[str, Any]) -> list[str]:
    """The p99 of each few seconds of the fixed rate: a tail spread over the phase, or a few bad moments."""
    windows = f.get("fixed_rate_latency_windows_ms", [])  # each holds a finished registration, so its quantiles
    if len(windows) < 2:
        return []
    return [f"  p99 of each {WINDOW_S:.0f} s, in order (ms): " + " ".join(f"{w['p99']:.0f}" for w in windows)]


def fixed_rate_machine_line(f: dict[str, Any]) -> list[str]:
    """How busy the whole machine was at the fixed rate, and what a registration cost it there."""
    machine = f.get("cpu_fixed_rate", {}).get("machine")
    if not machine or not f.get("cpu_count"):
        return []
    return [
        f"{'  the machine meanwhile (its CPUs, a registration)':<48} "
        f"{machine['core_share'] / f['cpu_count']:>10.0%}      {machine['ms_per_registration']:.2f} ms"
    ]


CPU_NAMES = {
    "harness": "harness (publisher, watcher, mail and webhook sinks)",
    "machine": "the whole machine (every process, the kernel)",
    "stolen": "stolen by the host (a virtual machine's CPUs)",
}


def cpu_name(name: str) -> str:
    """How the summary names a process (or a group of them) whose CPU it counts."""
    if name.startswith(DATABASE_PREFIX):
        return f"database, {name.removeprefix(DATABASE_PREFIX)}'s connections (its pool, its relay)"
    return CPU_NAMES.get(name, name)


def cpu_lines(f: dict[str, Any]) -> list[str]:
    """Where the CPU went: each process's share of a core at full speed, what a registration costs it over its
    whole way (the full-speed burst until its last mail was sent) and at the fixed rate; from the second, the
    most the machine allows."""
    at_full, per_registration = f.get("cpu_full_speed", {}), f.get("cpu_until_idle", {})
    at_rate = f.get("cpu_fixed_rate", {})
    if not at_full:
        return []
    lines = [f"{'CPU (share of a core at full speed, ms a registration)':<62} {'share':>8} {'to idle':>8} {'fixed':>8}"]
    for name in at_full:  # the services, the harness, the broker and the database, then the machine
        ms = [part.get(name, {}).get("ms_per_registration") for part in (per_registration, at_rate)]
        lines.append(
            f"  {cpu_name(name):<60} {at_full[name]['core_share']:>8.0%} "
            + " ".join(f"{v:>8.2f}" if v is not None else f"{'-':>8}" for v in ms)
        )
    machine = per_registration.get("machine", {}).get("ms_per_registration")
    if machine and f.get("cpu_count") and f.get("settled_s") is not None:
        lines.append(
            f"  at {machine:.2f} ms of CPU a registration (its mail included), {f['cpu_count']} CPUs allow at most "
            f"{f['cpu_count'] * 1000 / machine:.0f} registrations/s"
        )
    lines.append("")
    return lines


def recorded_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """The run's arguments as its JSON keeps them (a path as text)."""
    return {name: str(value) if isinstance(value, Path) else value for name, value in vars(args).items()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dealreg-bench", description=__doc__)
    parser.add_argument("--seconds", type=float, default=60, help="the full-speed phase")
    parser.add_argument("--rate-seconds", type=float, default=30, help="the fixed-rate phase")
    parser.add_argument("--rate", type=float, default=0, help="offered rate; default half the full-speed rate")
    parser.add_argument(
        "--warmup-seconds", type=float, default=30, help="the pipeline at full speed first, not measured (0: none)"
    )
    parser.add_argument("--relay-seconds", type=float, default=20)
    parser.add_argument(
        "--relay-warmup-seconds",
        type=float,
        default=5,
        help="the relay first, not measured (its groups join, its processes warm up)",
    )
    parser.add_argument("--db-seconds", type=float, default=10)
    parser.add_argument("--partners", type=int, default=20)
    parser.add_argument("--registrations", type=int, default=60000, help="signed in advance; the phases draw on them")
    parser.add_argument("--window", type=int, default=2000, help="most unfinished registrations at full speed")
    parser.add_argument(
        "--runs",
        type=int,
        default=1,
        help="runs in a row, each on a fresh stack (the local one), then a table comparing them",
    )
    parser.add_argument(
        "--json",
        type=Path,
        help="where to write the figures (default .dealreg/bench/<time>.json; with several runs, a list of them)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def runs_table(runs: list[dict[str, Any]]) -> str:
    """Runs side by side, and each figure's spread: the machine's speed moves between runs, the ratio to the relay
    and the CPU a registration much less."""
    rows = [
        (
            f["run"],
            f"{f['pipeline_per_s']:.1f}/s",
            f"{f['relay_per_s']:.0f}/s",
            f"{f['pipeline_vs_relay']:.1%}",
            f"{lat['p99']:.0f} ms at {f['fixed_rate_offered_per_s']:.0f}/s"
            if (lat := f["fixed_rate_latency_ms"])
            else "-",
            f"{f.get('cpu_until_idle', {}).get('machine', {}).get('ms_per_registration', 0):.2f} ms",
            " ".join(f"{v:.0f}" for v in f.get("peak_rss_mb", {}).values()),
        )
        for f in runs
    ]
    head = (
        "run",
        "end to end",
        "relay",
        "pipeline / relay",
        "p99 at the fixed rate",
        "CPU a registration",
        "peak RSS (MB)",
    )
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    lines = [f"{len(runs)} runs in a row (compare the ratio to the relay first: the machine's speed moves)"]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [head, *rows]]
    spread = {
        "end to end (/s)": [f["pipeline_per_s"] for f in runs],
        "pipeline / relay (%)": [f["pipeline_vs_relay"] * 100 for f in runs],
        "p99 at the fixed rate (ms)": [f["fixed_rate_latency_ms"]["p99"] for f in runs if f["fixed_rate_latency_ms"]],
    }
    lines += [f"  {name}: {min(v):.1f} to {max(v):.1f}" for name, v in spread.items() if v]
    return "\n".join(lines)


def main() -> None:
    args = parse_args()
    runs = []
    for n in range(1, args.runs + 1):
        if args.runs > 1:
            print(f"bench: run {n} of {args.runs}")
        started = time.monotonic()
        figures = asyncio.run(bench(args))
        figures["bench_seconds"] = round(time.monotonic() - started, 1)
        print(report(figures))
        if args.runs == 1 or args.json is None:
            path = args.json or state_dir() / "bench" / f"bench-{figures['when'][:19].replace(':', '')}.json"
            write_json(path, figures)
            print(f"\nfigures: {path}")
        runs.append(figures)
    if args.runs > 1:
        print("\n" + runs_table(runs))
        if args.json is not None:
            write_json(args.json, runs)
            print(f"\nfigures of the {args.runs} runs: {args.json}")


if __name__ == "__main__":
    main()
