"""`python -m dealreg_vetting.evaluate`: score the screening checks on a labelled set of partner applications.

Prints how many legitimate applications were flagged (anything but an `approve` recommendation: a manager
has to look) and how many bad ones passed (`approve`), with each miss and which checks fired on which label.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from dealreg_shared.config import load_section
from dealreg_shared.contracts import ApplicationCheck, Contact, PartnerApplicationSubmitted, PublicKey, TargetMarkets
from dealreg_shared.domains import registrable_domain
from dealreg_shared.envelope import utcnow
from dealreg_shared.regions import DEFAULT_REGIONS, region_of
from dealreg_vetting.config import VettingConfig
from dealreg_vetting.domain import Screening, screen_application
from dealreg_vetting.maillists import mail_domains

# the set lives beside the package's source (services/vetting/eval), not inside the installed package
EVAL_DIR = Path(__file__).resolve().parents[2] / "eval"
INVALID = "invalid_payload"
REGIONS = {country: region for region, countries in DEFAULT_REGIONS.items() for country in countries}


@dataclass(frozen=True)
class Scored:
    row: dict[str, Any]
    screening: Screening

    @property
    def passed(self) -> bool:
        return self.screening.recommendation == "approve"


def to_application(row: dict[str, Any]) -> PartnerApplicationSubmitted:
    return PartnerApplicationSubmitted(
        application_id=uuid.uuid5(uuid.NAMESPACE_URL, json.dumps(row, sort_keys=True)),
        company_name=row["company_name"],
        website=row["website"],
        contact=Contact(name="Applicant", email=row["email"]),
        country=row["country"],
        target_markets=TargetMarkets(product_lines=row["product_lines"], industries=row["industries"]),
        public_keys=[PublicKey(key_id="k1", public_key="A" * 43)],
        submitted_at=utcnow(),
    )


def screen_row(row: dict[str, Any], config: VettingConfig, partners: dict[str, str]) -> Screening:
    try:
        application = to_application(row)
    except ValidationError as exc:
        # the contract refuses it before any check: vetting answers partner.application.invalid
        problem = "; ".join(e["msg"] for e in exc.errors())
        return Screening("", [ApplicationCheck(check=INVALID, passed=False, evidence=problem)], [INVALID], "reject")
    region = region_of(row["country"], REGIONS)
    return screen_application(application, existing_partners=partners, config=config, region=region)


def score(rows: list[dict[str, Any]], config: VettingConfig, partner_domains: list[str]) -> list[Scored]:
    domains = sorted({registrable_domain(d) or d for d in partner_domains})
    partners = {d: f"p-existing-{i}" for i, d in enumerate(domains)}
    return [Scored(row, screen_row(row, config, partners)) for row in rows]


def report(results: list[Scored]) -> str:
    legit = [r for r in results if r.row["label"] == "legitimate"]
    bad = [r for r in results if r.row["label"] == "bad"]
    flagged = [r for r in legit if not r.passed]
    passed = [r for r in bad if r.passed]
    rejected = sum(r.screening.recommendation == "reject" for r in bad)
    lines = [
        f"labelled applications: {len(results)} ({len(legit)} legitimate, {len(bad)} bad)",
        f"legitimate flagged (a manager must look): {len(flagged)} of {len(legit)} ({_pct(len(flagged), len(legit))})",
        f"bad passed (recommended for approval):   {len(passed)} of {len(bad)} ({_pct(len(passed), len(bad))})",
        f"bad recommended for rejection:           {rejected} of {len(bad)}; the rest for review",
        "",
        "legitimate ones flagged:",
        *[f"  {_line(r)}" for r in flagged],
        "bad ones passed:",
        *[f"  {_line(r)}" for r in passed],
        "",
        "check                   fired on legitimate  fired on bad",
    ]
    on_legit = Counter(f for r in legit for f in r.screening.flags)
    on_bad = Counter(f for r in bad for f in r.screening.flags)
    checks = list(dict.fromkeys(c.check for r in results for c in r.screening.checks))
    for check in checks:
        lines.append(f"  {check:<22}{on_legit[check]:>20}{on_bad[check]:>14}")
    lines += ["", "kind of application                 label        n  flagged"]
    kinds = Counter((r.row["kind"], r.row["label"]) for r in results)
    for (kind, label), n in sorted(kinds.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        hit = sum(not r.passed for r in results if (r.row["kind"], r.row["label"]) == (kind, label))
        lines.append(f"  {kind:<34}{label:<11}{n:>3}{hit:>9}")
    return "\n".join(lines)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def _line(r: Scored) -> str:
    flags = ", ".join(r.screening.flags) or "no flags"
    return f"[{r.row['kind']}] {r.row['company_name']} <{r.row['email']}>: {flags}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--set", type=Path, default=EVAL_DIR / "applications.jsonl", help="labelled JSONL")
    parser.add_argument("--config", type=Path, default=EVAL_DIR / "config.toml", help="[vetting] and [evaluation]")
    args = parser.parse_args(argv)
    rows = [json.loads(line) for line in args.set.read_text("utf-8").splitlines() if line.strip()]
    config = load_section(args.config, "vetting", VettingConfig)
    evaluation = tomllib.loads(args.config.read_text("utf-8")).get("evaluation", {})
    started = time.perf_counter()
    mail_domains(config.mail_lists)
    loaded = time.perf_counter()
    results = score(rows, config, list(evaluation.get("existing_partner_domains", [])))
    done = time.perf_counter()
    print(report(results))
    print(
        f"\nlists loaded in {1000 * (loaded - started):.0f} ms; {len(rows)} applications screened in "
        f"{1000 * (done - loaded):.0f} ms ({1e6 * (done - loaded) / max(len(rows), 1):.0f} µs each)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
