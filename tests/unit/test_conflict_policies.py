"""Per-region policies: the default region from settings and the file, overrides per region, bad files refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from dealreg_conflict.policies import ConflictConfig, Policies
from dealreg_conflict.settings import ConflictSettings
from dealreg_shared.config import ConfigError, load_section


def _policies(toml: str, tmp_path: Path, **settings: object) -> Policies:
    file = tmp_path / "c.toml"
    file.write_text(toml)
    return Policies(load_section(file, "conflict", ConflictConfig), ConflictSettings(**settings))


def test_without_a_file_every_region_gets_the_settings_values(tmp_path: Path) -> None:
    policies = _policies("", tmp_path, protection_days=45, resolution="manager_review", approval="manual")
    policy = policies.of("emea")
    assert (policy.protection_days, policy.resolution, policy.approval) == (45, "manager_review", "manual")
    assert policy.extension_cap_days == 90 and policy.territory_conflict == "reject"


def test_a_region_overrides_only_what_it_names_and_unknown_regions_get_the_default(tmp_path: Path) -> None:
    policies = _policies(
        "[conflict.default]\nprotection_days = 60\nreview_lead = 'lead@v.example'\n"
        "[conflict.regions.emea]\nresolution = 'manager_review'\nreview_sla_hours = 8\n",
        tmp_path,
    )
    emea, other = policies.of("emea"), policies.of("apac")
    assert (emea.protection_days, emea.resolution, emea.review_sla_hours, emea.review_lead) == (
        60,
        "manager_review",
        8,
        "lead@v.example",
    )
    assert (other.protection_days, other.resolution, other.review_sla_hours) == (60, "first_come", 48)


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ("[conflict.default]\nresolution = 'coin_toss'\n", "conflict.default.resolution"),
        ("[conflict.regions.emea]\nprotection_days = 0\n", "conflict.regions.emea.protection_days"),
        ("[conflict.regions.emea]\nexclusivity_cap = 3\n", "conflict.regions.emea.exclusivity_cap"),
        ("[conflict.regions.emea]\nprotection_days = 10\nexpiring_notice_days = 10\n", "expiring_notice_days"),
    ],
)
def test_a_bad_policy_stops_start_up_naming_the_field(tmp_path: Path, toml: str, field: str) -> None:
    file = tmp_path / "c.toml"
    file.write_text(toml)
    with pytest.raises(ConfigError, match=field):
        load_section(file, "conflict", ConflictConfig)
