"""The benchmark's traffic: many approved partners, signed registrations with conflicts and invalid ones."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial

from aiokafka import AIOKafkaProducer

from dealreg_devstack.procs import wait_until
from dealreg_devstack.provision import Stack
from dealreg_devstack.scenario import (
    ScenarioPartner,
    decide_application,
    intake_knows_partner,
    new_partner,
    new_registration,
)
from dealreg_devstack.topicreader import collect
from dealreg_shared.partner import apply, signed_submission
from dealreg_shared.signing import SigningKey
from dealreg_shared.topics import PARTNERS


@dataclass(frozen=True)
class Submission:
    registration_id: str
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    kind: str  # "clear", "conflict" or "invalid"


def bench_partner(i: int, run: str) -> ScenarioPartner:
    """The run's i-th partner, before it applies (no webhook: its mail is what the benchmark counts)."""
    return new_partner(
        company=f"Bench Partner {i} {run}",
        website=f"https://bench{i}-{run}.co.uk",
        contact_name="Bench",
        email=f"ops@bench{i}-{run}.co.uk",
        country="GB",
        webhook_url=None,
    )


async def onboard_partners(stack: Stack, producer: AIOKafkaProducer, count: int, run: str) -> list[ScenarioPartner]:
    """Apply and approve `count` partners at once; wait until intake knows all of them."""
    partners = [bench_partner(i, run) for i in range(count)]
    for p in partners:
        await apply(stack.kafka_bootstrap, p.application)
    wanted = {str(p.application.application_id) for p in partners}
    await collect(
        stack.kafka_bootstrap,
        PARTNERS,
        timeout_s=120,
        until=lambda rs: (
            wanted
            <= {r.data.get("application_id") for r in rs if r.headers.get("ce_type") == "partner.application.vetted"}
        ),
    )
    for p in partners:
        await decide_application(producer, p.application.application_id)
    records = await collect(
        stack.kafka_bootstrap,
        PARTNERS,
        timeout_s=120,
        until=lambda rs: (
            wanted <= {r.data.get("application_id") for r in rs if r.headers.get("ce_type") == "partner.approved"}
        ),
    )
    ids = {
        r.data["application_id"]: r.data["partner_id"]
        for r in records
        if r.headers.get("ce_type") == "partner.approved"
    }
    for p in partners:
        p.partner_id = ids[str(p.application.application_id)]
        await wait_until(
            partial(intake_knows_partner, stack.admin_dealreg_dsn, p.partner_id),
            timeout_s=60,
            what="intake learns of the bench partners",
        )
    return partners


def make_submissions(
    partners: list[ScenarioPartner],
    count: int,
    run: str,
    rng: random.Random,
    *,
    conflicting: float = 0.10,
    invalid: float = 0.03,
) -> list[Submission]:
    """Signed in advance, so the publisher measures the pipeline and not our signing."""
    out: list[Submission] = []
    forger = SigningKey.generate("k1")
    customers: list[tuple[str, str, ScenarioPartner]] = []
    # the run's own customers: the same names in every run would make each registration of a run on a kept stack
    # a name candidate of its namesake in every earlier run (the mix above stays the same from run to run)
    names = company_names(random.Random(f"customers-{run}"))  # noqa: S311
    for i in range(count):
        roll = rng.random()
        partner = rng.choice(partners)
        kind = "clear"
        company = next(names)
        if roll < invalid:
            kind = "invalid"
            domain = f"x{i}-{run}.com"
        elif roll < invalid + conflicting and customers:
            domain, company, holder = rng.choice(customers)
            partner = rng.choice([p for p in partners if p is not holder])
            kind = "conflict"
        else:
            domain = f"c{i}-{run}.com"
            customers.append((domain, company, partner))
        reg = new_registration(
            partner.partner_id, company=company, domain=domain, country="DE", contact_email=f"buyer@{domain}"
        )
        key, value, headers = signed_submission(reg, forger if kind == "invalid" else partner.key)
        out.append(Submission(str(reg.registration_id), key, value, headers, kind))
    return out


_ONSETS = ("b", "br", "c", "d", "f", "g", "gr", "h", "k", "l", "m", "n", "p", "qu", "r", "s", "st", "t", "v", "z")
_VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "io")
_CODAS = ("", "n", "r", "x", "l", "s", "nd", "rt", "m")
_TRADES = ("Logistik", "Maschinenbau", "Analytics", "Pharma", "Retail", "Energie", "Systems", "Foods", "Textil", "Bau")
_FORMS = ("GmbH", "AG", "KG", "SE", "GmbH & Co. KG")


def company_names(rng: random.Random) -> Iterator[str]:
    """Distinct, varied company names ("Brionx Logistik GmbH"), as a customer base has: names that all share a
    word ("Customer 17", "Customer 18") would make every registration a name candidate of every other."""
    seen: set[str] = set()
    while True:
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) + rng.choice(_CODAS) for _ in range(rng.randint(2, 3)))
        name = f"{word.capitalize()} {rng.choice(_TRADES)} {rng.choice(_FORMS)}"
        if word not in seen:
            seen.add(word)
            yield name


BENCH_ID = "bench_id"


def relay_copies(submissions: list[Submission]) -> list[Submission]:
    """The same records for the do-nothing relay, tagged with an id the relay carries along in the headers."""
    out = []
    for s in submissions:
        bench_id = str(uuid.uuid4())
        out.append(Submission(bench_id, s.key, s.value, [*s.headers, (BENCH_ID, bench_id.encode())], s.kind))
    return out
