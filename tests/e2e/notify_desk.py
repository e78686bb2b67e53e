"""The harness of notify's end-to-end tests: a notify process with its own routing, and what a receiver checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg

from dealreg_devstack.launcher import ServiceProcess, start_service, wait_ready
from dealreg_devstack.sinks import ReceivedHook, ReceivedMail, SmtpSink, WebhookSink
from dealreg_shared.contracts import Contact, EventType, PartnerApproved, RegistrationStatusChanged
from dealreg_shared.envelope import utcnow
from dealreg_shared.kafka import publish_event
from dealreg_shared.topics import PARTNERS, REGISTRATION_STATUS
from tests.conftest import unique
from tests.e2e.conftest import WEBHOOK_SECRET, Pipeline

# the pipeline's master: partners onboarded here keep webhooks every pipeline test can verify
MASTER = WEBHOOK_SECRET
CRM_SECRET = "whsec_" + base64.b64encode(b"emea-crm-own-secret-0123456789").decode()
DEFAULT_DESK = "default-desk@vendor.example"
EMEA_CM, EMEA_LEAD, AMER_CM = "emea-cm@vendor.example", "emea-lead@vendor.example", "amer-cm@vendor.example"
ACCOUNT_MGR, DIGEST_MGR = "account-mgr@vendor.example", "digest-mgr@vendor.example"
ACCOUNT_PARTNER, DIGEST_PARTNER = unique("p-acct-"), unique("p-digest-")


@dataclass
class Desk:
    pipeline: Pipeline
    smtp: SmtpSink
    hooks: WebhookSink
    env: dict[str, str]
    notify: ServiceProcess

    async def restart(self, *, kill: bool) -> None:
        self.notify.stop(kill=kill)
        self.notify = start_service(self.pipeline.stack, "notify", log_dir=self.pipeline.log_dir, extra_env=self.env)
        self.pipeline.services["notify"] = self.notify
        await wait_ready([self.notify])

    async def partner(self, partner_id: str, *, region: str = "emea", webhook: bool = True) -> tuple[str, str]:
        """A partner approved (published as vetting would); returns its contact's address and hook name."""
        name, email = unique("hook"), f"{unique('contact')}@{partner_id}.example"
        approved = PartnerApproved(
            partner_id=partner_id,
            application_id=uuid.uuid4(),
            company_name=f"Company of {partner_id}",
            domain=f"{partner_id}.example",
            tier="gold",
            region=region,
            contacts=[Contact(name="Sam Patel", email=email)],
            public_keys=[],
            webhook_url=self.hooks.url(name) if webhook else None,
        )
        await publish_event(
            self.pipeline.producer,
            PARTNERS,
            key=partner_id,
            type=EventType.PARTNER_APPROVED,
            source="dealreg/vetting",
            data=approved,
        )
        # notify knows the partner once it has welcomed it
        await self.pipeline.eventually(lambda: self.smtp.to(email), f"{partner_id} is welcomed")
        return email, name

    async def status(self, partner_id: str, status: str, **fields: Any) -> str:
        registration_id = fields.pop("registration_id", None) or str(uuid.uuid4())
        data = RegistrationStatusChanged.model_validate(
            {
                "registration_id": registration_id,
                "partner_id": partner_id,
                "status": status,
                "stage": "conflict",
                "partner_message": f"Your registration is {status}.",
                "occurred_at": utcnow(),
                "customer_name": "Contoso GmbH",
                **fields,
            }
        )
        await publish_event(
            self.pipeline.producer,
            REGISTRATION_STATUS,
            key=registration_id,
            type=EventType.REGISTRATION_STATUS_CHANGED,
            source="dealreg/conflict",
            data=data,
            correlation_id=registration_id,
        )
        return registration_id

    async def notified(self, registration_id: str) -> set[tuple[str, str]]:
        """(recipient, channel) of every notification notify recorded for the registration (as an operator sees)."""
        conn = await asyncpg.connect(self.pipeline.stack.admin_dealreg_dsn)
        try:
            rows = await conn.fetch(
                "select recipient, channel from notify.notifications where payload->>'registration_id' = $1",
                registration_id,
            )
        finally:
            await conn.close()
        return {(r["recipient"], r["channel"]) for r in rows}

    async def state_of(self, partner_id: str, registration_id: str, channel: str) -> str | None:
        conn = await asyncpg.connect(self.pipeline.stack.admin_dealreg_dsn)
        try:
            state: str | None = await conn.fetchval(
                "select status from notify.notifications where recipient = $1 and channel = $2 "
                "and payload->>'registration_id' = $3",
                f"partner:{partner_id}",
                channel,
                registration_id,
            )
        finally:
            await conn.close()
        return state

    def mails_about(self, address: str, text: str) -> list[ReceivedMail]:
        return [m for m in self.smtp.to(address) if text in m.text]


def everything_in(mail: ReceivedMail) -> str:
    """Subject, text and HTML body, decoded: what a reader of the mail can see."""
    html = mail.message.get_body(preferencelist=("html",))
    return mail.subject + mail.text + (html.get_content() if html is not None else "")


def routing_config(hooks: WebhookSink) -> str:
    return f"""
[notify.recipients.emea-cm]
email = "{EMEA_CM}"
[notify.recipients.emea-crm]
webhook_url = "{hooks.url("emea-crm")}"
webhook_secret = "{CRM_SECRET}"
[notify.recipients.emea-lead]
email = "{EMEA_LEAD}"
[notify.recipients.amer-cm]
email = "{AMER_CM}"
[notify.recipients.account-mgr]
email = "{ACCOUNT_MGR}"
[notify.recipients.digest-mgr]
email = "{DIGEST_MGR}"
digest = "hourly"

[notify.regions.emea]
channel_managers = ["emea-cm", "emea-crm"]
lead = "emea-lead"
[notify.regions.amer]
channel_managers = ["amer-cm"]

[notify.account_managers]
{ACCOUNT_PARTNER} = "account-mgr"
{DIGEST_PARTNER} = "digest-mgr"
"""


def verified(secret: str, hook: ReceivedHook) -> bool:
    """A receiver's check, written without our library (Standard Webhooks)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{hook.headers['webhook-id']}.{hook.headers['webhook-timestamp']}.".encode() + hook.body
    expected = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(hmac.compare_digest(expected, s) for s in hook.headers["webhook-signature"].split())


def partner_secret(partner_id: str) -> str:
    """What `dealreg-notify webhook-secret <partner_id>` prints, derived here independently."""
    key = base64.b64decode(MASTER.removeprefix("whsec_"))
    derived = hmac.new(key, f"dealreg-webhook-secret:{partner_id}".encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(derived).decode()
