"""The wiring every service shares: settings, logging, pool, migrations, subscribers, outbox relay, health."""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import structlog
import uvloop
from aiokafka import TopicPartition
from faststream import FastStream
from faststream.message import StreamMessage

from dealreg_shared.consumer import Handler, RecordProcessor, RetryPolicy, RunHandler, Skip
from dealreg_shared.db import Pool, create_pool, migrate, service_migrations
from dealreg_shared.health import HealthServer
from dealreg_shared.inbox_retention import InboxRetention
from dealreg_shared.kafka import ACK_POLICY, DeferredCommits, make_broker, make_producer, poll_without_pause, rewind
from dealreg_shared.logging import configure_logging, library_logger
from dealreg_shared.metrics import CONSUMER_LAG
from dealreg_shared.outbox import OutboxRelay
from dealreg_shared.settings import ServiceSettings
from dealreg_shared.topics import Topic

log = structlog.get_logger(__name__)


async def _records(msg: StreamMessage[Any]) -> tuple[Any, Any]:
    """The handler's one argument: the batch's raw records and the consumer that fetched them. The processor decodes
    (and dead-letters) records itself, so FastStream must not parse JSON first; and taking the message as a
    `Context` parameter instead would have FastStream resolve it in a worker thread (a thread hop per batch, 60 µs
    of CPU and two waits for the scheduler on a busy machine)."""
    return msg.raw_message, msg.consumer  # type: ignore[attr-defined]


