"""Conflict's settings (DEALREG_*), validated at start; per-region policies come from the configuration file."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from dealreg_shared.regions import parse_regions
from dealreg_shared.settings import ServiceSettings


class ConflictSettings(ServiceSettings):
    # the default region's policy where the configuration file's [conflict.default] leaves it unset
    protection_days: int = Field(default=90, ge=1, le=730)
    resolution: Literal["first_come", "manager_review"] = "first_come"
    approval: Literal["auto", "manual"] = "auto"
    extension_cap_days: int = Field(default=90, ge=0, le=730)
    regions: str = Field(default="", description="JSON region → countries table; empty: the built-in one")
    sweep_interval_s: float = Field(default=60.0, gt=0, le=3600, description="how often expiry is swept")
    sweep_batch: int = Field(default=500, ge=1, le=10_000)
    # tests only: the service's clock is the system's plus an offset read from the clock_offset table
    controllable_clock: bool = False

    @field_validator("regions")
    @classmethod
    def _regions_parse(cls, value: str) -> str:
        parse_regions(value)
        return value
