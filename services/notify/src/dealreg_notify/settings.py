"""Notify's settings (DEALREG_*), validated at start."""

from __future__ import annotations

from pydantic import Field

from dealreg_shared.settings import ServiceSettings


class NotifySettings(ServiceSettings):
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_username: str = ""
    smtp_password: str = ""
    mail_from: str = "dealreg <dealreg@vendor.example>"
    manager_emails: str = Field(
        default="channel-managers@vendor.example", description="comma-separated channel managers' addresses"
    )
    manager_webhook_url: str = Field(default="", pattern=r"^(https?://.*)?$")
    webhook_secret: str = Field(
        default="whsec_ZGVhbHJlZy1sb2NhbC1kZXZlbG9wbWVudC1vbmx5",
        min_length=16,
        description="Standard Webhooks signing secret shared with receivers; the default is for local use only",
    )
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=60)
    delivery_max_attempts: int = Field(default=8, ge=1, le=50)
    delivery_backoff_s: float = Field(default=1.0, gt=0)
    delivery_backoff_max_s: float = Field(default=300.0, gt=0)
    delivery_poll_s: float = Field(default=0.5, gt=0, le=30)
    delivery_batch: int = Field(default=50, ge=1, le=1000)

    @property
    def managers(self) -> list[str]:
        return [m.strip() for m in self.manager_emails.split(",") if m.strip()]
