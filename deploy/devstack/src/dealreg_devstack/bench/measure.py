"""Measuring a run: publish (closed loop or fixed rate), see each record finish, sample the services."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from dealreg_devstack.bench.workload import Submission

# a record of the watched topic -> (the id it finishes, the outcome: "approved", "rejected:rate_limited", ...)
Finished = Callable[[Any], tuple[str, str] | None]


@dataclass
class Run:
    name: str
    published: dict[str, float] = field(default_factory=dict)
    finished: dict[str, float] = field(default_factory=dict)
    outcomes: Counter[str] = field(default_factory=Counter)
    send_failures: Counter[str] = field(default_factory=Counter)  # records the broker did not take, by error
    started: float = 0.0
    ended: float = 0.0
    progressed: asyncio.Event = field(default_factory=asyncio.Event)
    logged_at: float = -5.0  # when progress was last written to a log (not a terminal)
    ran_out_after_s: float | None = None  # the supply of signed registrations ended the publishing this early

    def throughput(self) -> float:
        """Finished per second over the middle 80% of the run (ramp-up and tail left out)."""
        times = sorted(self.finished.values())
        if len(times) < 10:
            return 0.0
        lo, hi = times[len(times) // 10], times[len(times) * 9 // 10]
        return (len(times) * 8 // 10) / max(hi - lo, 1e-9)

    def latencies_ms(self) -> dict[str, float]:
        return quantiles_ms([self.finished[i] - self.published[i] for i in self.finished if i in self.published])

    def latency_windows_ms(self, width_s: float) -> list[dict[str, float]]:
        """The latency quantiles of the registrations published in each `width_s` of the run, in order: whether
        the tail is spread over the run or comes from a few moments (a vacuum round, a checkpoint)."""
        windows: dict[int, list[float]] = {}
        for i, at in self.published.items():
            if i in self.finished:
                windows.setdefault(int((at - self.started) // width_s), []).append(self.finished[i] - at)
        return [{"from_s": n * width_s, "n": len(windows[n]), **quantiles_ms(windows[n])} for n in sorted(windows)]


def quantiles_ms(seconds: list[float]) -> dict[str, float]:
    """p50, p95, p99 and the maximum of durations in seconds, in milliseconds ({} for none)."""
    lat = sorted(s * 1000 for s in seconds)
    if not lat:
        return {}
    return {
        name: lat[min(len(lat) - 1, int(q * len(lat)))] for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
    } | {"max": lat[-1]}


def hop_latencies_ms(published: dict[str, float], *passed: tuple[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Where the time went: for the registrations seen at every point, the quantiles of each hop, from publication
    to the first point, from it to the second, ... (points in order, each a name and id -> when it was seen)."""
    through = [i for i in published if all(i in seen for _, seen in passed)]
    out: dict[str, dict[str, float]] = {}
    before = published
    for name, seen in passed:
        out[name] = quantiles_ms([seen[i] - before[i] for i in through])
        before = seen
    return out


