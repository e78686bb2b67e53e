"""Vetting on the real stack: registrations' eligibility, and partner-facing answers free of internal detail."""

from __future__ import annotations

import uuid

import pytest

from dealreg_devstack.topicreader import collect
from dealreg_shared.topics import REGISTRATIONS_VETTED
from tests.conftest import unique
from tests.e2e.conftest import Pipeline
from tests.e2e.vetting_steps import (
    events,
    final_status,
    rejected_or_passed,
    submit,
)

pytestmark = pytest.mark.e2e


# ---- registration eligibility --------------------------------------------------------------------------------


async def test_ineligible_registrations_are_rejected_with_a_reason_code_and_eligible_ones_carry_tier_and_region(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    registered = await p.onboard("starter", tier="registered")
    gold = await p.onboard("premier")
    own_domain = registered.application.website.removeprefix("https://www.")
    expected = {
        await submit(p, registered, registered.key, product_lines=("security",)): "not_entitled",
        await submit(p, registered, registered.key, amount="50000.01"): "not_entitled",
        await submit(p, registered, registered.key, domain=f"https://eu.{own_domain.upper()}/"): "customer_is_partner",
        await submit(p, gold, gold.key, contact_email=f"{unique('j')}@gmail.com", amount="150000.00"): "not_eligible",
    }
    for registration_id, reason in expected.items():
        status = await final_status(p, registration_id, done=rejected_or_passed)
        assert (status["status"], status["reason_code"], status["stage"]) == ("rejected", reason, "vetting")
        assert status["manager_detail"]["reason"]

    within = await submit(p, registered, registered.key, amount="50000.00")
    passed = await final_status(p, within, done=rejected_or_passed)
    assert passed["stage"] == "conflict" and passed["status"] != "rejected"
    rid = str(within)
    records = await collect(
        p.stack.kafka_bootstrap,
        REGISTRATIONS_VETTED,
        until=lambda rs: bool(events(rs, "registration.vetted", registration_id=rid)),
    )
    [forwarded] = events(records, "registration.vetted", registration_id=rid)
    assert (forwarded["partner_tier"], forwarded["partner_region"], forwarded["flags"]) == ("registered", "emea", [])


async def test_a_reserved_account_is_not_eligible_and_nothing_the_partner_hears_says_why(pipeline: Pipeline) -> None:
    p = pipeline
    partner = await p.onboard("reseller")
    by_domain = await submit(p, partner, partner.key, company="Globex Shop", domain="https://shop.GLOBEX.com/")
    by_name = await submit(
        p, partner, partner.key, company="INITECH holdings", domain=None, contact_email="cio@initech.example.org"
    )
    for registration_id in (by_domain, by_name):
        status = await final_status(p, registration_id, done=rejected_or_passed)
        assert (status["status"], status["reason_code"]) == ("rejected", "not_eligible")
        assert "reserved account" in status["manager_detail"]["reason"]
        assert status["partner_message"] == "This registration is not eligible for the partner program."

    def told(registration_id: uuid.UUID) -> tuple[list[str], list[str]]:
        """Every webhook and email the partner got about this registration."""
        rid = str(registration_id)
        hooks = [h.body.decode() for h in p.hooks_of(partner) if rid in h.body.decode()]
        mails = [m.subject + m.text for m in p.smtp.to(str(partner.application.contact.email)) if rid in m.text]
        return hooks, mails

    for registration_id in (by_domain, by_name):
        await p.eventually(
            lambda rid=registration_id: all(any("not_eligible" in m for m in got) for got in told(rid)),
            "the partner is told of the rejection by webhook and by email",
        )
        hooks, mails = told(registration_id)
        for message in hooks + mails:
            for secret in ("reserved", "vendor", "manager_detail", "house account"):
                assert secret not in message.lower()
