"""Vetting's settings (DEALREG_*), validated at start; the program itself is configured in the TOML file."""

from __future__ import annotations

from pydantic import Field, field_validator

from dealreg_shared.regions import parse_regions
from dealreg_shared.settings import ServiceSettings


class VettingSettings(ServiceSettings):
    regions: str = Field(default="", description="JSON region → countries table; empty: the built-in one")

    @field_validator("regions")
    @classmethod
    def _regions_parse(cls, value: str) -> str:
        parse_regions(value)
        return value
