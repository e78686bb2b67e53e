"""One record, one unit of work: decode, apply once (inbox), emit through the outbox, or dead-letter it."""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from dealreg_shared.contracts import EventType, Status
from dealreg_shared.db import Conn, Pool
from dealreg_shared.envelope import CloudEvent, UndecodableRecord, decode_event, rfc3339, utcnow
from dealreg_shared.metrics import PROCESSING_SECONDS, RECORDS_CONSUMED, RECORDS_PROCESSED, REGISTRATIONS_REJECTED
from dealreg_shared.outbox import Outbox, OutgoingRecord, insert_outbox
from dealreg_shared.topics import by_name

# a dead letter must fit in a produce request (1 MB by default), or it would block the outbox relay behind it
# for ever: of a larger record the letter keeps this much, with the original's size and digest in its headers
DLQ_VALUE_MAX_BYTES = 512 * 1024

log = structlog.get_logger(__name__)


class _RecordFailed(Exception):
    """Inside a run applied together: the record at `index` failed, and with it the run's transaction."""

    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


class _RunHandlerFailed(Exception):
    """Inside a run applied together: its run handler failed, and with it the run's transaction."""


class PoisonRecord(Exception):
    """This record can never be applied (it breaks the contract): dead-letter it without retrying."""


# failures of the infrastructure, not of the record: retried without limit, never dead-lettered
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    # the server out of a resource (connections, the shared lock table, memory, disk): nothing of the record's
    asyncpg.InsufficientResourcesError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.AdminShutdownError,
)


@dataclass(frozen=True)
class Incoming:
    """A decoded record: the event, its exact value bytes (what partners sign) and where it came from."""

    event: CloudEvent
    value: bytes
    key: bytes | None
    topic: str
    partition: int
    offset: int


