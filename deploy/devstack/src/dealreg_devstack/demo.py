"""`make demo`: the whole pipeline on the local stack, told as a story a person can read.

Two partners apply, a manager approves both, both register the same customer deal: the first is protected
and becomes an opportunity, the second is told "registered by another partner", the manager hears of the
conflict, and a forged submission is turned away. Every notification is printed at the end.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from functools import partial

from dealreg_devstack.launcher import ServiceProcess, start_all, stop_all_while_serving
from dealreg_devstack.paths import state_dir
from dealreg_devstack.procs import wait_until
from dealreg_devstack.provision import provision
from dealreg_devstack.scenario import (
    ScenarioPartner,
    new_partner,
    new_registration,
    onboard,
)
from dealreg_devstack.sinks import SmtpSink, WebhookSink
from dealreg_devstack.stack import from_environment, local_stack_up, reset_local
from dealreg_devstack.topicreader import Record, collect
from dealreg_shared.kafka import make_producer
from dealreg_shared.partner import PartnerClient
from dealreg_shared.signing import SigningKey
from dealreg_shared.topics import OPPORTUNITIES

MANAGER = "channel-managers@vendor.example"
T0 = time.monotonic()


def say(text: str) -> None:
    print(f"[{time.monotonic() - T0:6.1f}s] {text}", flush=True)


async def until(what: str, probe_sync: object, timeout_s: float = 60) -> None:
    async def probe() -> bool:
        return bool(probe_sync())  # type: ignore[operator]

    await wait_until(probe, timeout_s=timeout_s, what=what)


def approved_id(hooks: WebhookSink, name: str) -> str | None:
    return next(
        (h.json["data"]["partner_id"] for h in hooks.to(name) if h.json["data"]["type"] == "partner.approved"), None
    )


def hook_statuses(hooks: WebhookSink, name: str) -> list[str]:
    return [h.json["data"].get("status", h.json["data"]["type"]) for h in hooks.to(name)]


async def run_demo(*, keep_running: bool = False) -> int:
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    given = from_environment()
    if given is None:
        # the story needs a stack that has not met these partners and customers before
        say("starting a fresh local stack (Kafka KRaft broker, Postgres 15) ...")
        reset_local()
        stack = await local_stack_up()
        run = ""
    else:
        say(f"using the stack at {given.kafka_bootstrap}; names carry a run id so the story can be told again")
        stack, run = given, f"-{uuid.uuid4().hex[:4]}"
    await provision(stack)
    smtp, hooks = SmtpSink(), WebhookSink()
    await smtp.start()
    await hooks.start()
    log_dir = state_dir() / "logs"
    say(f"starting intake, vetting, conflict, notify (their logs: {log_dir}) ...")
    notify_env = {"DEALREG_SMTP_PORT": str(smtp.port), "DEALREG_MANAGER_EMAILS": MANAGER}
    services: dict[str, ServiceProcess] = await start_all(stack, log_dir=log_dir, extra_env={"notify": notify_env})
    producer = make_producer(stack.kafka_bootstrap, client_id="dealreg-demo-manager")
    await producer.start()
    try:
        northwind = new_partner(
            company="Northwind Traders Ltd",
            website=f"https://www.northwind{run}.co.uk",
            contact_name="Sam Patel",
            email=f"sam.patel@northwind{run}.co.uk",
            country="GB",
            webhook_url=hooks.url("northwind"),
        )
        fabrikam = new_partner(
            company="Fabrikam Inc",
            website=f"https://fabrikam{run}.com",
            contact_name="Lee Chen",
            email=f"lee.chen@fabrikam{run}.com",
            country="US",
            webhook_url=hooks.url("fabrikam"),
        )
        partners = {"northwind": northwind, "fabrikam": fabrikam}

        say("1. Northwind Traders and Fabrikam apply; vetting screens them and the managers get the checks")
        say("2. A channel manager approves both applications")
        for name, p in partners.items():
            await onboard(p, stack=stack, producer=producer, approved_partner_id=partial(approved_id, hooks, name))
            say(f"   {p.name} is partner {p.partner_id}")

        say("3. Northwind registers a deal with Contoso GmbH (contoso.de)")
        first = new_registration(
            northwind.partner_id,
            company="Contoso GmbH",
            domain=f"contoso{run}.de",
            country="DE",
            contact_email=f"jana.weber@contoso{run}.de",
        )
        async with PartnerClient(bootstrap=stack.kafka_bootstrap, key=northwind.key) as client:
            await client.submit(first)
        await until("Northwind's registration is decided", lambda: "approved" in hook_statuses(hooks, "northwind"))
        say("   approved: Northwind's deal is protected")

        say("4. Fabrikam registers the same customer deal, written differently (https://eu.Contoso.de/, 'Contoso')")
        second = new_registration(
            fabrikam.partner_id,
            company="Contoso",
            domain=f"https://eu.Contoso{run}.de/",
            country="DE",
            contact_email=f"j.weber@contoso{run}.de",
        )
        async with PartnerClient(bootstrap=stack.kafka_bootstrap, key=fabrikam.key) as client:
            await client.submit(second)
        await until("Fabrikam's registration is decided", lambda: "rejected" in hook_statuses(hooks, "fabrikam"))
        await until(
            "managers hear of the conflict", lambda: any("Channel conflict" in m.subject for m in smtp.to(MANAGER))
        )
        say("   conflict caught: Fabrikam is told the deal is taken; the managers get both sides")

        say("5. Someone forges a registration in Northwind's name with a key Northwind never registered")
        forged = new_registration(
            northwind.partner_id,
            company="Tailspin Toys",
            domain=f"tailspintoys{run}.com",
            country="US",
            contact_email=f"buyer@tailspintoys{run}.com",
        )
        async with PartnerClient(bootstrap=stack.kafka_bootstrap, key=SigningKey.generate("k1")) as client:
            await client.submit(forged)
        await until(
            "the forgery is answered",
            lambda: any(h.json["data"].get("reason_code") == "unauthenticated" for h in hooks.to("northwind")),
        )
        say("   rejected as unauthenticated; nothing of it reached vetting or conflict")

        opportunities = await collect(
            stack.kafka_bootstrap,
            OPPORTUNITIES,
            until=lambda rs: any(r.data.get("registration_id") == str(first.registration_id) for r in rs),
        )
        ours = [
            r
            for r in opportunities
            if r.data.get("registration_id") in {str(first.registration_id), str(second.registration_id)}
        ]
        await until("every notification is delivered", lambda: len(smtp.mails) >= 8 and len(hooks.hooks) >= 6, 30)
        print_summary(smtp, hooks, partners, ours)
        told_fabrikam = [h.body.decode() for h in hooks.to("fabrikam")]
        told_fabrikam += [m.subject + m.text for m in smtp.to(str(fabrikam.application.contact.email))]
        leaked = [text for text in told_fabrikam if "Northwind" in text or northwind.partner_id in text]
        if leaked or len(ours) != 1:
            say("FAILED: " + ("Fabrikam learned about Northwind" if leaked else f"{len(ours)} opportunities"))
            return 1
        say("done: one opportunity for Contoso, and Fabrikam never learned who holds it")
        return 0
    finally:
        await producer.stop()
        if keep_running:
            say("services keep running (stop them with Ctrl+C on this command)")
            await asyncio.Event().wait()
        await stop_all_while_serving(services)
        await smtp.stop()
        await hooks.stop()


def print_summary(
    smtp: SmtpSink, hooks: WebhookSink, partners: dict[str, ScenarioPartner], opportunities: list[Record]
) -> None:
    print("\n" + "=" * 100)
    print("Every notification sent")
    print("=" * 100)
    print(f"{'channel':8} {'to':38} subject / status")
    for m in smtp.mails:
        print(f"{'email':8} {', '.join(m.rcpt_tos)[:38]:38} {m.subject}")
    for h in hooks.hooks:
        data = h.json["data"]
        what = data.get("status") or data.get("type")
        if data.get("reason_code"):
            what += f" ({data['reason_code']})"
        print(f"{'webhook':8} {('partner ' + h.name)[:38]:38} {what}: {data.get('message', h.json['subject'])}")
    conflict = next((m for m in smtp.mails if "Channel conflict" in m.subject), None)
    if conflict:
        print("\n--- what the channel managers read about the conflict " + "-" * 45)
        print(conflict.text.rstrip())
    rejected = [h for h in hooks.to("fabrikam") if h.json["data"].get("status") == "rejected"]
    if rejected:
        print("\n--- what Fabrikam's system received (webhook, signed) " + "-" * 45)
        print(rejected[0].json["data"]["message"], f"[reason_code={rejected[0].json['data']['reason_code']}]")
    print("\n--- opportunities for the CRM " + "-" * 69)
    for r in opportunities:
        d = r.data
        print(
            f"opportunity {d['opportunity_id']} · {d['customer']['company_name']} · partner {d['partner_id']} · "
            f"{d['estimated_value']['amount']} {d['estimated_value']['currency']} · "
            f"protected until {d['protected_until'][:10]}"
        )
    print("=" * 100 + "\n")
