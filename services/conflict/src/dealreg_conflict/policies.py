"""Per-region conflict policies from the `[conflict]` section of the configuration file, with a default region.

[conflict.default]                # every region not named below; unset fields: the DEALREG_* settings
protection_days = 90
resolution = "first_come"         # or "manager_review"
approval = "auto"                 # or "manual"
extension_cap_days = 90           # all extensions of one registration together
exclusivity_cap_days = 365        # the longest exclusive territory
review_sla_hours = 48             # under review longer: escalated to review_lead
expiring_notice_days = 14         # the `expiring` reminder, this long before protection ends
territory_conflict = "reject"     # or "review"
review_lead = "emea-lead@vendor.example"

[conflict.regions.emea]           # only what differs from the default
resolution = "manager_review"
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dealreg_conflict.domain import Policy
from dealreg_conflict.settings import ConflictSettings
from dealreg_shared.regions import DEFAULT_REGION


class RegionPolicy(BaseModel):
    """A region's overrides: every field unset here falls back to the default region's value."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    protection_days: int | None = Field(default=None, ge=1, le=730)
    resolution: Literal["first_come", "manager_review"] | None = None
    approval: Literal["auto", "manual"] | None = None
    extension_cap_days: int | None = Field(default=None, ge=0, le=730)
    exclusivity_cap_days: int | None = Field(default=None, ge=0, le=1825)
    review_sla_hours: int | None = Field(default=None, ge=1, le=24 * 90)
    expiring_notice_days: int | None = Field(default=None, ge=0, le=365)
    territory_conflict: Literal["reject", "review"] | None = None
    review_lead: str | None = Field(default=None, max_length=200)


class ConflictConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    default: RegionPolicy = RegionPolicy()
    regions: dict[str, RegionPolicy] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _notice_inside_protection(self) -> ConflictConfig:
        for name, policy in {DEFAULT_REGION: self.default, **self.regions}.items():
            merged = self.default.model_copy(update=policy.model_dump(exclude_none=True))
            if (merged.expiring_notice_days or 0) >= (merged.protection_days or 10_000):
                raise ValueError(f"region {name}: expiring_notice_days must be shorter than protection_days")
        return self


class Policies:
    """The policy of each region; an unknown region gets the default's."""

    def __init__(self, config: ConflictConfig, settings: ConflictSettings) -> None:
        base = Policy(
            protection_days=settings.protection_days,
            resolution=settings.resolution,
            approval=settings.approval,
            extension_cap_days=settings.extension_cap_days,
        )
        self.default = _merge(base, config.default)
        self.by_region = {region: _merge(self.default, overrides) for region, overrides in config.regions.items()}

    def of(self, region: str) -> Policy:
        return self.by_region.get(region, self.default)


def _merge(base: Policy, overrides: RegionPolicy) -> Policy:
    values = {**base.__dict__, **overrides.model_dump(exclude_none=True)}
    if values["expiring_notice_days"] >= values["protection_days"]:
        values["expiring_notice_days"] = max(0, values["protection_days"] - 1)
    return Policy(**values)
