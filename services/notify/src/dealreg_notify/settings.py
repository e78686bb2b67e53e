"""Notify's settings (DEALREG_*), validated at start; who the managers are comes from the [notify] config section."""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator

from dealreg_shared.regions import parse_regions
from dealreg_shared.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout_s: float = Field(default=30.0, gt=0, le=300)
    smtp_max_connections: int = Field(default=4, ge=1, le=100, description="SMTP sessions kept open and reused")
    smtp_idle_s: float = Field(default=20.0, gt=0, le=3600, description="an SMTP session idle longer is not reused")
    mail_from: str = "dealreg <dealreg@vendor.example>"
    manager_emails: str = Field(
        default="channel-managers@vendor.example",
        description="comma-separated channel managers' addresses: the default desk when the config file has none",
    )
    manager_webhook_url: str = Field(default="", pattern=r"^(https?://.*)?$")
    regions: str = Field(default="", description="JSON region → countries table; empty: the built-in one")
    webhook_secret: str = Field(
        default="whsec_ZGVhbHJlZy1sb2NhbC1kZXZlbG9wbWVudC1vbmx5",
        min_length=16,
        description="the vendor's master signing secret; each partner's secret is derived from it",
    )
    webhook_previous_secret: str = Field(
        default="", description="while rotating the master secret: deliveries are signed with both"
    )
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=60)
    delivery_max_attempts: int = Field(default=8, ge=1, le=50)
    delivery_backoff_s: float = Field(default=1.0, gt=0)
    delivery_backoff_max_s: float = Field(default=300.0, gt=0)
    delivery_poll_s: float = Field(default=0.5, gt=0, le=30)
    delivery_batch: int = Field(default=50, ge=1, le=1000)
    delivery_concurrency: int = Field(default=50, ge=1, le=1000, description="addresses served at once per process")
    delivery_run: int = Field(
        default=20, ge=1, le=1000, description="an address's notifications leased together and sent in order"
    )
    delivery_lease_s: float = Field(default=90.0, gt=0, description="a crashed process's claims return after this")
    digest_hourly_period_s: float = Field(default=3600.0, gt=0, description="length of an 'hourly' digest period")
    digest_daily_period_s: float = Field(default=86400.0, gt=0, description="length of a 'daily' digest period")
    notification_retention_days: float = Field(
        default=90.0,
        ge=0,
        le=36500,
        description="sent, failed and digested notifications older than this are deleted, with their delivery "
        "attempts; 0: kept for ever",
    )
    actions_port: int = Field(default=0, ge=0, le=65535, description="one-click decisions' HTTP port; 0: off")
    actions_base_url: str = Field(
        default="", pattern=r"^(https?://\S+)?$", description="what one-click links start with, e.g. https://host"
    )
    actions_secret: str = Field(
        default="act_ZGVhbHJlZy1sb2NhbC1kZXZlbG9wbWVudC1vbmx5",
        min_length=16,
        description="signs one-click tokens (HMAC-SHA256): set a long random one in every real environment",
    )
    actions_ttl_s: float = Field(default=7 * 86400.0, gt=0, description="how long a one-click link stays valid")

    @field_validator("regions")
    @classmethod
    def _regions_parse(cls, value: str) -> str:
        parse_regions(value)
        return value

    @model_validator(mode="after")
    def _lease_outlives_a_send(self) -> NotifySettings:
        # a lease that ran out while its send is still under way would let another replica send it again
        slowest = max(self.webhook_timeout_s, self.smtp_timeout_s)
        if self.delivery_lease_s <= slowest:
            raise ValueError(f"DEALREG_DELIVERY_LEASE_S must exceed the slowest send timeout ({slowest}s)")
        return self

    @model_validator(mode="after")
    def _links_lead_somewhere(self) -> NotifySettings:
        if self.actions_port and not self.actions_base_url:
            raise ValueError("DEALREG_ACTIONS_BASE_URL is needed when DEALREG_ACTIONS_PORT is set")
        return self

    @property
    def managers(self) -> list[str]:
        return [m.strip() for m in self.manager_emails.split(",") if m.strip()]