Handler = Callable[[Conn, Incoming, Outbox], Awaitable[None]]
# the same work as a Handler's for several records at once, in their order (set-based: a few statements for the
# whole run instead of a few per record). It must leave the database and the outboxes exactly as the Handler
# applied to each record in turn would; when it fails, the run is applied again record by record with the Handler
RunHandler = Callable[[Conn, Sequence[tuple[Incoming, Outbox]]], Awaitable[None]]
# records a subscriber knows from their headers alone it has nothing to do with (a service's own answers on a topic
# it reads for others'): no decoding, no inbox row, no transaction; a batch of nothing else costs no transaction
Skip = Callable[[ConsumerRecord[Any, Any]], bool]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    backoff_s: float = 0.2
    backoff_max_s: float = 10.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with full jitter."""
        return random.uniform(0, min(self.backoff_max_s, self.backoff_s * 2 ** min(attempt, 20)))  # noqa: S311


class RecordProcessor:
    def __init__(self, *, pool: Pool, service: str, retry: RetryPolicy, max_bytes: int) -> None:
        self.pool = pool
        self.service = service
        self.retry = retry
        self.max_bytes = max_bytes

    async def process(self, record: ConsumerRecord[Any, Any], handler: Handler) -> None:
        """Returns once the record's effect is durable (applied, found already applied, or dead-lettered)."""
        RECORDS_CONSUMED.labels(self.service, record.topic).inc()
        with PROCESSING_SECONDS.labels(self.service, record.topic).time():
            await self._process(record, handler)

    async def _process(self, record: ConsumerRecord[Any, Any], handler: Handler) -> None:
        self._bind(record, None)
        try:
            event = decode_event(record.value, record.headers, max_bytes=self.max_bytes)
        except UndecodableRecord as exc:
            reason = str(exc)
            await self._with_retry(lambda: self._dead_letter(record, reason), poison_ok=False)
            return
        self._bind(record, event)
        incoming = Incoming(event, record.value, record.key, record.topic, record.partition, record.offset)
        applied = await self._with_retry(lambda: self._apply(incoming, handler), poison_ok=True)
        if applied is not None:
            reason = f"{type(applied).__name__}: {applied}"
            await self._with_retry(lambda: self._dead_letter(record, reason), poison_ok=False)

    async def process_batch(
        self,
        records: Sequence[ConsumerRecord[Any, Any]],
        handler: Handler,
        run_handler: RunHandler | None = None,
        skip: Skip | None = None,
    ) -> None:
        """The fast path: consecutive records in one transaction (one commit, one fsync, few round trips).

        The first record that cannot be applied there (undecodable, failing) ends the run: what came before it is
        committed, it takes the one-record path (retries, dead letter), and the rest continue after it, so each
        partition's order holds. Records `skip` names are passed over (counted as skipped).
        """
        for record in records:
            RECORDS_CONSUMED.labels(self.service, record.topic).inc()
        if skip is not None:
            kept = [record for record in records if not skip(record)]
            if len(kept) < len(records):
                RECORDS_PROCESSED.labels(self.service, records[0].topic, "skipped").inc(len(records) - len(kept))
            records = kept
        start = 0
        while start < len(records):
            started = time.monotonic()
            applied = await self._apply_run(records[start:], handler, run_handler)
            for record in records[start : start + applied]:
                PROCESSING_SECONDS.labels(self.service, record.topic).observe((time.monotonic() - started) / applied)
            start += applied
            if start < len(records):
                with PROCESSING_SECONDS.labels(self.service, records[start].topic).time():
                    await self._process(records[start], handler)
                start += 1

    async def _apply_run(
        self, records: Sequence[ConsumerRecord[Any, Any]], handler: Handler, run_handler: RunHandler | None
    ) -> int:
        """How many leading records were applied (or found applied) and committed together.

        The leading decodable records are applied in one transaction: one inbox statement for all of them, the
        handlers in order, one outbox statement for all they emit. When a handler fails, the transaction is rolled
        back and tried again without that record and those after it (so no savepoint is needed per record).
        With a run handler, the run's fresh records are applied by it in one go; if it fails, the run is tried
        again with the handler, record by record.
        """
        run: list[Incoming] = []
        for record in records:
            try:
                event = decode_event(record.value, record.headers, max_bytes=self.max_bytes)
            except UndecodableRecord:
                break
            run.append(Incoming(event, record.value, record.key, record.topic, record.partition, record.offset))
        attempt = 0
        while run:
            try:
                done = await self._apply_together(run, handler, run_handler)
            except TRANSIENT_ERRORS as exc:
                delay = self.retry.delay(attempt)
                log.warning("transient_failure_retrying", error=repr(exc), retry_in_s=round(delay, 3))
                attempt += 1
                await asyncio.sleep(delay)
                continue
            except _RecordFailed as failed:
                run = run[: failed.index]  # the one-record path will meet the failure again and report it
                continue
            except _RunHandlerFailed as failed:
                log.warning("run_handler_failed", error=repr(failed.__cause__), records=len(run))
                run_handler = None  # record by record, which finds the record that fails, if one does
                continue
            for incoming, outbox in done:
                self._applied(incoming, outbox)
            if done:
                log.info(
                    "batch_applied",
                    records=len(done),
                    duplicates=sum(outbox is None for _, outbox in done),
                    first_offset=done[0][0].offset,
                    last_offset=done[-1][0].offset,
                )
            return len(done)
        return 0

    async def _apply_together(
        self, run: list[Incoming], handler: Handler, run_handler: RunHandler | None = None
    ) -> list[tuple[Incoming, Outbox | None]]:
        done: list[tuple[Incoming, Outbox | None]] = []
        async with self.pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "insert into inbox (event_id, topic) select * from unnest($1::text[], $2::text[]) "
                "on conflict do nothing returning event_id",
                [i.event.id for i in run],
                [i.topic for i in run],
            )
            fresh = {r["event_id"] for r in rows}
            for incoming in run:
                if incoming.event.id in fresh:
                    fresh.discard(incoming.event.id)
                    done.append((incoming, Outbox(service=self.service, cause=incoming.event)))
                else:  # applied before, or earlier in this run
                    done.append((incoming, None))
            todo = [(incoming, outbox) for incoming, outbox in done if outbox is not None]
            if run_handler is not None and len(todo) > 1:
                self._bind(todo[0][0], None)  # the run's lines name their records themselves
                try:
                    await run_handler(conn, todo)
                except TRANSIENT_ERRORS:
                    raise
                except Exception as exc:
                    raise _RunHandlerFailed() from exc
            else:
                for index, (incoming, outbox) in enumerate(done):
                    if outbox is None:
                        continue
                    self._bind(incoming, incoming.event)
                    try:
                        await handler(conn, incoming, outbox)
                    except TRANSIENT_ERRORS:
                        raise
                    except Exception as exc:
                        raise _RecordFailed(index) from exc
            try:
                await insert_outbox(conn, [r for _, outbox in done if outbox is not None for r in outbox.records])
            except TRANSIENT_ERRORS:
                raise
            except Exception as exc:
                # one of the records' events cannot be stored: which, the rows do not say; without the last
                # record the run is tried again, until the culprit is the one left for the one-record path
                raise _RecordFailed(len(run) - 1) from exc
        return done

    def _bind(self, where: ConsumerRecord[Any, Any] | Incoming, event: CloudEvent | None) -> None:
        """Every log line of this unit of work carries where the record came from and which event it is."""
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(
            service=self.service, topic=where.topic, partition=where.partition, offset=where.offset
        )
        if event is not None:
            structlog.contextvars.bind_contextvars(
                event_id=event.id, event_type=event.type, correlation_id=event.correlation_id
            )

    async def _apply(self, incoming: Incoming, handler: Handler) -> None:
        """The one-record path: the same unit of work as a batch's, alone; the record's own failure is raised."""
        try:
            [(_, outbox)] = await self._apply_together([incoming], handler)
        except _RecordFailed as failed:
            assert failed.__cause__ is not None
            raise failed.__cause__ from None
        self._applied(incoming, outbox)

    def _applied(self, incoming: Incoming, outbox: Outbox | None) -> None:
        """After the commit: the unit of work's one log line and its metrics."""
        if outbox is None:
            log.info("event_already_applied", event_id=incoming.event.id)
            RECORDS_PROCESSED.labels(self.service, incoming.topic, "duplicate").inc()
            return
        log.debug("event_applied", event_id=incoming.event.id, emitted=len(outbox.records))
        RECORDS_PROCESSED.labels(self.service, incoming.topic, "applied").inc()
        for event in outbox.events:
            if event.type == EventType.REGISTRATION_STATUS_CHANGED and event.data.get("status") == Status.REJECTED:
                REGISTRATIONS_REJECTED.labels(self.service, event.data.get("reason_code") or "none").inc()

    async def _with_retry(self, work: Callable[[], Awaitable[None]], *, poison_ok: bool) -> BaseException | None:
        """Run `work` until it succeeds; a record's own failure is tried max_attempts times, then returned."""
        attempt = 0
        failures = 0
        while True:
            try:
                await work()
                return None
            except TRANSIENT_ERRORS as exc:
                delay = self.retry.delay(attempt)
                log.warning("transient_failure_retrying", error=repr(exc), retry_in_s=round(delay, 3))
            except (PoisonRecord, ValidationError) as exc:
                # a record that breaks the contract fails the same way every time: no point retrying
                if poison_ok:
                    log.warning("poison_record", error=str(exc))
                    return exc
                raise
            except Exception as exc:
                failures += 1
                if poison_ok and failures >= self.retry.max_attempts:
                    log.error("record_failed_repeatedly", error=repr(exc), attempts=failures)
                    return exc
                delay = self.retry.delay(attempt)
                log.warning("record_failed_retrying", error=repr(exc), attempt=failures, retry_in_s=round(delay, 3))
            attempt += 1
            await asyncio.sleep(delay)

    async def _dead_letter(self, record: ConsumerRecord[Any, Any], error: str) -> None:
        # jsonb (the outbox's headers) cannot hold NUL: a hostile header name must not make the letter fail forever
        headers = [(name.replace("\x00", "\\x00"), value) for name, value in record.headers or ()]
        headers += [
            ("dlq_error", error[:2000].encode()),
            ("dlq_source_topic", record.topic.encode()),
            ("dlq_source_partition", str(record.partition).encode()),
            ("dlq_source_offset", str(record.offset).encode()),
            ("dlq_consumer", self.service.encode()),
            ("dlq_failed_at", rfc3339(utcnow()).encode()),
        ]
        value = record.value or b""
        if len(value) > DLQ_VALUE_MAX_BYTES:
            headers += [
                ("dlq_value_truncated_from", str(len(value)).encode()),
                ("dlq_value_sha256", hashlib.sha256(value).hexdigest().encode()),
            ]
            value = value[:DLQ_VALUE_MAX_BYTES]
        dead = OutgoingRecord(
            topic=by_name(record.topic).dlq.name,
            key=record.key,
            value=value,
            headers=headers,
            dedupe_key=f"dlq:{self.service}:{record.topic}:{record.partition}:{record.offset}",
        )
        async with self.pool.acquire() as conn:
            await insert_outbox(conn, [dead])
        log.warning("record_dead_lettered", error=error)
        RECORDS_PROCESSED.labels(self.service, record.topic, "dead_lettered").inc()
