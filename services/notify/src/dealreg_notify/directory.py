"""Who the managers are: recipients, regional desks, account managers and channel preferences, validated at start.

The `[notify]` section of the configuration file (DEALREG_CONFIG_FILE); without one, the default desk is the
DEALREG_MANAGER_EMAILS list (and DEALREG_MANAGER_WEBHOOK_URL), as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, model_validator

Channel = Literal["email", "webhook"]
Digest = Literal["none", "hourly", "daily"]
DEFAULT_REGION = "default"  # the desk of any region without one of its own (dealreg_shared.regions agrees)

_ID = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$"


@dataclass(frozen=True)
class Recipient:
    """A vendor-side person or system: where and how it wants to hear."""

    id: str
    email: str | None = None
    webhook_url: str | None = None
    channels: tuple[Channel, ...] = ("email", "webhook")
    digest: Digest = "none"  # email only: a webhook is a machine, it gets every event at once
    webhook_secret: str | None = None  # None: the vendor's secret

    def addresses(self) -> list[tuple[Channel, str]]:
        out: list[tuple[Channel, str]] = []
        if self.email and "email" in self.channels:
            out.append(("email", self.email))
        if self.webhook_url and "webhook" in self.channels:
            out.append(("webhook", self.webhook_url))
        return out


@dataclass(frozen=True)
class Desk:
    """A region's channel managers, and the lead who hears of escalations."""

    channel_managers: tuple[str, ...]
    lead: str | None = None


@dataclass(frozen=True)
class Directory:
    recipients: dict[str, Recipient]
    desks: dict[str, Desk]
    account_managers: dict[str, str] = field(default_factory=dict)  # partner_id → recipient id
    partner_channels: dict[str, tuple[Channel, ...]] = field(default_factory=dict)  # partner_id → channels

    @classmethod
    def single_desk(cls, emails: tuple[str, ...], webhook_url: str | None = None) -> Directory:
        """The environment's flat list: one default desk of email managers and an optional webhook."""
        recipients = {e: Recipient(e, email=e, channels=("email",)) for e in emails}
        if webhook_url:
            recipients["webhook"] = Recipient("webhook", webhook_url=webhook_url, channels=("webhook",))
        return cls(recipients, {DEFAULT_REGION: Desk(tuple(recipients))})

    def desk(self, region: str | None) -> Desk:
        return self.desks.get(region or DEFAULT_REGION) or self.desks[DEFAULT_REGION]

    def channel_managers(self, region: str | None) -> list[Recipient]:
        return [self.recipients[r] for r in self.desk(region).channel_managers]

    def lead(self, region: str | None) -> list[Recipient]:
        """The region's lead; a region without one escalates to its channel managers rather than to no one."""
        lead = self.desk(region).lead
        return [self.recipients[lead]] if lead else self.channel_managers(region)

    def account_manager(self, partner_id: str | None) -> list[Recipient]:
        rid = self.account_managers.get(partner_id or "")
        return [self.recipients[rid]] if rid else []

    def partner_wants(self, partner_id: str, channel: Channel) -> bool:
        return channel in self.partner_channels.get(partner_id, ("email", "webhook"))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RecipientConfig(_Strict):
    email: EmailStr | None = None
    webhook_url: str | None = Field(default=None, pattern=r"^https?://\S+$", max_length=2000)
    webhook_secret: str | None = Field(default=None, min_length=16)
    channels: list[Channel] | None = Field(default=None, description="default: every channel with an address")
    digest: Digest = "none"

    @model_validator(mode="after")
    def _reachable(self) -> RecipientConfig:
        wanted = self.channels if self.channels is not None else ["email", "webhook"]
        if "email" in wanted and self.channels is not None and not self.email:
            raise ValueError("channel email needs an email address")
        if "webhook" in wanted and self.channels is not None and not self.webhook_url:
            raise ValueError("channel webhook needs a webhook_url")
        if not ((self.email and "email" in wanted) or (self.webhook_url and "webhook" in wanted)):
            raise ValueError("a recipient needs an email or a webhook_url it can be reached on")
        if self.digest != "none" and not self.email:
            raise ValueError("a digest is an email: set an email address")
        return self


class DeskConfig(_Strict):
    channel_managers: list[str] = Field(min_length=1)
    lead: str | None = None


class PartnerPreference(_Strict):
    channels: list[Channel] = Field(min_length=1)


class NotifyConfig(_Strict):
    """The `[notify]` section. Regions and account managers name recipients by their key under `recipients`."""

    recipients: dict[str, RecipientConfig] = Field(default_factory=dict)
    regions: dict[str, DeskConfig] = Field(default_factory=dict)
    account_managers: dict[str, str] = Field(default_factory=dict)
    partners: dict[str, PartnerPreference] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _references_exist(self) -> NotifyConfig:
        for key in self.recipients:
            if not re.match(_ID, key):
                raise ValueError(f"recipient key {key!r}: letters, digits and ._@+- only")
        named = [(f"regions.{r}.channel_managers", m) for r, d in self.regions.items() for m in d.channel_managers]
        named += [(f"regions.{r}.lead", d.lead) for r, d in self.regions.items() if d.lead]
        named += [(f"account_managers.{p}", m) for p, m in self.account_managers.items()]
        for where, key in named:
            if key not in self.recipients:
                raise ValueError(f"{where}: {key!r} is not one of the recipients")
        return self

    def directory(self, fallback: Directory) -> Directory:
        """The configured desks; the default desk is `fallback`'s (the environment's) unless configured."""
        recipients = dict(fallback.recipients) if DEFAULT_REGION not in self.regions else {}
        desks = {DEFAULT_REGION: fallback.desks[DEFAULT_REGION]} if DEFAULT_REGION not in self.regions else {}
        for key, r in self.recipients.items():
            recipients[key] = Recipient(
                key,
                email=str(r.email) if r.email else None,
                webhook_url=r.webhook_url,
                channels=tuple(r.channels) if r.channels is not None else ("email", "webhook"),
                digest=r.digest,
                webhook_secret=r.webhook_secret,
            )
        for region, d in self.regions.items():
            desks[region] = Desk(tuple(dict.fromkeys(d.channel_managers)), d.lead)
        return Directory(
            recipients,
            desks,
            dict(self.account_managers),
            {p: tuple(dict.fromkeys(pref.channels)) for p, pref in self.partners.items()},
        )