class Watcher:
    """Reads a topic from its current end and notes when each id finishes."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, finished: Finished) -> None:
        self.bootstrap, self.topic, self.partitions, self.finished_id = bootstrap, topic, partitions, finished
        self.runs: list[Run] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            group_id=None,
            enable_auto_commit=False,
            client_id=f"bench-watch-{uuid.uuid4().hex[:6]}",
            # the broker answers a fetch as soon as a record arrives; the wait only bounds an empty one. At 20 ms the
            # watchers' empty fetches took 7% of a core from the broker of the machine being measured, at 2/s
            fetch_max_wait_ms=500,
        )
        await self.consumer.start()
        tps = [TopicPartition(self.topic, p) for p in range(self.partitions)]
        self.consumer.assign(tps)
        await self.consumer.seek_to_end(*tps)
        for tp in tps:
            await self.consumer.position(tp)
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        await self.consumer.stop()

    async def _loop(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100, max_records=5000)
            now = time.monotonic()
            for items in batch.values():
                for r in items:
                    seen = self.finished_id(r)
                    if seen is None:
                        continue
                    rid, outcome = seen
                    for run in self.runs:
                        if rid in run.published and rid not in run.finished:
                            run.finished[rid] = now
                            run.outcomes[outcome] += 1
                            run.progressed.set()


async def publish(
    producer: AIOKafkaProducer,
    topic: str,
    pool: Iterator[Submission],
    run: Run,
    *,
    seconds: float,
    window: int | None = None,
    rate: float | None = None,
    label: str,
) -> None:
    """For `seconds`: closed loop (at most `window` unfinished) or a fixed offered `rate`; progress on stderr."""
    run.started = time.monotonic()
    last_print = 0.0
    n = 0
    while (now := time.monotonic()) - run.started < seconds:
        if rate:
            if (delay := run.started + n / rate - now) > 0:
                await asyncio.sleep(delay)
        while window and len(run.published) - len(run.finished) >= window:
            run.progressed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.progressed.wait(), timeout=0.1)
        s = next(pool, None)
        if s is None:
            run.ran_out_after_s = now - run.started
            break
        run.published[s.registration_id] = time.monotonic()
        sent = await producer.send(topic, value=s.value, key=s.key, headers=s.headers)
        sent.add_done_callback(partial(_sent, run, s.registration_id))
        n += 1
        if time.monotonic() - last_print > 0.5:
            progress(label, run, seconds)
            last_print = time.monotonic()
    await producer.flush()


async def phase(
    producer: AIOKafkaProducer,
    topic: str,
    pool: Iterator[Submission],
    run: Run,
    *,
    seconds: float,
    label: str,
    window: int | None = None,
    rate: float | None = None,
) -> None:
    """One measured phase: publish for `seconds`, then wait until what was published finished."""
    await publish(producer, topic, pool, run, seconds=seconds, window=window, rate=rate, label=label)
    await wait_finished(run, label=label, seconds=seconds)


def _sent(run: Run, registration_id: str, sent: asyncio.Future[Any]) -> None:
    """A record the broker refused never started: it leaves the run, and the run counts why."""
    if not sent.cancelled() and (error := sent.exception()) is not None:
        run.published.pop(registration_id, None)
        run.send_failures[type(error).__name__] += 1


async def wait_finished(run: Run, *, label: str, seconds: float, timeout_s: float = 120) -> None:
    """Until every published record finished (or the timeout); then the run's end is set."""
    deadline = time.monotonic() + timeout_s
    while len(run.finished) < len(run.published) and time.monotonic() < deadline:
        progress(label, run, seconds)
        await asyncio.sleep(0.25)
    run.ended = time.monotonic()
    progress(label, run, seconds, final=True)


def progress(label: str, run: Run, seconds: float, *, final: bool = False) -> None:
    width = 30
    elapsed = time.monotonic() - run.started
    if not sys.stderr.isatty() and not final:
        if elapsed - run.logged_at < 5:
            return  # in a log, a line every five seconds is progress enough
        run.logged_at = elapsed
    filled = width if final else min(width, int(width * elapsed / seconds))
    rate = len(run.finished) / elapsed if elapsed > 0 else 0.0
    start = "\r" if sys.stderr.isatty() else ""
    sys.stderr.write(
        f"{start}{label:<30} [{'#' * filled}{'.' * (width - filled)}] {elapsed:5.0f}s "
        f"finished {len(run.finished):>7}/{len(run.published):<7} {rate:7.0f}/s "
    )
    if final or not sys.stderr.isatty():
        sys.stderr.write("\n")
    sys.stderr.flush()


async def settle(dsn: str, sampler: Sampler, *, timeout_s: float = 300) -> float | None:
    """Wait until the pipeline is idle: every consumer caught up, no notification waiting to be sent (a burst's
    mail outlives its decisions). How long that took, or None if it did not happen within `timeout_s`."""
    started = time.monotonic()
    conn = await asyncpg.connect(dsn)
    try:
        while True:
            pending = await conn.fetchval("select count(*) from notify.notifications where status = 'pending'")
            lag = sum(sum(s.get("lag", {}).values()) for s in sampler.latest().values())
            waited = time.monotonic() - started
            done = (pending == 0 and lag == 0) or waited > timeout_s
            start, end = ("\r", "\n" if done else "") if sys.stderr.isatty() else ("", "\n")
            sys.stderr.write(
                f"{start}{'settling':<30} {waited:5.0f}s lag {lag:>7.0f}, notifications pending {pending:>7}{end}"
            )
            if done:
                return waited if pending == 0 and lag == 0 else None
            await asyncio.sleep(1 if sys.stderr.isatty() else 5)
    finally:
        await conn.close()


