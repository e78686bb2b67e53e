"""The benchmark's workload: the same mix in every run, each run with customers of its own."""

from __future__ import annotations

import json
import random

from dealreg_devstack.bench.workload import Submission, bench_partner, make_submissions
from dealreg_devstack.scenario import ScenarioPartner


def _partners(count: int) -> list[ScenarioPartner]:
    partners = [bench_partner(i, "run0") for i in range(count)]
    for i, p in enumerate(partners):
        p.partner_id = f"partner-{i}"  # as approval names it
    return partners


def _names(submissions: list[Submission]) -> list[str]:
    return [json.loads(s.value)["customer"]["company_name"] for s in submissions]


def test_two_runs_have_the_same_mix_and_no_customer_name_in_common() -> None:
    partners = _partners(4)
    first = make_submissions(partners, 2000, "run1", random.Random(7))
    second = make_submissions(partners, 2000, "run2", random.Random(7))
    assert [s.kind for s in first] == [s.kind for s in second]
    assert not set(_names(first)) & set(_names(second))


def test_within_a_run_only_the_conflicting_registrations_repeat_a_customer_name() -> None:
    submissions = make_submissions(_partners(4), 2000, "run1", random.Random(7))
    own = [name for s, name in zip(submissions, _names(submissions), strict=True) if s.kind != "conflict"]
    assert len(own) == len(set(own))
    kinds = {kind: sum(s.kind == kind for s in submissions) / len(submissions) for kind in ("conflict", "invalid")}
    assert 0.07 < kinds["conflict"] < 0.13 and 0.01 < kinds["invalid"] < 0.05
