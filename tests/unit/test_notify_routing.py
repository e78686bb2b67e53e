"""Notify's routing configuration and who hears what: region desks, account managers, leads, preferences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dealreg_notify.directory import DEFAULT_REGION, Directory, NotifyConfig
from dealreg_notify.domain import PartnerContacts, route_application_vetted, route_decision_refused, route_status
from dealreg_shared.config import ConfigError, load_section
from dealreg_shared.contracts import DecisionRefused, PartnerApplicationVetted, ReasonCode, RegistrationStatusChanged

ENV_DESK = Directory.single_desk(("desk@vendor.example",))
NORTHWIND = PartnerContacts(
    "p-northwind", "Northwind Traders Ltd", ("sam@northwind.co.uk",), "https://n.example/h", "emea"
)

CONFIG = """
[notify.recipients.maria]
email = "maria@vendor.example"
[notify.recipients.tom]
email = "tom@vendor.example"
webhook_url = "https://crm.vendor.example/tom"
[notify.recipients.anna]
email = "anna@vendor.example"
digest = "daily"
[notify.recipients.lee]
email = "lee@vendor.example"
digest = "hourly"
[notify.recipients.amer-bot]
webhook_url = "https://crm.vendor.example/amer"

[notify.regions.emea]
channel_managers = ["maria", "tom"]
lead = "anna"
[notify.regions.amer]
channel_managers = ["amer-bot"]

[notify.account_managers]
p-northwind = "lee"
p-fabrikam = "maria"

[notify.partners.p-quiet]
channels = ["webhook"]
"""


@pytest.fixture
def directory(tmp_path: Path) -> Directory:
    file = tmp_path / "notify.toml"
    file.write_text(CONFIG)
    return load_section(file, "notify", NotifyConfig).directory(ENV_DESK)


def _status(status: str = "under_review", reason: str | None = None, **extra: Any) -> RegistrationStatusChanged:
    return RegistrationStatusChanged.model_validate(
        {
            "registration_id": "6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20",
            "partner_id": "p-northwind",
            "status": status,
            "reason_code": reason,
            "stage": "conflict",
            "partner_message": "Your registration is being reviewed.",
            "occurred_at": "2026-11-23T10:15:01Z",
            "customer_name": "Contoso GmbH",
            **extra,
        }
    )


def _managers(notifications: list[Any]) -> set[tuple[str, str, str]]:
    return {(n.recipient, n.channel, n.address) for n in notifications if n.recipient.startswith("manager:")}


def test_the_region_desk_and_the_partners_account_manager_hear_of_a_review(directory: Directory) -> None:
    notified = route_status(_status(region="emea"), NORTHWIND, directory)
    assert _managers(notified) == {
        ("manager:maria", "email", "maria@vendor.example"),
        ("manager:tom", "email", "tom@vendor.example"),
        ("manager:tom", "webhook", "https://crm.vendor.example/tom"),
        ("manager:lee", "email", "lee@vendor.example"),
    }


def test_another_regions_desk_hears_nothing_of_it(directory: Directory) -> None:
    notified = route_status(_status(region="amer"), NORTHWIND, directory)
    assert ("manager:amer-bot", "webhook", "https://crm.vendor.example/amer") in _managers(notified)
    assert not any(n.address.startswith(("maria", "tom")) for n in notified)


def test_a_status_without_region_goes_to_the_partners_region(directory: Directory) -> None:
    notified = route_status(_status(), NORTHWIND, directory)
    assert ("manager:maria", "email", "maria@vendor.example") in _managers(notified)


def test_a_region_without_a_desk_falls_back_to_the_environments_default_desk(directory: Directory) -> None:
    notified = route_status(_status(region="apac", partner_id="p-without-account-manager"), None, directory)
    assert _managers(notified) == {("manager:desk@vendor.example", "email", "desk@vendor.example")}


def test_the_account_manager_of_the_competing_partner_hears_of_the_conflict_too(directory: Directory) -> None:
    conflict = _status(
        "rejected",
        "registered_by_another_partner",
        region="amer",
        manager_detail={"competing_partner_id": "p-fabrikam", "competing_registration_id": "r-1"},
    )
    recipients = {n.recipient for n in route_status(conflict, NORTHWIND, directory)}
    assert {"manager:amer-bot", "manager:lee", "manager:maria"} <= recipients


def test_an_escalation_goes_to_the_region_lead_and_not_to_the_partner(directory: Directory) -> None:
    escalated = _status(region="emea", manager_detail={"escalated": True, "waiting_hours": 49})
    notified = route_status(escalated, NORTHWIND, directory)
    assert {n.recipient for n in notified} == {"manager:anna", "manager:lee"}
    assert all("Escalation" in n.subject for n in notified)


def test_conflicts_overdue_review_is_routed_as_an_escalation_to_the_lead(directory: Directory) -> None:
    """What conflict's sweeper publishes: under_review, reason review_overdue, the lead named in the detail."""
    overdue = _status(region="emea", reason="review_overdue", manager_detail={"escalated_to": "anna@vendor.example"})
    notified = route_status(overdue, NORTHWIND, directory)
    assert {n.recipient for n in notified} == {"manager:anna", "manager:lee"}
    assert all("Escalation" in n.subject for n in notified)


def test_a_region_without_lead_escalates_to_its_channel_managers(directory: Directory) -> None:
    escalated = _status(region="amer", manager_detail={"escalated": True})
    assert "manager:amer-bot" in {n.recipient for n in route_status(escalated, None, directory)}


