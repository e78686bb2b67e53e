"""Intake's settings: DEALREG_* variables and the `[intake]` section of the configuration file, validated at start."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dealreg_intake.validation import is_country
from dealreg_shared.regions import parse_regions
from dealreg_shared.settings import ServiceSettings

# tiers are the contract's identifiers (vetting assigns them), so a limit for any other name would never apply
_TIER = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


class IntakeSettings(ServiceSettings):
    regions: str = Field(default="", description="JSON region → countries table; empty: the built-in one")

    @field_validator("regions")
    @classmethod
    def _regions_parse(cls, value: str) -> str:
        unknown = sorted(c for c in parse_regions(value) if not is_country(c))
        if unknown:
            # a typo such as UK for GB would silently send that country's deals to the default region
            raise ValueError(f"not ISO 3166-1 alpha-2 country codes: {', '.join(unknown)}")
        return value


class TierLimits(BaseModel):
    """What one partner of a tier may do: its submission rate and how many registrations it may hold active."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    submissions_per_minute: float = Field(default=60.0, gt=0, le=1_000_000)
    burst: int = Field(default=120, ge=1, le=1_000_000, description="submissions allowed at once after a pause")
    max_active_registrations: int = Field(default=500, ge=1, le=10_000_000)


class IntakeConfig(BaseModel):
    """`[intake]` of DEALREG_CONFIG_FILE; every field has a default, so no file means these values.

    [intake]
    close_date_horizon_days = 730
    [intake.default_limits]
    submissions_per_minute = 60
    burst = 120
    max_active_registrations = 500
    [intake.tiers.gold]
    max_active_registrations = 2000
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    close_date_horizon_days: int = Field(default=730, ge=1, le=3660, description="how far ahead a deal may close")
    max_clock_skew_s: int = Field(default=300, ge=0, le=86_400, description="how far in the future submitted_at may be")
    default_limits: TierLimits = Field(default_factory=TierLimits)
    tiers: dict[str, TierLimits] = Field(default_factory=dict, description="limits of named tiers; others: default")

    @model_validator(mode="after")
    def _tier_names_are_identifiers(self) -> IntakeConfig:
        bad = [t for t in self.tiers if not _TIER.fullmatch(t)]
        if bad:
            raise ValueError(f"tier names are lower-case identifiers, as vetting assigns them: {bad}")
        return self

    def limits_for(self, tier: str | None) -> TierLimits:
        return self.tiers.get(tier or "", self.default_limits)
