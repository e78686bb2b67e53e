"""One-click decisions on the real stack: a manager follows the link in a real email and it is decided once."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest

from dealreg_devstack.scenario import new_partner
from dealreg_notify.actions import sign, verify
from dealreg_shared.contracts import EventType
from dealreg_shared.outbox import TO_PUBLISH
from dealreg_shared.partner import apply
from dealreg_shared.topics import PARTNER_DECISIONS, REGISTRATION_DECISIONS, REGISTRATION_STATUS
from tests.conftest import unique
from tests.e2e.conflict_support import Tail, publish_vetted, vetted
from tests.e2e.conftest import ACTIONS_SECRET, MANAGER, Pipeline

pytestmark = pytest.mark.e2e


@pytest.fixture
async def statuses(pipeline: Pipeline) -> AsyncIterator[Tail]:
    tail = Tail(pipeline.stack.kafka_bootstrap, REGISTRATION_STATUS)
    await tail.start()
    try:
        yield tail
    finally:
        await tail.stop()


async def links_in_mail(pipeline: Pipeline, record_id: str) -> dict[str, str]:
    """The one-click links (label → url) of the manager's email about `record_id`, once it has arrived."""

    def mail() -> str | None:
        for m in pipeline.smtp.mails:
            if MANAGER in m.rcpt_tos and record_id in m.text and "/actions/" in m.text:
                return m.text
        return None

    await pipeline.eventually(mail, f"the manager's email about {record_id} with its links")
    return dict(re.findall(r"^  - (.+): (http://\S+/actions/\S+)\r?$", mail() or "", flags=re.MULTILINE))


@pytest.fixture
async def decisions(pipeline: Pipeline) -> AsyncIterator[list[Tail]]:
    tails = [Tail(pipeline.stack.kafka_bootstrap, t) for t in (REGISTRATION_DECISIONS, PARTNER_DECISIONS)]
    for tail in tails:
        await tail.start()
    try:
        yield tails
    finally:
        for tail in tails:
            await tail.stop()


async def decisions_published(pipeline: Pipeline, decisions: list[Tail], record_id: str) -> int:
    """The decision events about the record that notify has published, counted once everything its outbox held
    is on Kafka (the relay leaves nothing unpublished behind it) and read."""

    async def unrelayed() -> int:
        conn = await asyncpg.connect(pipeline.stack.admin_dealreg_dsn)
        try:
            n: int = await conn.fetchval(f"select count(*) from notify.outbox where {TO_PUBLISH}")
            return n
        finally:
            await conn.close()

    await pipeline.eventually_async(unrelayed, 0, "notify's outbox relayed")
    for tail in decisions:
        await tail.caught_up()
    return sum(r.key == record_id.encode() for tail in decisions for r in tail.records)


def token_of(url: str) -> str:
    return url.rsplit("/actions/", 1)[1]


