"""Notify as a process on the real stack, with its own routing configuration, a real SMTP server and HTTP server.

The module swaps the pipeline's notify for one configured here (regions, account managers, a lead, a digest
recipient, short retry and digest periods) and puts the pipeline's back afterwards.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest

from dealreg_devstack.launcher import service_env, start_service, wait_ready
from dealreg_devstack.procs import wait_until
from dealreg_devstack.sinks import SmtpSink, WebhookSink
from dealreg_shared.contracts import EventType, RegistrationStatusChanged
from dealreg_shared.envelope import new_event, utcnow
from dealreg_shared.topics import REGISTRATION_STATUS
from tests.conftest import unique
from tests.e2e.conftest import Pipeline
from tests.e2e.notify_desk import (
    ACCOUNT_MGR,
    ACCOUNT_PARTNER,
    AMER_CM,
    CRM_SECRET,
    DEFAULT_DESK,
    DIGEST_MGR,
    DIGEST_PARTNER,
    EMEA_CM,
    EMEA_LEAD,
    MASTER,
    Desk,
    everything_in,
    partner_secret,
    routing_config,
    verified,
)
from tests.e2e.test_pipeline import submit

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
async def desk(pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Desk]:
    smtp, hooks = SmtpSink(), WebhookSink()
    await smtp.start()
    await hooks.start()
    config = tmp_path_factory.mktemp("notify") / "dealreg.toml"
    config.write_text(routing_config(hooks))
    env = {
        "DEALREG_CONFIG_FILE": str(config),
        "DEALREG_SMTP_PORT": str(smtp.port),
        "DEALREG_MANAGER_EMAILS": DEFAULT_DESK,
        "DEALREG_WEBHOOK_SECRET": MASTER,
        "DEALREG_DELIVERY_BACKOFF_S": "0.2",
        "DEALREG_DELIVERY_POLL_S": "0.1",
        "DEALREG_DELIVERY_BACKOFF_MAX_S": "1",
        "DEALREG_DELIVERY_MAX_ATTEMPTS": "4",
        "DEALREG_WEBHOOK_TIMEOUT_S": "3",
        "DEALREG_SMTP_TIMEOUT_S": "3",
        "DEALREG_DELIVERY_LEASE_S": "5",
        "DEALREG_DIGEST_HOURLY_PERIOD_S": "4",
    }
    pipeline.services["notify"].stop()
    notify = start_service(pipeline.stack, "notify", log_dir=pipeline.log_dir, extra_env=env)
    pipeline.services["notify"] = notify
    await wait_ready([notify])
    d = Desk(pipeline, smtp, hooks, env, notify)
    try:
        yield d
    finally:
        d.notify.stop()
        restored = start_service(
            pipeline.stack, "notify", log_dir=pipeline.log_dir, extra_env=pipeline.service_env.get("notify")
        )
        pipeline.services["notify"] = restored
        await wait_ready([restored])
        await smtp.stop()
        await hooks.stop()


async def test_the_region_desk_hears_of_a_conflict_with_both_sides_and_the_partner_only_of_its_own(
    desk: Desk,
) -> None:
    p = desk.pipeline
    first, second = await p.onboard("northwind"), await p.onboard("fabrikam")
    await p.eventually(
        lambda: any(first.name in m.subject for m in desk.smtp.to(EMEA_CM)), "a GB application goes to the emea desk"
    )
    assert not any(first.name in m.subject for m in desk.smtp.to(AMER_CM) + desk.smtp.to(DEFAULT_DESK))
    customer = unique("contoso")
    taken = await submit(
        p, first, company="Contoso GmbH", domain=f"{customer}.de", country="DE", contact_email=f"j@{customer}.de"
    )
    await p.eventually(
        lambda: any(h.json["data"].get("status") == "approved" for h in p.hooks_of(first)), "first approved"
    )
    lost = await submit(
        p, second, company="Contoso", domain=f"www.{customer}.de", country="DE", contact_email=f"k@{customer}.de"
    )
    await p.eventually(lambda: desk.mails_about(EMEA_CM, str(lost)), "the emea desk hears of the conflict")
    await p.eventually(lambda: [h for h in desk.hooks.to("emea-crm") if str(lost) in h.body.decode()], "and its CRM")

    [mail] = desk.mails_about(EMEA_CM, str(lost))
    assert "Channel conflict" in mail.subject and "Region: emea" in mail.text
    for side in (str(taken), first.partner_id, first.name, str(lost), second.partner_id, second.name):
        assert side in mail.text, f"the managers' mail names {side}"
    assert not desk.mails_about(AMER_CM, str(lost)) and not desk.mails_about(DEFAULT_DESK, str(lost))
    assert all(verified(CRM_SECRET, h) for h in desk.hooks.to("emea-crm"))

    second_email = str(second.application.contact.email)
    await p.eventually(
        lambda: (
            desk.mails_about(second_email, str(lost))
            and [h for h in p.hooks_of(second) if h.json["data"].get("reason_code") == "registered_by_another_partner"]
        ),
        "the second partner is told by email and webhook",
    )
    told_second = [h.body.decode() for h in p.hooks_of(second)]
    told_second += [everything_in(m) for m in desk.smtp.to(second_email)]
    assert any("registered_by_another_partner" in t for t in told_second)
    for secret in (first.partner_id, first.name, str(taken)):
        assert not any(secret in t for t in told_second), f"the second partner never learns {secret}"
    for partner, other in ((first, second), (second, first)):
        hooks = p.hooks_of(partner)
        assert hooks and all(verified(partner_secret(partner.partner_id), h) for h in hooks)
        assert not any(verified(partner_secret(other.partner_id), h) for h in hooks)
        assert not any(verified(MASTER, h) for h in hooks), "the master secret itself never signs a partner's hook"


async def test_account_managers_hear_of_their_partners_deals_and_escalations_go_to_the_region_lead(desk: Desk) -> None:
    await desk.partner(ACCOUNT_PARTNER, region="emea")
    review = await desk.status(
        ACCOUNT_PARTNER,
        "under_review",
        region="amer",
        manager_detail={"competing": [{"registration_id": str(uuid.uuid4()), "partner_id": "p-someone-else"}]},
    )
    await desk.pipeline.eventually(lambda: desk.mails_about(ACCOUNT_MGR, review), "the account manager hears")
    await desk.pipeline.eventually(lambda: desk.mails_about(AMER_CM, review), "the deal's region desk hears")
    assert await desk.notified(review) == {
        (f"partner:{ACCOUNT_PARTNER}", "email"),
        (f"partner:{ACCOUNT_PARTNER}", "webhook"),
        ("manager:amer-cm", "email"),
        ("manager:account-mgr", "email"),
    }

    escalated = await desk.status(
        ACCOUNT_PARTNER, "under_review", region="emea", manager_detail={"escalated": True, "waiting_hours": 50}
    )
    await desk.pipeline.eventually(lambda: desk.mails_about(EMEA_LEAD, escalated), "the emea lead hears")
    assert "Escalation" in desk.mails_about(EMEA_LEAD, escalated)[0].subject
    assert await desk.notified(escalated) == {("manager:emea-lead", "email"), ("manager:account-mgr", "email")}


async def test_a_failing_webhook_and_mail_server_are_retried_until_they_recover_and_a_dead_one_is_marked_failed(
    desk: Desk,
) -> None:
    flaky = unique("p-flaky-")
    email, hook = await desk.partner(flaky)
    await desk.pipeline.eventually(lambda: desk.hooks.to(hook), "the welcome webhook arrives")
    desk.hooks.fail_next[hook], desk.smtp.fail_next[email] = 2, 2
    registration = await desk.status(flaky, "approved", protected_until=utcnow() + timedelta(days=90))
    await desk.pipeline.eventually(
        lambda: len(desk.hooks.to(hook)) == 2 and len(desk.smtp.to(email)) == 2, "both recover and receive it"
    )
    assert desk.hooks.arrivals[hook] == 1 + 2 + 1, "the welcome, two refusals, then the status once"
    assert desk.hooks.to(hook)[1].json["data"]["registration_id"] == registration
    assert desk.smtp.arrivals[email] == 2, "refused recipients never reach DATA: the welcome and the status"
    assert all(verified(partner_secret(flaky), h) for h in desk.hooks.to(hook))

    dead = unique("p-dead-")
    dead_email, dead_hook = await desk.partner(dead)
    await desk.pipeline.eventually(lambda: desk.hooks.to(dead_hook), "the welcome webhook arrives")
    desk.hooks.fail_next[dead_hook] = 100
    gone = await desk.status(dead, "received")
    await desk.pipeline.eventually(lambda: desk.mails_about(dead_email, gone), "its email is not held up")

    async def failed_for_good() -> bool:
        return await desk.state_of(dead, gone, "webhook") == "failed"

    await wait_until(failed_for_good, timeout_s=45, what="the dead webhook's notification is given up")
    env = service_env(desk.pipeline.stack, "notify", health_port=0, extra=desk.env)
    cli = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "dealreg_notify", "failed", env=env, stdout=asyncio.subprocess.PIPE
    )
    listing = (await cli.communicate())[0].decode()
    assert cli.returncode == 0
    line = next(x for x in listing.splitlines() if desk.hooks.url(dead_hook) in x)
    assert "after 4 attempts" in line and "HTTP 503" in line


async def test_no_notification_is_sent_twice_when_notify_is_killed_mid_delivery_and_restarted(desk: Desk) -> None:
    partner = unique("p-killed-")
    email, hook = await desk.partner(partner)
    before = [await desk.status(partner, "received") for _ in range(2)]
    await desk.pipeline.eventually(lambda: len(desk.hooks.to(hook)) == 3 and len(desk.smtp.to(email)) == 3, "delivered")

    desk.hooks.hold(hook)
    desk.smtp.hold(email)
    during: list[str] = []
    for _ in range(3):
        # one at a time, each recorded before the next: statuses of different registrations share no partition,
        # so only this makes the order notify records them in (the order it owes each address) this list's
        during.append(await desk.status(partner, "received"))

        async def recorded(registration_id: str = during[-1]) -> bool:
            return (f"partner:{partner}", "webhook") in await desk.notified(registration_id)

        await desk.pipeline.eventually_async(recorded, True, "notify recorded the status's notifications")
    await desk.pipeline.eventually(
        lambda: desk.hooks.waiting(hook) == 1 and desk.smtp.waiting(email) == 1, "deliveries are in flight"
    )
    desk.notify.stop(kill=True)
    # the receivers see the connections drop: the held deliveries were never answered
    await desk.pipeline.eventually(lambda: desk.hooks.waiting(hook) == 0 and desk.smtp.waiting(email) == 0, "dropped")
    desk.hooks.release(hook)
    desk.smtp.release(email)
    await desk.restart(kill=False)

    await desk.pipeline.eventually(
        lambda: len(desk.hooks.to(hook)) == 6 and len(desk.smtp.to(email)) == 6,
        "every notification arrives after the restart",
    )
    hooks, mails = desk.hooks.to(hook), desk.smtp.to(email)
    assert len({h.headers["webhook-id"] for h in hooks}) == 6 and len({m.message["Message-ID"] for m in mails}) == 6
    for registration in before + during:
        assert sum(h.json["data"].get("registration_id") == registration for h in hooks) == 1
        assert sum(registration in m.text for m in mails) == 1
    assert [h.json["data"]["registration_id"] for h in hooks[3:]] == during, "in order, also across the restart"


async def test_a_manager_who_chose_an_hourly_digest_gets_one_mail_per_period_instead_of_one_per_event(
    desk: Desk,
) -> None:
    await desk.partner(DIGEST_PARTNER, region="amer", webhook=False)
    registrations = [await desk.status(DIGEST_PARTNER, "under_review", region="amer") for _ in range(3)]
    await desk.pipeline.eventually(
        lambda: all(desk.mails_about(AMER_CM, r) for r in registrations), "the desk is told of each one at once"
    )
    await desk.pipeline.eventually(
        lambda: all(desk.mails_about(DIGEST_MGR, r) for r in registrations), "the digest carries all three"
    )
    mails = desk.smtp.to(DIGEST_MGR)
    assert all(m.subject.startswith("[dealreg] Your hourly digest: ") for m in mails), "no mail outside a digest"
    assert len(mails) < len(registrations), "the three events span at most two periods"
    for r in registrations:
        assert sum(r in m.text for m in mails) == 1, "each event in exactly one digest"
        assert sum(r in everything_in(m) for m in mails) == 1, "and in its HTML too"


def test_the_partners_secret_the_operator_hands_out_is_the_one_that_signs_its_webhooks() -> None:
    env = {**os.environ, "DEALREG_WEBHOOK_SECRET": MASTER}
    out = subprocess.run(
        [sys.executable, "-m", "dealreg_notify", "webhook-secret", "p-northwind-0b7e2f"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == partner_secret("p-northwind-0b7e2f")


async def test_purged_history_goes_for_good_and_a_status_read_again_is_still_not_notified_twice(desk: Desk) -> None:
    """Last in the module: it ages every notification recorded so far by 100 days (creation times grow with the
    ids, as the retention expects) and purges them."""
    partner = unique("p-purged-")
    email, hook = await desk.partner(partner)
    registration = str(uuid.uuid4())
    data = RegistrationStatusChanged.model_validate(
        {
            "registration_id": registration,
            "partner_id": partner,
            "status": "approved",
            "stage": "conflict",
            "partner_message": "Your registration is approved.",
            "occurred_at": utcnow(),
            "protected_until": utcnow() + timedelta(days=90),
            "customer_name": "Contoso GmbH",
        }
    )
    event, value = new_event(
        type=EventType.REGISTRATION_STATUS_CHANGED, source="dealreg/conflict", data=data, correlation_id=registration
    )

    async def publish() -> None:
        await desk.pipeline.producer.send_and_wait(
            REGISTRATION_STATUS.name, value=value, key=registration.encode(), headers=event.headers()
        )

    await publish()
    await desk.pipeline.eventually(
        lambda: desk.mails_about(email, registration) and desk.hooks.to(hook)[1:], "the status is mailed and posted"
    )
    admin = await asyncpg.connect(desk.pipeline.stack.admin_dealreg_dsn)
    try:

        async def finished() -> bool:
            about = "select count(*) from notify.notifications where payload->>'registration_id' = $1"
            return bool(
                await admin.fetchval(about, registration)
                and not await admin.fetchval(about + " and status not in ('sent', 'digested')", registration)
            )

        await wait_until(finished, timeout_s=20, what="its notifications are recorded as sent")
        recorded = await admin.fetchval(
            "select count(*) from notify.notifications where payload->>'registration_id' = $1", registration
        )
        await admin.execute(
            "update notify.notifications set created_at = created_at - interval '100 days' "
            "where id <= (select max(id) from notify.notifications)"
        )
        env = service_env(desk.pipeline.stack, "notify", health_port=0, extra=desk.env)
        cli = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "dealreg_notify", "purge", "--days", "90", env=env, stdout=asyncio.subprocess.PIPE
        )
        output = (await cli.communicate())[0].decode()
        assert cli.returncode == 0, output
        [summary] = [line for line in output.splitlines() if line.startswith("deleted ")]
        assert int(summary.split()[1]) >= recorded
        assert "created more than 90 days ago" in summary
        left = await admin.fetchval(
            "select count(*) from notify.notifications where payload->>'registration_id' = $1", registration
        )
        assert left == 0, "the registration's notifications are gone"

        # the same status again (a replay, a producer's retry), then a new one behind it on the same partition:
        # once the new one is mailed, the old one has been read, and its event was still in notify's inbox
        await publish()
        later = await desk.status(partner, "expired", registration_id=registration)
        await desk.pipeline.eventually(
            lambda: any("expired" in m.text for m in desk.mails_about(email, later)), "the later status is mailed"
        )
        kinds = await admin.fetch(
            "select payload->>'status' as status from notify.notifications where payload->>'registration_id' = $1",
            registration,
        )
        assert {r["status"] for r in kinds} == {"expired"}, "nothing recorded again for the purged status"
        assert len([m for m in desk.mails_about(email, registration) if "approved" in m.text]) == 1
    finally:
        await admin.close()