class ServiceRuntime:
    """One service process. Build it, register handlers with `subscribe`, run `app()`; nothing connects before."""

    def __init__(
        self,
        *,
        service: str,
        settings: ServiceSettings,
        package: str,
        db_settings: dict[str, str] | None = None,
    ) -> None:
        self.service = service
        self.settings = settings
        self.package = package
        self.db_settings = db_settings  # the service's own Postgres settings on each of its connections
        self.broker = make_broker(settings.kafka_bootstrap, client_id=f"dealreg-{service}")
        self._pool: Pool | None = None
        self._processor: RecordProcessor | None = None
        self.health: HealthServer | None = None
        self._background: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {}
        self._commits = DeferredCommits()
        self._topics: list[str] = []  # what the subscribers read: what the inbox's retention asks the broker about

    def add_background(self, name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A long-running task started once the pool is ready and cancelled on shutdown."""
        self._background[name] = work

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            raise RuntimeError("the service has not started")
        return self._pool

    def subscribe(
        self, topic: Topic, handler: Handler, *, run_handler: RunHandler | None = None, skip: Skip | None = None
    ) -> None:
        """Consume `topic` in this service's group for it; each record goes through the RecordProcessor
        (`run_handler`, when given, applies several fresh records at once, as `handler` would one by one; records
        `skip` names, from their headers, are passed over)."""

        async def on_records(batch: Any) -> None:
            assert self._processor is not None
            records, consumer = batch
            if not isinstance(records, tuple):
                records = (records,)
            try:
                await self._processor.process_batch(records, handler, run_handler, skip)
            except Exception:
                rewind(consumer, records)  # nothing of it is committed: it is read again
                raise
            self._commits.applied(consumer, records)  # durable now: its offsets are committed shortly
            _observe_lag(self.service, consumer, records)

        on_records.__name__ = handler.__name__
        self._topics.append(topic.name)
        subscriber = self.broker.subscriber(
            topic.name,
            group_id=f"dealreg-{self.service}.{topic.name}",
            ack_policy=ACK_POLICY,
            decoder=_records,
            auto_offset_reset="earliest",
            title=f"{self.service}:{handler.__name__}",
            # records arrive in batches (up to batch_max_records) and are applied in one transaction each;
            # the offsets are committed once the whole batch is durable (DeferredCommits)
            batch=True,
            max_records=self.settings.batch_max_records,
            batch_timeout_ms=100,
        )
        poll_without_pause(subscriber)(on_records)

    def app(self) -> FastStream:
        return FastStream(self.broker, lifespan=self._lifespan, logger=library_logger())

    @asynccontextmanager
    async def _lifespan(self) -> AsyncIterator[None]:
        s = self.settings
        configure_logging(service=self.service, level=s.log_level, fmt=s.log_format)
        self._pool = await create_pool(
            s.database_url, schema=self.service, max_size=s.db_pool_size, server_settings=self.db_settings
        )
        async with self._pool.acquire() as conn:
            await migrate(conn, schema=self.service, migrations=service_migrations(self.package))
        self._processor = RecordProcessor(
            pool=self._pool,
            service=self.service,
            retry=RetryPolicy(s.max_attempts, s.retry_backoff_ms / 1000, s.retry_backoff_max_ms / 1000),
            max_bytes=s.max_record_bytes,
        )
        producer = make_producer(s.kafka_bootstrap, client_id=f"dealreg-{self.service}-outbox")
        await producer.start()
        relay = OutboxRelay(dsn=s.database_url, schema=self.service, producer=producer)
        relay_task = asyncio.create_task(relay.run(), name="outbox-relay")
        background = dict(self._background)
        if s.inbox_retention_days and self._topics:
            retention = InboxRetention(
                pool=self._pool,
                service=self.service,
                bootstrap=s.kafka_bootstrap,
                topics=self._topics,
                days=s.inbox_retention_days,
                interval_s=s.retention_interval_s,
            )
            background["inbox-retention"] = retention.run
        tasks = [asyncio.create_task(_supervised(name, work), name=name) for name, work in background.items()]
        # cancelled with the background tasks, once FastStream has stopped the consumers (each commits as it stops)
        tasks.append(asyncio.create_task(_supervised("offset-commits", self._commits.run), name="offset-commits"))
        if s.health_port:
            self.health = HealthServer(port=s.health_port, checks={"database": self._db_ok, "kafka": self._kafka_ok})
            await self.health.start()
        freeze_startup_heap()
        log.info("service_started")
        try:
            yield
        finally:
            # FastStream has stopped the subscribers (in-flight records finished) before we get here
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            relay.request_stop()
            try:
                await asyncio.wait_for(relay_task, timeout=15)
            except TimeoutError:
                log.warning("outbox_not_drained_before_stop")
            if self.health:
                await self.health.stop()
            await producer.stop()
            try:
                # a connection broken mid-query (database restarted, network cut) must not hang the stop
                await asyncio.wait_for(self._pool.close(), timeout=5)
            except TimeoutError:
                log.warning("database_pool_terminated")
                self._pool.terminate()
            log.info("service_stopped")

    async def _db_ok(self) -> bool:
        return bool(await self.pool.fetchval("select true"))

    async def _kafka_ok(self) -> bool:
        return await self.broker.ping(timeout=2.0)


# Python's cyclic collector ran a young collection every 700 allocations, and every so often a full one that
# walked every object the service had made at start (modules, classes, pydantic's validators, codecs): 7-10% of
# vetting's and conflict's CPU at full speed (py-spy). Refcounting frees nearly everything a record makes the
# moment it is done with; the collector is only for cycles, and it still finds them, after 50,000 allocations
# instead of 700. In two pairs of short benchmark runs, each service spent 8-13% less CPU per registration.
GC_THRESHOLDS = (50_000, 20, 10)


def freeze_startup_heap() -> None:
    """Once started: move what start-up made out of the collector's sight (it lives as long as the process) and
    collect young objects less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _supervised(name: str, work: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """A background task that fails is logged with its traceback and started anew (with backoff): a worker that
    died silently would leave its work undone while the service still looked healthy."""
    backoff = 0.5
    while True:
        try:
            await work()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("background_task_failed", task=name, restart_in_s=backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 30.0)


def _observe_lag(service: str, consumer: Any, records: Any) -> None:
    """Consumer lag as the consumer itself knows it: the partition's high-water mark minus our position."""
    last = {(r.topic, r.partition): r.offset for r in records}
    for (topic, partition), offset in last.items():
        highwater = consumer.highwater(TopicPartition(topic, partition))
        if highwater is not None:
            CONSUMER_LAG.labels(service, topic, str(partition)).set(max(0, highwater - offset - 1))


def run(app: FastStream) -> None:
    """Run until SIGINT/SIGTERM, then drain and stop. SIGUSR1 prints every thread's stack (for operators).

    On uvloop: the same asyncio, with its event loop and sockets in C (asyncpg is built for it); in one pair of
    short benchmark runs, each service spent 5-7% less CPU per registration."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    uvloop.run(app.run())
