"""Intake's `[intake]` configuration: defaults without a file, tiers' limits read, a bad value named at start."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dealreg_intake.settings import IntakeConfig, IntakeSettings, TierLimits
from dealreg_intake.validation import is_country
from dealreg_shared.config import ConfigError, load_section
from dealreg_shared.regions import parse_regions
from dealreg_shared.settings import load_settings


def test_without_a_file_intake_has_sensible_limits() -> None:
    config = load_section("", "intake", IntakeConfig)
    assert config == IntakeConfig()
    assert config.default_limits.burst >= 1 and config.default_limits.max_active_registrations >= 1
    assert config.close_date_horizon_days == 730


def test_default_limits_and_per_tier_limits_are_read_from_the_intake_section(tmp_path: Path) -> None:
    file = tmp_path / "production.toml"
    file.write_text(
        "[intake]\nclose_date_horizon_days = 365\n"
        "[intake.default_limits]\nsubmissions_per_minute = 10\nburst = 20\nmax_active_registrations = 50\n"
        "[intake.tiers.gold]\nmax_active_registrations = 1000\n"
    )
    config = load_section(file, "intake", IntakeConfig)
    assert config.close_date_horizon_days == 365
    default = TierLimits(submissions_per_minute=10, burst=20, max_active_registrations=50)
    assert config.limits_for("registered") == default
    # a tier names only what differs from the built-in defaults
    assert config.limits_for("gold") == TierLimits(max_active_registrations=1000)


@pytest.mark.parametrize(
    ("toml", "field"),
    [
        ("[intake.default_limits]\nburst = 0\n", "intake.default_limits.burst"),
        ("[intake.tiers.gold]\nsubmissions_per_minute = -1\n", "intake.tiers.gold.submissions_per_minute"),
        ("[intake.tiers.gold]\nmax_active = 5\n", "intake.tiers.gold.max_active"),
        ("[intake]\nclose_date_horizon_days = 0\n", "intake.close_date_horizon_days"),
        ("[intake]\nrate_limit = 5\n", "intake.rate_limit"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_field(tmp_path: Path, toml: str, field: str) -> None:
    file = tmp_path / "bad.toml"
    file.write_text(toml)
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_section(file, "intake", IntakeConfig)


def test_a_tier_name_vetting_could_never_assign_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "bad.toml"
    file.write_text('[intake.tiers."Gold"]\nburst = 5\n')
    with pytest.raises(ConfigError, match="lower-case"):
        load_section(file, "intake", IntakeConfig)


def test_the_region_table_names_real_countries_only(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv("DEALREG_REGIONS", '{"emea": ["DE", "UK"]}')
    with pytest.raises(SystemExit):
        load_settings(IntakeSettings, "intake")
    err = capsys.readouterr().err
    assert "DEALREG_REGIONS" in err and "UK" in err
    monkeypatch.setenv("DEALREG_REGIONS", '{"dach": ["DE", "AT", "CH"]}')
    assert load_settings(IntakeSettings, "intake").regions == '{"dach": ["DE", "AT", "CH"]}'


def test_the_built_in_region_table_passes_the_same_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEALREG_REGIONS", raising=False)
    assert all(is_country(country) for country in parse_regions(""))
    assert load_settings(IntakeSettings, "intake").regions == ""
