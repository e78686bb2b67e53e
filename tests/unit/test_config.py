"""The configuration file: defaults without one, each service's section validated, errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from dealreg_shared.config import ConfigError, load_section


class Section(BaseModel):
    protection_days: int = Field(default=90, ge=1)
    regions: dict[str, int] = Field(default_factory=dict)


def test_no_file_means_the_defaults() -> None:
    assert load_section("", "conflict", Section) == Section()


def test_a_missing_section_means_the_defaults(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("[vetting]\nx = 1\n")
    assert load_section(file, "conflict", Section) == Section()


def test_the_section_is_read(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("[conflict]\nprotection_days = 30\n[conflict.regions]\nemea = 14\n")
    assert load_section(file, "conflict", Section) == Section(protection_days=30, regions={"emea": 14})


def test_a_bad_value_names_the_file_and_the_field(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text("[conflict]\nprotection_days = 0\n")
    with pytest.raises(ConfigError, match=r"c\.toml.*\n.*conflict\.protection_days"):
        load_section(file, "conflict", Section)


def test_broken_toml_and_a_missing_file_are_clear_errors(tmp_path: Path) -> None:
    broken = tmp_path / "b.toml"
    broken.write_text("[conflict\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_section(broken, "conflict", Section)
    with pytest.raises(ConfigError, match="cannot read"):
        load_section(tmp_path / "absent.toml", "conflict", Section)
