"""Vetting on the real stack: every screening check on the domain shapes partners really type."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dealreg_shared.contracts import EventType, PartnerApplicationSubmitted
from dealreg_shared.partner import apply
from dealreg_shared.topics import PARTNER_APPLICATIONS
from tests.conftest import unique
from tests.e2e.conftest import Pipeline
from tests.e2e.vetting_steps import (
    application,
    events,
    partner_topic,
    publish,
)

pytestmark = pytest.mark.e2e


# ---- screening: every check, with the real-world shapes partners type ----------------------------------------

CASES: dict[str, tuple[Callable[[str, str], PartnerApplicationSubmitted], set[str], str]] = {
    # name: (application from a unique label and the incumbent partner's domain, flags expected, recommendation)
    "co_uk_upper_case": (
        lambda u, _: application(email=f"Sam.Patel@{u.upper()}.CO.UK", website=f"HTTPS://WWW.{u.upper()}.co.uk/About"),
        set(),
        "approve",
    ),
    "com_au_subdomain_email": (
        lambda u, _: application(email=f"ops@mail.{u}.com.au", website=f"{u}.com.au", country="AU"),
        set(),
        "approve",
    ),
    "idn": (
        lambda u, _: application(
            email=f"jörg@müller-{u}.de", website=f"https://www.MÜLLER-{u}.de/kontakt", country="DE"
        ),
        set(),
        "approve",
    ),
    "free_mail": (
        lambda u, _: application(email=f"{u}@GMail.com", website=f"https://{u}.co.uk"),
        {"free_mail", "domain_mismatch"},
        "review",
    ),
    "free_mail_japan": (
        lambda u, _: application(email=f"{u}@yahoo.co.jp", website=f"https://{u}.co.jp", country="JP"),
        {"free_mail", "domain_mismatch"},
        "review",
    ),
    "disposable": (
        lambda u, _: application(email=f"{u}@mailinator.com", website=f"https://{u}.com"),
        {"disposable_email", "free_mail", "domain_mismatch"},  # the free-mail list holds it too
        "reject",
    ),
    "invalid_email": (
        lambda u, _: application(email=f"sam@{u}.con", website=f"https://{u}.com"),
        {"invalid_email", "domain_mismatch"},
        "reject",
    ),
    "domain_mismatch": (
        lambda u, _: application(email=f"sam@{u}-traders.com", website=f"https://www.{u}.co.uk"),
        {"domain_mismatch"},
        "review",
    ),
    "already_partner": (
        lambda u, incumbent: application(email=f"new.team@{incumbent}", website=f"https://shop.{incumbent}/"),
        {"already_partner"},
        "reject",
    ),
    "deny_listed_domain": (
        lambda u, _: application(email=f"{u}@eu.RivalSoft.com", website="https://www.rivalsoft.com"),
        {"deny_listed"},
        "reject",
    ),
    "deny_listed_name": (
        lambda u, _: application(email=f"sam@{u}.co.uk", website=f"{u}.co.uk", company="RIVAL software"),
        {"deny_listed"},
        "reject",
    ),
    "outside_target_market": (
        lambda u, _: application(
            email=f"sam@{u}.com", website=f"https://{u}.com", country="US", product_lines=("hardware",)
        ),
        {"outside_target_market"},
        "review",
    ),
}


@pytest.fixture(scope="module")
async def screened(pipeline: Pipeline) -> dict[str, dict[str, Any]]:
    """Every case applied at once (one pass over the topic), then each test reads its own outcome."""
    incumbent = await pipeline.onboard("incumbent")
    incumbent_domain = incumbent.application.website.removeprefix("https://www.")
    apps = {name: make(unique("v"), incumbent_domain) for name, (make, _, _) in CASES.items()}
    for app in apps.values():
        await apply(pipeline.stack.kafka_bootstrap, app)
    ids = {str(app.application_id): name for name, app in apps.items()}
    records = await partner_topic(
        pipeline,
        lambda rs: ids.keys() <= {e["application_id"] for e in events(rs, "partner.application.vetted")},
    )
    return {
        ids[e["application_id"]]: e for e in events(records, "partner.application.vetted") if e["application_id"] in ids
    }


@pytest.mark.parametrize("case", list(CASES))
async def test_each_check_flags_its_case_with_evidence_and_a_recommendation(
    screened: dict[str, dict[str, Any]], case: str
) -> None:
    result = screened[case]
    _, expected, recommendation = CASES[case]
    assert set(result["flags"]) == expected
    assert result["recommendation"] == recommendation
    checks = {c["check"]: c for c in result["checks"]}
    assert set(checks) == {
        "invalid_email",
        "free_mail",
        "disposable_email",
        "domain_mismatch",
        "already_partner",
        "deny_listed",
        "outside_target_market",
    }
    assert all(c["evidence"] for c in checks.values())
    assert {name for name, c in checks.items() if not c["passed"]} == expected


async def test_real_world_domain_shapes_resolve_to_the_companys_registrable_domain(
    screened: dict[str, dict[str, Any]],
) -> None:
    assert screened["co_uk_upper_case"]["domain"].endswith(".co.uk")
    assert screened["com_au_subdomain_email"]["domain"].endswith(".com.au")
    assert not screened["com_au_subdomain_email"]["domain"].startswith("mail.")
    assert screened["idn"]["domain"].startswith("xn--mller-")
    assert screened["free_mail"]["domain"] != "gmail.com"  # the partner is its company, never its mail provider


async def test_an_application_breaking_the_contract_is_answered_with_what_is_wrong(pipeline: Pipeline) -> None:
    data = application(email="sam@example.net", website="https://x.com").model_dump(mode="json")
    data["contact"]["email"] = "sam at northwind"
    aid = data["application_id"]
    await publish(pipeline, PARTNER_APPLICATIONS, key=aid, type=EventType.PARTNER_APPLICATION_SUBMITTED, data=data)
    records = await partner_topic(
        pipeline, lambda rs: bool(events(rs, "partner.application.invalid", application_id=aid))
    )
    [answer] = events(records, "partner.application.invalid", application_id=aid)
    assert answer["reason_code"] == "invalid_payload"
    assert any(e.startswith("contact.email") for e in answer["errors"])
