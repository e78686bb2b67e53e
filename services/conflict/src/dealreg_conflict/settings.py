"""Conflict's settings (DEALREG_*), validated at start. Per-region policies come with the conflict issue."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from dealreg_shared.settings import ServiceSettings


class ConflictSettings(ServiceSettings):
    protection_days: int = Field(default=90, ge=1, le=730)
    resolution: Literal["first_come", "manager_review"] = "first_come"
    approval: Literal["auto", "manual"] = "auto"
    extension_cap_days: int = Field(default=90, ge=0, le=730)