async def test_a_manager_decides_a_review_from_the_email_once_and_bad_links_publish_nothing(
    pipeline: Pipeline, statuses: Tail, decisions: list[Tail]
) -> None:
    reg = vetted(
        unique("p-click-"), company=f"Contoso {unique('')}", domain=f"{unique('contoso')}.com", region="manual"
    )
    rid = str(reg.registration_id)
    await publish_vetted(pipeline.producer, reg)
    links = await links_in_mail(pipeline, rid)
    approve, reject = links["Approve this registration"], links["Reject this registration"]
    base = approve.split("/actions/", 1)[0]

    async with httpx.AsyncClient(timeout=10) as client:
        page = await client.get(approve)
        assert page.status_code == 200 and "Confirm" in page.text and rid in page.text and "approve" in page.text
        assert await decisions_published(pipeline, decisions, rid) == 0  # looking is not deciding
        done = await client.post(approve)
        assert done.status_code == 200 and "Decision recorded" in done.text
        await statuses.wait_for(
            "the registration is approved",
            lambda: any(
                s["status"] == "approved" for s in statuses.of_type(EventType.REGISTRATION_STATUS_CHANGED, rid)
            ),
        )
        assert await decisions_published(pipeline, decisions, rid) == 1

        again = await client.post(approve)
        assert again.status_code == 409 and "already used" in again.text

        # the other link of the same email: valid, unused, but the registration is no longer under review
        async def reject_out_of_date() -> bool:
            page = await client.get(reject)
            return page.status_code == 409 and "moved on" in page.text

        await pipeline.eventually_async(reject_out_of_date, True, "notify sees the registration has moved on")
        late = await client.post(reject)
        assert late.status_code == 409 and "moved on" in late.text

        token = verify(token_of(reject), ACTIONS_SECRET, now=time.time())
        expired = sign(token.model_copy(update={"j": uuid.uuid4().hex, "x": int(time.time()) - 1}), ACTIONS_SECRET)
        for method in ("GET", "POST"):
            gone = await client.request(method, f"{base}/actions/{expired}")
            assert gone.status_code == 410 and "expired" in gone.text

        other = vetted(unique("p-other-"), company=f"Fabrikam {unique('')}", region="manual")
        body, signature = token_of(reject).split(".")
        other_body = sign(token.model_copy(update={"r": str(other.registration_id)}), "x" * 32).split(".")[0]
        middle = len(body) // 2
        one_char = body[:middle] + ("A" if body[middle] != "A" else "B") + body[middle + 1 :]
        for forged in (f"{other_body}.{signature}", f"{one_char}.{signature}"):
            refused = await client.post(f"{base}/actions/{forged}")
            assert refused.status_code == 400 and "not valid" in refused.text

        assert await decisions_published(pipeline, decisions, rid) == 1
        assert await decisions_published(pipeline, decisions, str(other.registration_id)) == 0


async def test_a_manager_approves_a_partner_application_from_the_email(
    pipeline: Pipeline, decisions: list[Tail]
) -> None:
    name = unique("clickapp")
    partner = new_partner(
        company=f"Clickapp {name[-8:]} Ltd",
        website=f"https://www.{name}.co.uk",
        contact_name="Sam Patel",
        email=f"sam@{name}.co.uk",
        country="GB",
        webhook_url=pipeline.hooks.url(name),
    )
    await apply(pipeline.stack.kafka_bootstrap, partner.application)
    app_id = str(partner.application.application_id)
    links = await links_in_mail(pipeline, app_id)

    def approved() -> bool:
        return any(h.json["data"]["type"] == "partner.approved" for h in pipeline.hooks.to(name))

    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.post(links["Approve the application"])).status_code == 200
        await pipeline.eventually(approved, "the partner is told it is approved")
        late = await client.post(links["Reject the application"])  # notify told the partner: it knows
        assert late.status_code == 409 and "moved on" in late.text
    assert await decisions_published(pipeline, decisions, app_id) == 1


async def test_a_manager_picks_the_winner_of_a_conflict_from_the_email(pipeline: Pipeline, statuses: Tail) -> None:
    domain = f"{unique('litware')}.com"
    a = vetted(unique("p-win-"), company=f"Litware {unique('')}", domain=domain, region="review_manual")
    b = vetted(unique("p-lose-"), company=f"Litware Inc {unique('')}", domain=domain, region="review_manual")
    await publish_vetted(pipeline.producer, a)
    await statuses.wait_for(
        "a is under review", lambda: statuses.of_type(EventType.REGISTRATION_STATUS_CHANGED, a.registration_id)
    )
    await publish_vetted(pipeline.producer, b)
    links = await links_in_mail(pipeline, str(b.registration_id))
    pick_a = links[f"Pick competing registration {a.registration_id}"]
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.post(pick_a)).status_code == 200

    def latest(reg_id: uuid.UUID) -> str | None:
        seen = statuses.of_type(EventType.REGISTRATION_STATUS_CHANGED, reg_id)
        return seen[-1]["status"] if seen else None

    await statuses.wait_for(
        "a wins and b loses", lambda: (latest(a.registration_id), latest(b.registration_id)) == ("approved", "rejected")
    )
