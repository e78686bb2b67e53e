"""Folding what a manager chose to hear hourly or daily into one email per period, once, whatever the replicas."""

from __future__ import annotations

import structlog

from dealreg_notify import store_delivery
from dealreg_notify.messages import DigestItem, digest_message
from dealreg_notify.settings import NotifySettings
from dealreg_shared.db import Pool, every

log = structlog.get_logger(__name__)

MAX_ITEMS = 500  # a longer backlog goes out in several digests rather than one unreadable mail


class Digester:
    def __init__(self, *, pool: Pool, settings: NotifySettings) -> None:
        self.pool = pool
        self.settings = settings
        self.periods = {"hourly": settings.digest_hourly_period_s, "daily": settings.digest_daily_period_s}

    @property
    def poll_s(self) -> float:
        """Often enough that a digest leaves soon after its period ends, without busy-polling for an hour."""
        return max(0.2, min(30.0, min(self.periods.values()) / 10))

    async def run(self) -> None:
        await every(self.poll_s, self.build_due, failed="digest_build_failed")

    async def build_due(self) -> int:
        """Build every digest whose period has ended; returns how many were built."""
        hourly_s, daily_s = self.periods["hourly"], self.periods["daily"]
        built = 0
        for group in await store_delivery.get_due_digests(self.pool, hourly_s=hourly_s, daily_s=daily_s):
            async with self.pool.acquire() as conn, conn.transaction():
                recipient, address = group["recipient"], group["address"]
                if not await store_delivery.lock_digest(conn, recipient, address):
                    continue  # another replica is on it
                items = await store_delivery.get_held_due(
                    conn, recipient, address, hourly_s=hourly_s, daily_s=daily_s, limit=MAX_ITEMS
                )
                if not items:
                    continue
                subject, text, html = digest_message(
                    group["digest"], [DigestItem(r["subject"], r["body_text"], r["created_at"]) for r in items]
                )
                digest_id = await store_delivery.insert_digest(
                    conn,
                    recipient=recipient,
                    address=address,
                    first_id=items[0]["id"],
                    subject=subject,
                    text=text,
                    html=html,
                    count=len(items),
                )
                if digest_id is None:
                    continue
                await store_delivery.mark_digested(conn, [r["id"] for r in items], digest_id)
                built += 1
                log.info("digest_built", recipient=recipient, items=len(items), digest_id=digest_id)
        return built
