"""Deleting finished notifications once past their retention, so notify's tables stop growing with its history."""

from __future__ import annotations

import time
from datetime import timedelta

import structlog

from dealreg_notify import store_delivery
from dealreg_notify.settings import NotifySettings
from dealreg_shared.db import Pool, every
from dealreg_shared.envelope import utcnow
from dealreg_shared.metrics import NOTIFICATIONS_PURGED

log = structlog.get_logger(__name__)

# rows deleted a statement: each its own short transaction, so a first purge of a long history holds nothing for long
PURGE_BATCH = 1000
MAX_ID = 2**63 - 1


class Retention:
    """Sent, failed and digested notifications older than `notification_retention_days` go, with their delivery
    attempts: at start, then every `retention_interval_s`. Pending and held ones stay whatever their age; a
    status read again later still finds its event in the inbox, so nothing is notified twice."""

    def __init__(self, *, pool: Pool, settings: NotifySettings) -> None:
        self.pool = pool
        self.settings = settings

    async def run(self) -> None:
        await every(self.settings.retention_interval_s, self.purge, failed="notification_purge_failed")

    async def purge(self) -> int:
        """One round: everything past the retention, a batch at a time; how many notifications went."""
        before = utcnow() - timedelta(days=self.settings.notification_retention_days)
        below = await store_delivery.first_id_since(self.pool, before)
        started = time.monotonic()
        total, after, batches = 0, 0, 0
        while True:
            purged = await store_delivery.purge_finished(
                self.pool, before=before, after_id=after, below_id=MAX_ID if below is None else below, limit=PURGE_BATCH
            )
            total += purged.deleted
            NOTIFICATIONS_PURGED.inc(purged.deleted)
            if purged.examined < PURGE_BATCH or purged.last_id is None:
                break
            after = purged.last_id  # each batch starts where the last ended: none reads what the others did
            batches += 1
            if batches % 100 == 0:  # a long first round says where it is
                log.info("notification_purge_progress", deleted=total, created_before=before.isoformat())
        if total:
            log.info(
                "notifications_purged",
                deleted=total,
                created_before=before.isoformat(),
                seconds=round(time.monotonic() - started, 2),
            )
        return total