def test_someone_with_two_roles_hears_once(directory: Directory) -> None:
    conflict = _status(region="emea", manager_detail={"competing_partner_id": "p-fabrikam"})  # maria: desk and AM
    notified = route_status(conflict, NORTHWIND, directory)
    assert [n.address for n in notified].count("maria@vendor.example") == 1


def test_a_digest_recipients_email_is_held_and_its_webhook_is_not(directory: Directory) -> None:
    notified = route_status(_status(region="emea"), NORTHWIND, directory)
    digests = {(n.recipient, n.channel): n.digest for n in notified}
    assert digests[("manager:lee", "email")] == "hourly"
    assert digests[("manager:maria", "email")] == "none"
    assert digests[("manager:tom", "webhook")] == "none"
    assert all(n.digest == "none" for n in notified if n.recipient.startswith("partner:"))


def test_a_partner_can_choose_its_webhook_only(directory: Directory) -> None:
    quiet = PartnerContacts("p-quiet", "Quiet Ltd", ("q@quiet.example",), "https://quiet.example/h", "emea")
    notified = route_status(
        _status(partner_id="p-quiet", status="approved", protected_until="2027-01-01T00:00:00Z"), quiet, directory
    )
    assert [(n.channel, n.address) for n in notified] == [("webhook", "https://quiet.example/h")]


def test_an_application_goes_to_the_desk_of_the_applicants_region(directory: Directory) -> None:
    vetted = PartnerApplicationVetted.model_validate(
        {
            "application_id": "0b7e2f64-7d0a-4b8e-9a55-1f3c2d4e5a6b",
            "partner_id": "p-x",
            "company_name": "X Ltd",
            "domain": "x.co.uk",
            "country": "GB",
            "contact": {"name": "Sam", "email": "sam@x.co.uk"},
            "checks": [],
            "flags": [],
            "recommendation": "approve",
        }
    )
    assert {n.recipient for n in route_application_vetted(vetted, directory, "emea")} == {
        "manager:maria",
        "manager:tom",
    }


def test_a_refused_decision_goes_to_the_default_desk(directory: Directory) -> None:
    refused = DecisionRefused.model_validate(
        {
            "decision_id": "0b7e2f64-7d0a-4b8e-9a55-1f3c2d4e5a6b",
            "subject_id": "r-1",
            "decision": "extend",
            "reason": "over the extension cap",
            "occurred_at": "2026-11-23T10:15:01Z",
        }
    )
    assert [n.address for n in route_decision_refused(refused, directory)] == ["desk@vendor.example"]


def test_without_a_config_file_the_environments_managers_are_the_default_desk() -> None:
    directory = NotifyConfig().directory(Directory.single_desk(("a@v.example", "b@v.example"), "https://h.example"))
    assert [r.id for r in directory.channel_managers("emea")] == ["a@v.example", "b@v.example", "webhook"]
    assert directory.desks.keys() == {DEFAULT_REGION}


def test_a_configured_default_desk_replaces_the_environments() -> None:
    config = NotifyConfig.model_validate(
        {"recipients": {"d": {"email": "d@v.example"}}, "regions": {"default": {"channel_managers": ["d"]}}}
    )
    directory = config.directory(ENV_DESK)
    assert [r.email for r in directory.channel_managers(None)] == ["d@v.example"]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[notify.regions.emea]\nchannel_managers = ["ghost"]\n', "regions.emea.channel_managers: 'ghost'"),
        ('[notify.recipients.a]\nemail = "a@v.example"\n[notify.account_managers]\np-x = "b"\n', "account_managers"),
        (
            '[notify.recipients.a]\nemail = "a@v.example"\n'
            '[notify.regions.emea]\nchannel_managers = ["a"]\nlead = "z"\n',
            "lead",
        ),
        ('[notify.recipients.a]\nwebhook_url = "https://h.example"\ndigest = "hourly"\n', "digest is an email"),
        ('[notify.recipients.a]\nemail = "not-an-address"\n', "recipients.a.email"),
        ('[notify.recipients.a]\nwebhook_url = "ftp://h.example"\n', "recipients.a.webhook_url"),
        ('[notify.recipients.a]\nemail = "a@v.example"\nchannels = ["webhook"]\n', "needs a webhook_url"),
        ('[notify.recipients.a]\nemail = "a@v.example"\ndigest = "weekly"\n', "recipients.a.digest"),
        ('[notify.recipients.a]\nemail = "a@v.example"\nemial = "typo"\n', "recipients.a.emial"),
        ("[notify.regions.emea]\nchannel_managers = []\n", "channel_managers"),
    ],
    ids=[
        "unknown-manager",
        "unknown-account-manager",
        "unknown-lead",
        "digest-without-email",
        "bad-email",
        "bad-url",
        "channel-without-address",
        "unknown-digest",
        "misspelt-key",
        "empty-desk",
    ],
)
def test_a_bad_routing_configuration_is_refused_with_the_field_named(tmp_path: Path, toml: str, message: str) -> None:
    file = tmp_path / "notify.toml"
    file.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_section(file, "notify", NotifyConfig)


def test_the_reason_code_decides_whether_managers_hear_of_a_rejection(directory: Directory) -> None:
    for reason, heard in [
        (ReasonCode.EXCLUSIVE_TERRITORY, True),
        (ReasonCode.REGISTERED_BY_ANOTHER_PARTNER, True),
        (ReasonCode.DUPLICATE_OF_OWN, False),
        (ReasonCode.NOT_ELIGIBLE, False),
    ]:
        notified = route_status(_status("rejected", reason.value, region="emea"), NORTHWIND, directory)
        assert bool(_managers(notified)) is heard, reason
