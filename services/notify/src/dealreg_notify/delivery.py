"""Delivering recorded notifications: leased, at least once, with backoff and jitter, every attempt recorded."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from uuid import UUID

import asyncpg
import structlog

from dealreg_notify import store_delivery
from dealreg_notify.channels import SmtpConnections, build_email, post_webhook, signing_secrets, webhook_client
from dealreg_notify.directory import Directory
from dealreg_notify.settings import NotifySettings
from dealreg_shared.db import DB_ERRORS, Pool
from dealreg_shared.envelope import utcnow
from dealreg_shared.metrics import NOTIFICATIONS_DELIVERED

log = structlog.get_logger(__name__)

# a busy address keeps its task this many runs, then queues again: with more busy addresses than tasks, each
# gets its turn (the general claim serves the longest-waiting heads first)
RUNS_IN_A_ROW = 5


def retry_delay(attempt: int, settings: NotifySettings) -> float:
    """Exponential backoff from the first attempt on, capped, with jitter so retries of many do not align."""
    base = min(settings.delivery_backoff_max_s, settings.delivery_backoff_s * 2 ** (attempt - 1))
    return random.uniform(base / 2, base)  # noqa: S311 - jitter, not a secret


def _by_address(rows: list[asyncpg.Record]) -> list[list[asyncpg.Record]]:
    """Claimed rows (in id order) as runs, one per address, each in id order."""
    runs: dict[tuple[str, str], list[asyncpg.Record]] = {}
    for row in rows:
        runs.setdefault((row["channel"], row["address"]), []).append(row)
    return list(runs.values())


class SentMarks:
    """Records sends together: while one statement marks some sent, those sent meanwhile wait for the next, so
    many deliveries in flight cost a round trip or two, not one each. A caller hears its own outcome (or the
    error, to retry) once the statement that carried its mark has committed."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self._waiting: list[tuple[store_delivery.Sent, asyncio.Future[bool]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def mark(self, sent: store_delivery.Sent) -> bool:
        outcome: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((sent, outcome))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="sent-marks")
        return await outcome

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                recorded = await store_delivery.mark_sent(self.pool, [sent for sent, _ in batch])
            except Exception as exc:  # each caller decides (its own retries, within its lease)
                for _, outcome in batch:
                    if not outcome.done():
                        outcome.set_exception(exc)
                continue
            for sent, outcome in batch:
                if not outcome.done():
                    outcome.set_result(sent.notification_id in recorded)


