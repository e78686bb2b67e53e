"""The README's partner example, command for command: keygen, apply, (a manager approves), submit, the answer."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from dealreg_devstack.procs import wait_until
from dealreg_devstack.scenario import application_screened, decide_application, intake_knows_partner
from dealreg_shared.topics import REGISTRATION_STATUS
from tests.conftest import unique
from tests.e2e.conftest import Pipeline
from tests.e2e.intake_helpers import answers, read_to_end
from tests.e2e.test_pipeline import statuses_of

pytestmark = pytest.mark.e2e


def partner_cli(p: Pipeline, *args: str, cwd: Path) -> dict[str, Any]:
    """Run `dealreg-partner` as a partner would, from its own directory; its stdout is one JSON object."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("dealreg-partner")), *args],
        cwd=cwd,
        env={"DEALREG_KAFKA_BOOTSTRAP": p.stack.kafka_bootstrap, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def test_a_partner_onboards_and_registers_with_the_cli_alone(pipeline: Pipeline, tmp_path: Path) -> None:
    p = pipeline
    name = unique("cli")
    key = partner_cli(p, "keygen", "--key-id", "k1", "--seed-file", "k1.seed", cwd=tmp_path)
    assert (tmp_path / "k1.seed").exists() and "seed" not in key

    (tmp_path / "application.json").write_text(
        json.dumps(
            {
                "company_name": f"Cli {name} Ltd",
                "website": f"https://www.{name}.co.uk",
                "contact": {"name": "Sam Patel", "email": f"sam@{name}.co.uk"},
                "country": "GB",
                "target_markets": {"product_lines": ["analytics"], "industries": ["manufacturing"]},
                "webhook_url": p.hooks.url(name),
            }
        )
    )
    applied = partner_cli(p, "apply", "--key-id", "k1", "--seed-file", "k1.seed", "application.json", cwd=tmp_path)
    application_id = uuid.UUID(applied["application_id"])

    # the channel manager's side
    await wait_until(
        lambda: application_screened(p.stack.admin_dealreg_dsn, application_id),
        timeout_s=45,
        what="the application is screened",
    )
    await decide_application(p.producer, application_id)

    def partner_id() -> str | None:
        return next(
            (h.json["data"]["partner_id"] for h in p.hooks.to(name) if h.json["data"]["type"] == "partner.approved"),
            None,
        )

    await p.eventually(partner_id, "the partner is told it is approved, with its partner id")
    pid = partner_id() or ""
    await wait_until(lambda: intake_knows_partner(p.stack.admin_dealreg_dsn, pid), timeout_s=45, what="intake knows")

    customer = unique("contoso")
    (tmp_path / "registration.json").write_text(
        json.dumps(
            {
                "customer": {
                    "company_name": "Contoso GmbH",
                    "domain": f"{customer}.de",
                    "country": "DE",
                    "contact": {"name": "Jana Weber", "email": f"jana.weber@{customer}.de"},
                },
                "opportunity": {
                    "product_lines": ["analytics"],
                    "estimated_value": {"amount": "48000.00", "currency": "EUR"},
                    "expected_close_date": (date.today() + timedelta(days=90)).isoformat(),
                    "description": "Analytics rollout for 3 plants",
                },
            }
        )
    )
    submitted = partner_cli(
        p, "submit", "--partner-id", pid, "--key-id", "k1", "--seed-file", "k1.seed", "registration.json", cwd=tmp_path
    )
    rid = submitted["registration_id"]
    assert (await answers(p, [rid]))[rid] == [("received", None)]

    # what the CLI printed makes the file a safe retry: the same content under the same id changes nothing
    document = json.loads((tmp_path / "registration.json").read_text())
    (tmp_path / "registration.json").write_text(json.dumps({**document, **submitted}))
    again = partner_cli(
        p, "submit", "--partner-id", pid, "--key-id", "k1", "--seed-file", "k1.seed", "registration.json", cwd=tmp_path
    )
    assert again == submitted
    (tmp_path / "next.json").write_text(json.dumps(document))
    after = partner_cli(
        p, "submit", "--partner-id", pid, "--key-id", "k1", "--seed-file", "k1.seed", "next.json", cwd=tmp_path
    )
    await answers(p, [after["registration_id"]])  # behind the retry on the partner's partition
    statuses = await read_to_end(p.stack.kafka_bootstrap, REGISTRATION_STATUS)
    assert [s["status"] for s in statuses_of(statuses, rid) if s["stage"] == "intake"] == ["received"]
