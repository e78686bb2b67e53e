"""Settings are read from DEALREG_* variables and validated at start: fail fast, naming the variable."""

from __future__ import annotations

import os

import pytest

from dealreg_conflict.settings import ConflictSettings
from dealreg_intake.settings import IntakeSettings
from dealreg_notify.settings import NotifySettings
from dealreg_shared.settings import ServiceSettings, default_database_url, load_settings
from dealreg_vetting.settings import VettingSettings

SERVICES: list[tuple[str, type[ServiceSettings]]] = [
    ("intake", IntakeSettings),
    ("vetting", VettingSettings),
    ("conflict", ConflictSettings),
    ("notify", NotifySettings),
]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("DEALREG_"):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(("service", "cls"), SERVICES)
def test_a_bad_health_port_stops_the_service_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], service: str, cls: type[ServiceSettings]
) -> None:
    monkeypatch.setenv("DEALREG_HEALTH_PORT", "notaport")
    with pytest.raises(SystemExit) as info:
        load_settings(cls, service)
    assert info.value.code not in (0, None)
    err = capsys.readouterr().err
    assert "DEALREG_HEALTH_PORT" in err
    assert "notaport" in err
    assert f"dealreg-{service}" in err


def test_an_out_of_range_port_is_refused_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEALREG_HEALTH_PORT", "70000")
    with pytest.raises(SystemExit):
        load_settings(IntakeSettings, "intake")
    assert "DEALREG_HEALTH_PORT" in capsys.readouterr().err


def test_every_bad_variable_is_named_at_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEALREG_HEALTH_PORT", "notaport")
    monkeypatch.setenv("DEALREG_LOG_LEVEL", "LOUD")
    monkeypatch.setenv("DEALREG_RESOLUTION", "coin_toss")
    with pytest.raises(SystemExit):
        load_settings(ConflictSettings, "conflict")
    err = capsys.readouterr().err
    for name in ("DEALREG_HEALTH_PORT", "DEALREG_LOG_LEVEL", "DEALREG_RESOLUTION"):
        assert name in err


def test_a_bad_region_table_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DEALREG_REGIONS", '{"emea": ["DE"], "dach": ["DE"]}')
    with pytest.raises(SystemExit):
        load_settings(IntakeSettings, "intake")
    assert "DEALREG_REGIONS" in capsys.readouterr().err


@pytest.mark.parametrize(("service", "cls"), SERVICES)
def test_an_empty_database_url_becomes_the_default_dsn_of_the_services_role(
    monkeypatch: pytest.MonkeyPatch, service: str, cls: type[ServiceSettings]
) -> None:
    monkeypatch.setenv("DEALREG_DATABASE_URL", "")
    settings = load_settings(cls, service)
    expected = f"postgresql://dealreg_{service}:dealreg_{service}@127.0.0.1:5432/dealreg"
    assert settings.database_url == expected
    assert settings.database_url == default_database_url(service)


def test_an_unset_database_url_becomes_the_default_dsn_too() -> None:
    assert load_settings(VettingSettings, "vetting").database_url == default_database_url("vetting")


def test_a_given_database_url_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEALREG_DATABASE_URL", "postgresql://u:p@db.example:6543/other")
    assert load_settings(IntakeSettings, "intake").database_url == "postgresql://u:p@db.example:6543/other"


def test_valid_environment_values_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEALREG_HEALTH_PORT", "9100")
    monkeypatch.setenv("DEALREG_KAFKA_BOOTSTRAP", "broker:9093")
    monkeypatch.setenv("DEALREG_PROTECTION_DAYS", "30")
    settings = load_settings(ConflictSettings, "conflict")
    assert settings.health_port == 9100
    assert settings.kafka_bootstrap == "broker:9093"
    assert settings.protection_days == 30


def test_defaults_are_the_local_stack() -> None:
    settings = load_settings(IntakeSettings, "intake")
    assert settings.kafka_bootstrap == "127.0.0.1:9092"
    assert settings.health_port == 8080


@pytest.mark.parametrize("variable", ["DEALREG_INBOX_RETENTION_DAYS", "DEALREG_NOTIFICATION_RETENTION_DAYS"])
def test_a_retention_longer_than_a_date_can_reach_is_refused_at_start_not_in_its_first_round(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str
) -> None:
    """A cutoff of now minus 10^12 days is no date: the retention would fail at every round instead."""
    monkeypatch.setenv(variable, "1e12")
    with pytest.raises(SystemExit):
        load_settings(NotifySettings, "notify")
    assert variable in capsys.readouterr().err
    monkeypatch.setenv(variable, "36500")
    assert load_settings(NotifySettings, "notify")
