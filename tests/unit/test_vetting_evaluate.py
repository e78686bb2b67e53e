"""The labelled evaluation set: big enough, varied, and scored as the note on the issue reports."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from dealreg_shared.config import load_section
from dealreg_vetting.config import VettingConfig
from dealreg_vetting.evaluate import EVAL_DIR, main, score

ROWS = [json.loads(line) for line in (EVAL_DIR / "applications.jsonl").read_text("utf-8").splitlines() if line]


def test_the_set_holds_at_least_100_labelled_applications_of_real_world_shapes() -> None:
    labels = Counter(r["label"] for r in ROWS)
    assert len(ROWS) >= 100 and set(labels) == {"legitimate", "bad"}
    assert min(labels.values()) >= 40
    emails = [r["email"] for r in ROWS]
    assert any(e.endswith(".co.uk") for e in emails) and any(e.endswith(".com.au") for e in emails)
    assert any(not e.isascii() for e in emails)  # IDN
    assert any(e != e.lower() for e in emails)  # upper case
    assert sum(r["kind"] == "subdomain_email" for r in ROWS) >= 3


def test_only_what_no_list_can_see_passes_and_only_known_hard_cases_are_flagged() -> None:
    config = load_section(EVAL_DIR / "config.toml", "vetting", VettingConfig)
    results = score(ROWS, config, ["adatum.com", "litware.co.uk", "proseware.com.au"])
    bad_passed = {r.row["kind"] for r in results if r.row["label"] == "bad" and r.passed}
    legit_flagged = {r.row["kind"] for r in results if r.row["label"] == "legitimate" and not r.passed}
    assert bad_passed <= {"fresh_consistent_domain"}
    assert legit_flagged <= {"telco_on_free_list", "group_domain", "rebrand", "sole_trader_free_mail"}


def test_the_scoring_command_prints_the_figures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "legitimate flagged (a manager must look):" in out
    assert "bad passed (recommended for approval):" in out