async def vacuum(dsn: str, schemas: Iterable[str]) -> float:
    """`VACUUM (ANALYZE)` of these schemas' tables now (what autovacuum would do in its next rounds); its seconds."""
    started = time.monotonic()
    conn = await asyncpg.connect(dsn)
    try:
        tables = await conn.fetch(
            "select format('%I.%I', schemaname, tablename) as name from pg_tables where schemaname = any($1::text[])",
            list(schemas),
        )
        if tables:
            await conn.execute(f"vacuum (analyze) {', '.join(t['name'] for t in tables)}")
    finally:
        await conn.close()
    return time.monotonic() - started


class Sampler:
    """Every second: each service's processed counts and lag per topic (from /metrics), and its RSS."""

    def __init__(self, services: dict[str, tuple[int, int]]) -> None:  # name -> (health port, pid)
        self.services = services
        self.samples: list[dict[str, Any]] = []
        self.peak_rss_mb: dict[str, float] = dict.fromkeys(services, 0.0)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        for name, (_, pid) in self.services.items():
            self.peak_rss_mb[name] = max(self.peak_rss_mb[name], _status_kb(pid, "VmHWM") / 1024)

    async def _loop(self) -> None:
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                sample: dict[str, Any] = {"t": time.monotonic()}
                for name, (port, pid) in self.services.items():
                    self.peak_rss_mb[name] = max(self.peak_rss_mb[name], _status_kb(pid, "VmRSS") / 1024)
                    try:
                        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                    except httpx.HTTPError:
                        continue
                    sample[name] = _parse(text)
                self.samples.append(sample)
                await asyncio.sleep(1)

    def latest(self) -> dict[str, dict[str, dict[str, float]]]:
        """The last sample's figures per service."""
        last = self.samples[-1] if self.samples else {}
        return {name: last[name] for name in self.services if name in last}

    def stage_rates(self, t0: float, t1: float) -> dict[str, dict[str, float]]:
        """Per service and topic: records processed per second between two moments, and the peak lag."""
        inside = [s for s in self.samples if t0 <= s["t"] <= t1]
        out: dict[str, dict[str, float]] = {}
        if len(inside) < 2:
            return out
        first, last = inside[0], inside[-1]
        for name in self.services:
            for topic, count in last.get(name, {}).get("processed", {}).items():
                before = first.get(name, {}).get("processed", {}).get(topic, 0.0)
                lag = max(s.get(name, {}).get("lag", {}).get(topic, 0.0) for s in inside)
                out[f"{name} <- {topic}"] = {"per_s": (count - before) / (last["t"] - first["t"]), "peak_lag": lag}
        return out


_SAMPLE = re.compile(r"^(dealreg_records_processed_total|dealreg_consumer_lag)\{([^}]*)\} ([0-9.e+-]+)$")


