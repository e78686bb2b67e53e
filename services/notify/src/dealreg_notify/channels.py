"""The two ways out: email over SMTP and signed webhooks (Standard Webhooks headers, no redirects followed)."""

from __future__ import annotations

import json
import time
from email.message import EmailMessage
from email.utils import formatdate
from html import escape
from typing import Any

import aiosmtplib
import httpx

from dealreg_notify.directory import Directory
from dealreg_notify.settings import NotifySettings
from dealreg_shared import webhooks


class DeliveryError(Exception):
    pass


def build_email(row: Any, settings: NotifySettings) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = row["address"]
    msg["Subject"] = row["subject"]
    msg["Date"] = formatdate(usegmt=True)
    # the same notification keeps its Message-ID on every attempt: mail systems can drop a duplicate
    msg["Message-ID"] = f"<ntf-{row['id']}@dealreg>"
    msg["X-Dealreg-Notification-Id"] = f"ntf_{row['id']}"
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, no vacation loops
    msg.set_content(row["body_text"])
    html = row["body_html"] or (
        '<html><body><pre style="font-family: sans-serif">' + escape(row["body_text"]) + "</pre></body></html>"
    )
    msg.add_alternative(html, subtype="html")
    return msg


async def send_email(row: Any, settings: NotifySettings) -> None:
    s = settings
    await aiosmtplib.send(
        build_email(row, s),
        hostname=s.smtp_host,
        port=s.smtp_port,
        start_tls=s.smtp_starttls,
        use_tls=s.smtp_tls,
        username=s.smtp_username or None,
        password=s.smtp_password or None,
        timeout=s.smtp_timeout_s,
    )


def signing_secrets(recipient: str, settings: NotifySettings, directory: Directory) -> list[str]:
    """A partner's own secret (derived from the master); a manager's configured one; else the master itself.

    While the master is rotated, a second signature under the previous one lets receivers switch at leisure.
    """
    masters = [settings.webhook_secret] + (
        [settings.webhook_previous_secret] if settings.webhook_previous_secret else []
    )
    kind, _, who = recipient.partition(":")
    if kind == "partner":
        return [webhooks.derive_secret(m, who) for m in masters]
    configured = directory.recipients.get(who) if kind == "manager" else None
    if configured is not None and configured.webhook_secret:
        return [configured.webhook_secret]
    return masters


def webhook_body(row: Any) -> bytes:
    return json.dumps(
        {"notification_id": f"ntf_{row['id']}", "subject": row["subject"], "data": json.loads(row["payload"])},
        separators=(",", ":"),
    ).encode()


async def post_webhook(http: httpx.AsyncClient, row: Any, secrets: list[str]) -> None:
    body = webhook_body(row)
    msg_id, timestamp = f"ntf_{row['id']}", int(time.time())
    headers = webhooks.headers(secrets[0], msg_id=msg_id, timestamp=timestamp, body=body)
    headers["webhook-signature"] = " ".join(
        webhooks.sign(s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets
    )
    response = await http.post(row["address"], content=body, headers=headers)
    if not 200 <= response.status_code < 300:
        # a redirect is not followed: the receiver must give its final address
        raise DeliveryError(f"webhook answered HTTP {response.status_code}")