class Deliverer:
    """Keeps up to `delivery_concurrency` deliveries in flight; a slow one occupies one slot, never the rest."""

    def __init__(self, *, pool: Pool, settings: NotifySettings, directory: Directory) -> None:
        self.pool = pool
        self.settings = settings
        self.directory = directory
        self.http = webhook_client(settings)
        self.smtp = SmtpConnections(settings)
        self.sent_marks = SentMarks(pool)
        self.in_flight: set[asyncio.Task[None]] = set()
        self._stopping = False

    async def run(self) -> None:
        try:
            while True:
                limit = min(self.settings.delivery_concurrency - len(self.in_flight), self.settings.delivery_batch)
                runs = _by_address(await self._claim(limit)) if limit > 0 else []
                for rows in runs:
                    task = asyncio.create_task(self._deliver_run(rows), name=f"deliver-{rows[0]['id']}")
                    self.in_flight.add(task)
                    task.add_done_callback(self.in_flight.discard)
                if runs and len(runs) == limit:
                    continue  # there may be more due
                # idle or full: wake when a run ends (its address's next one may be due) or on the next poll
                if self.in_flight:
                    await asyncio.wait(
                        set(self.in_flight), timeout=self.settings.delivery_poll_s, return_when=asyncio.FIRST_COMPLETED
                    )
                elif not runs:
                    await asyncio.sleep(self.settings.delivery_poll_s)
        finally:
            self._stopping = True  # runs stop after the message they are sending and give the rest back
            await self._drain()
            await self.http.close()
            self.smtp.close()

    async def _drain(self) -> None:
        """On shutdown, let what is in flight finish (bounded), so nothing waits for a lease to run out."""
        if self.in_flight:
            _, pending = await asyncio.wait(set(self.in_flight), timeout=self.settings.webhook_timeout_s + 1)
            for task in pending:
                task.cancel()

    async def _claim(self, limit: int) -> list[asyncpg.Record]:
        try:
            return await store_delivery.claim_due(
                self.pool, limit=limit, lease_s=self.settings.delivery_lease_s, run=self.settings.delivery_run
            )
        except DB_ERRORS as exc:
            log.warning("delivery_claim_failed", error=repr(exc))
            return []

    async def _deliver_run(self, rows: list[asyncpg.Record]) -> None:
        """One address's notifications, oldest first, run after run while it has more (up to RUNS_IN_A_ROW, then
        the address waits its turn again behind the others); the first that is not sent stops it (order holds)."""
        for runs in itertools.count(1):
            for i, row in enumerate(rows):
                if self._stopping:
                    await self._release(rows[i:])
                    return
                if not await self._deliver(row):
                    await self._release(rows[i + 1 :])
                    return
            if runs >= RUNS_IN_A_ROW:
                return
            rows = await self._next_run(rows[0]["channel"], rows[0]["address"])
            if not rows:
                return

    async def _next_run(self, channel: str, address: str) -> list[asyncpg.Record]:
        if self._stopping:
            return []
        try:
            return await store_delivery.claim_next_run(
                self.pool,
                channel=channel,
                address=address,
                lease_s=self.settings.delivery_lease_s,
                run=self.settings.delivery_run,
            )
        except DB_ERRORS as exc:  # the general claim finds the address again
            log.warning("delivery_claim_failed", error=repr(exc))
            return []

    async def _release(self, rows: list[asyncpg.Record]) -> None:
        try:
            await store_delivery.release(self.pool, rows)
        except DB_ERRORS as exc:  # their leases run out instead
            log.warning("delivery_release_failed", error=repr(exc), count=len(rows))

    async def _deliver(self, row: asyncpg.Record) -> bool:
        """True when the notification was sent and that was recorded."""
        attempt, token = row["attempts"], row["lease_token"]
        try:
            if row["channel"] == "email":
                await self.smtp.send(build_email(row, self.settings))
            else:
                await post_webhook(self.http, row, signing_secrets(row["recipient"], self.settings, self.directory))
        except Exception as exc:
            await self._failed(row, attempt, token, f"{type(exc).__name__}: {exc}")
            return False
        if not await self._record(lambda: self.sent_marks.mark(store_delivery.Sent(row["id"], attempt, token))):
            return False
        NOTIFICATIONS_DELIVERED.labels(row["channel"], "sent").inc()
        log.info(
            "notification_sent",
            notification_id=row["id"],
            channel=row["channel"],
            recipient=row["recipient"],
            attempt=attempt,
        )
        return True

    async def _failed(self, row: asyncpg.Record, attempt: int, token: UUID, error: str) -> None:
        retry_at = None
        if attempt < self.settings.delivery_max_attempts:
            retry_at = utcnow() + timedelta(seconds=retry_delay(attempt, self.settings))
        recorded = await self._record(
            lambda: store_delivery.mark_failed_attempt(
                self.pool, row["id"], attempt, lease_token=token, error=error, retry_at=retry_at
            )
        )
        if recorded:
            NOTIFICATIONS_DELIVERED.labels(row["channel"], "failed" if retry_at is None else "retry").inc()
        if recorded and retry_at is None:
            log.error("notification_failed", notification_id=row["id"], attempts=attempt, error=error)
        elif recorded:
            log.warning("delivery_failed_will_retry", notification_id=row["id"], attempt=attempt, error=error)

    async def _record(self, outcome: Callable[[], Awaitable[bool]]) -> bool:
        """Record an outcome. With the database away, keep trying for half the lease (which keeps others off):
        an unrecorded success would be sent again once the lease runs out."""
        deadline = time.monotonic() + self.settings.delivery_lease_s / 2
        while True:
            try:
                recorded = await outcome()
                break
            except DB_ERRORS as exc:
                if time.monotonic() > deadline:
                    log.error("delivery_outcome_not_recorded", error=repr(exc))
                    return False
                log.warning("delivery_outcome_not_recorded_yet", error=repr(exc))
                await asyncio.sleep(0.5)
        if not recorded:
            log.warning("delivery_lease_lost")
        return recorded
