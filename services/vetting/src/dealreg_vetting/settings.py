"""Vetting's settings (DEALREG_*), validated at start."""

from __future__ import annotations

from pydantic import Field, field_validator

from dealreg_shared.regions import parse_regions
from dealreg_shared.settings import ServiceSettings


class VettingSettings(ServiceSettings):
    regions: str = Field(default="", description="JSON region → countries table; empty: the built-in one")
    deny_list: str = Field(default="", description="comma-separated registrable domains never to onboard")
    default_tier: str = Field(default="registered", pattern=r"^[a-z0-9_-]{1,32}$")

    @field_validator("regions")
    @classmethod
    def _regions_parse(cls, value: str) -> str:
        parse_regions(value)
        return value

    @property
    def denied_domains(self) -> frozenset[str]:
        return frozenset(d.strip().lower() for d in self.deny_list.split(",") if d.strip())
