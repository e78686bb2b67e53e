"""Delivering recorded notifications by SMTP and webhook: at least once, with backoff, every attempt recorded."""

from __future__ import annotations

import asyncio
import json
import random
import time
from datetime import timedelta
from email.message import EmailMessage
from html import escape

import aiosmtplib
import asyncpg
import httpx
import structlog

from dealreg_notify import store
from dealreg_notify.settings import NotifySettings
from dealreg_shared import webhooks
from dealreg_shared.db import Pool
from dealreg_shared.envelope import utcnow

log = structlog.get_logger(__name__)


class DeliveryError(Exception):
    pass


def build_email(row: asyncpg.Record, settings: NotifySettings) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = row["address"]
    msg["Subject"] = row["subject"]
    # the same notification keeps its Message-ID on every attempt: mail systems can drop a duplicate
    msg["Message-ID"] = f"<ntf-{row['id']}@dealreg>"
    msg["X-Dealreg-Notification-Id"] = f"ntf_{row['id']}"
    msg.set_content(row["body_text"])
    msg.add_alternative(
        '<html><body><pre style="font-family: sans-serif">' + escape(row["body_text"]) + "</pre></body></html>",
        subtype="html",
    )
    return msg


class Deliverer:
    def __init__(self, *, pool: Pool, settings: NotifySettings) -> None:
        self.pool = pool
        self.settings = settings
        self.http = httpx.AsyncClient(follow_redirects=False, timeout=settings.webhook_timeout_s)

    async def run(self) -> None:
        try:
            while True:
                try:
                    rows = await store.claim_due(self.pool, limit=self.settings.delivery_batch, lease_s=60)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("delivery_claim_failed", error=repr(exc))
                    rows = []
                if rows:
                    # one slow or dead endpoint must not hold up the others
                    await asyncio.gather(*(self._deliver(r) for r in rows))
                else:
                    await asyncio.sleep(self.settings.delivery_poll_s)
        finally:
            await self.http.aclose()

    async def _deliver(self, row: asyncpg.Record) -> None:
        attempt = row["attempts"]
        try:
            if row["channel"] == "email":
                await self._send_email(row)
            else:
                await self._post_webhook(row)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            retry_at = None
            if attempt < self.settings.delivery_max_attempts:
                base = min(
                    self.settings.delivery_backoff_max_s,
                    self.settings.delivery_backoff_s * 2 ** (attempt - 1),
                )
                retry_at = utcnow() + timedelta(seconds=random.uniform(base / 2, base))  # noqa: S311 - jitter
            log.warning(
                "delivery_failed",
                notification_id=row["id"],
                attempt=attempt,
                error=error,
                gave_up=retry_at is None,
            )
            await store.mark_failed_attempt(self.pool, row["id"], attempt, error=error, retry_at=retry_at)
            return
        await store.mark_sent(self.pool, row["id"], attempt)
        log.info("notification_sent", notification_id=row["id"], channel=row["channel"], recipient=row["recipient"])

    async def _send_email(self, row: asyncpg.Record) -> None:
        s = self.settings
        await aiosmtplib.send(
            build_email(row, s),
            hostname=s.smtp_host,
            port=s.smtp_port,
            start_tls=s.smtp_starttls,
            use_tls=s.smtp_tls,
            username=s.smtp_username or None,
            password=s.smtp_password or None,
            timeout=30,
        )

    async def _post_webhook(self, row: asyncpg.Record) -> None:
        body = json.dumps(
            {
                "notification_id": f"ntf_{row['id']}",
                "subject": row["subject"],
                "data": json.loads(row["payload"]),
            },
            separators=(",", ":"),
        ).encode()
        headers = webhooks.headers(
            self.settings.webhook_secret, msg_id=f"ntf_{row['id']}", timestamp=int(time.time()), body=body
        )
        response = await self.http.post(row["address"], content=body, headers=headers)
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"webhook answered HTTP {response.status_code}")
