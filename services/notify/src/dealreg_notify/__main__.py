"""`python -m dealreg_notify`: run the notify service until SIGTERM; `webhook-secret`, `failed` and `purge` for
operators."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from dealreg_notify import store
from dealreg_notify.app import DB_SETTINGS, SERVICE, build_app, load_directory
from dealreg_notify.retention import Retention
from dealreg_notify.settings import NotifySettings
from dealreg_shared import webhooks
from dealreg_shared.db import create_pool
from dealreg_shared.runtime import run
from dealreg_shared.settings import load_settings


async def _show_failed(settings: NotifySettings, limit: int) -> None:
    pool = await create_pool(settings.database_url, schema=SERVICE, max_size=1)
    try:
        counts = await store.count_by_status(pool)
        print("notifications: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        for r in await store.get_failed(pool, limit=limit):
            print(
                f"ntf_{r['id']}  {r['created_at']:%Y-%m-%d %H:%M:%S}  {r['channel']:7} {r['address']}  "
                f"{r['event_type']} after {r['attempts']} attempts: {r['last_error']}"
            )
    finally:
        await pool.close()


async def _purge(settings: NotifySettings) -> None:
    pool = await create_pool(settings.database_url, schema=SERVICE, max_size=1, server_settings=DB_SETTINGS)
    try:
        started = time.monotonic()
        deleted = await Retention(pool=pool, settings=settings).purge()
        seconds = time.monotonic() - started
        print(
            f"deleted {deleted} finished notifications created more than {settings.notification_retention_days:g} "
            f"days ago, with their delivery attempts, in {seconds:.1f} s"
        )
    finally:
        await pool.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dealreg-notify", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    secret = sub.add_parser(
        "webhook-secret", help="print a partner's webhook signing secret (derived from DEALREG_WEBHOOK_SECRET)"
    )
    secret.add_argument("partner_id")
    failed = sub.add_parser("failed", help="list notifications that failed for good (newest first)")
    failed.add_argument("--limit", type=int, default=50)
    purge = sub.add_parser(
        "purge", help="delete finished notifications past their retention now (what the service does every hour)"
    )
    purge.add_argument("--days", type=float, help="older than this (default DEALREG_NOTIFICATION_RETENTION_DAYS)")
    sub.add_parser("check-config", help="validate the settings and the [notify] config section, then exit")
    args = parser.parse_args(argv)

    settings = load_settings(NotifySettings, SERVICE)
    if args.command == "webhook-secret":
        print(webhooks.derive_secret(settings.webhook_secret, args.partner_id))
    elif args.command == "failed":
        asyncio.run(_show_failed(settings, args.limit))
    elif args.command == "purge":
        days = settings.notification_retention_days if args.days is None else args.days
        if not days > 0:
            sys.exit("dealreg-notify purge: nothing to do: a retention of 0 days keeps every notification (--days N)")
        asyncio.run(_purge(settings.model_copy(update={"notification_retention_days": days})))
    elif args.command == "check-config":
        directory = load_directory(settings)
        print(f"ok: {len(directory.recipients)} recipients, desks: {', '.join(sorted(directory.desks))}")
    else:
        run(build_app(settings))


if __name__ == "__main__":
    main()