def _parse(text: str) -> dict[str, dict[str, float]]:
    processed: dict[str, float] = {}
    lag: dict[str, float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = dict(kv.split("=", 1) for kv in m.group(2).split(","))
        topic = labels.get("topic", "").strip('"')
        if m.group(1) == "dealreg_consumer_lag":
            lag[topic] = lag.get(topic, 0.0) + float(m.group(3))
        else:
            processed[topic] = processed.get(topic, 0.0) + float(m.group(3))
    return {"processed": processed, "lag": lag}


def _status_kb(pid: int, field_name: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return 0.0


class CpuClock:
    """CPU time (user + system) of named processes, read from /proc. A tree counts a process with all its
    descendants, live or already reaped (a database server's backends); a plain process counts itself only (the
    harness started the services and maybe the broker: they are counted apart). What this machine cannot see (a
    stack elsewhere) is left out."""

    def __init__(self, processes: dict[str, int], trees: dict[str, int] | None = None) -> None:  # name -> pid
        self.processes = {name: pid for name, pid in processes.items() if _stat_fields(pid)}
        self.trees = {name: pid for name, pid in (trees or {}).items() if _stat_fields(pid)}
        self.tick = os.sysconf("SC_CLK_TCK")
        # groups of processes that come and go (a service's database connections), named apart: each process's
        # CPU as of the last reading that saw it, so a group's total never falls when one of its processes ends
        # (a process is its pid and its start time: a pid can be given again)
        self.groups: Mapping[str, Iterable[int]] = {}
        self._seen: dict[tuple[int, str], tuple[str, int]] = {}

    def _group_ticks(self) -> dict[str, int]:
        for name, pids in self.groups.items():
            for pid in pids:
                if fields := _stat_fields(pid):
                    self._seen[(pid, fields[19])] = (name, sum(int(f) for f in fields[11:13]))
        totals: dict[str, int] = {}  # only groups seen here: a database elsewhere is no one's 0%
        for name, ticks in self._seen.values():
            totals[name] = totals.get(name, 0) + ticks
        return totals

    def read(self) -> tuple[float, dict[str, float]]:
        """(now, CPU seconds used so far per name, and the whole machine's)."""
        now = time.monotonic()
        used = {name: sum(int(f) for f in _stat_fields(pid)[11:13]) / self.tick for name, pid in self.processes.items()}
        if self.trees:
            children: dict[int, list[int]] = {}
            for entry in os.scandir("/proc"):
                if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))):
                    children.setdefault(int(fields[1]), []).append(int(entry.name))
            for name, root in self.trees.items():
                ticks, todo = 0, [root]
                while todo:
                    pid = todo.pop()
                    ticks += sum(int(f) for f in _stat_fields(pid)[11:15])  # its own time and its reaped children's
                    todo.extend(children.get(pid, ()))
                used[name] = ticks / self.tick
        used.update({name: ticks / self.tick for name, ticks in self._group_ticks().items()})
        with open("/proc/stat") as stat:
            user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in stat.readline().split()[1:9])
        used["machine"] = (user + nice + system + irq + softirq) / self.tick  # every process's, and the kernel's
        used["stolen"] = steal / self.tick  # a virtual machine's CPUs, taken by the host for something else
        return now, used


def cpu_figures(
    before: tuple[float, dict[str, float]], after: tuple[float, dict[str, float]], work: int
) -> dict[str, dict[str, float]]:
    """Per name: the share of one core used between two readings, and milliseconds of CPU per unit of work."""
    (t0, a), (t1, b) = before, after
    return {
        name: {
            "core_share": round((b[name] - a.get(name, 0.0)) / max(t1 - t0, 1e-9), 3),
            "ms_per_registration": round((b[name] - a.get(name, 0.0)) * 1000 / max(work, 1), 3),
        }
        for name in b
    }


DATABASE_PREFIX = "database: "
# a service's pool connects as `dealreg-<service>`, its outbox relay as `dealreg-<service>-outbox`
_CONNECTIONS_SQL = "select pid, application_name from pg_stat_activity where application_name like 'dealreg-%'"


def database_owner(application_name: str, services: Iterable[str]) -> str | None:
    """The service a database connection works for, from its application name; None for anyone else's."""
    for service in services:
        if application_name in (f"dealreg-{service}", f"dealreg-{service}-outbox"):
            return service
    return None


async def database_connections(admin_dsn: str, services: Iterable[str]) -> dict[str, list[int]]:
    """Each service's database connections (its pool's and its relay's) by server process id, named
    `database: <service>`; the CPU clock counts those it can see (a database on this machine)."""
    services = list(services)
    conn = await asyncpg.connect(admin_dsn)
    try:
        rows = await conn.fetch(_CONNECTIONS_SQL)
    finally:
        await conn.close()
    groups: dict[str, list[int]] = {DATABASE_PREFIX + s: [] for s in services}
    for row in rows:
        if owner := database_owner(row["application_name"], services):
            groups[DATABASE_PREFIX + owner].append(row["pid"])
    return groups


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: state, ppid, ... (utime is [11]); [] when the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return []


def write_json(path: Path, figures: dict[str, Any] | list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n")
