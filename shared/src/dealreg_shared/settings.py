"""Settings every service shares, read from DEALREG_* environment variables and validated at start."""

from __future__ import annotations

import sys
from typing import Any, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_KAFKA_BOOTSTRAP = "127.0.0.1:9092"
DEFAULT_PG_HOSTPORT = "127.0.0.1:5432"
DATABASE_NAME = "dealreg"


def default_database_url(service: str) -> str:
    """The local stack's DSN for a service's own login role (role and password both `dealreg_<service>`)."""
    role = f"dealreg_{service}"
    return f"postgresql://{role}:{role}@{DEFAULT_PG_HOSTPORT}/{DATABASE_NAME}"


class ServiceSettings(BaseSettings):
    """What every service needs; a service subclasses it to add its own settings."""

    model_config = SettingsConfigDict(env_prefix="DEALREG_", extra="ignore", frozen=True)

    kafka_bootstrap: str = Field(default=DEFAULT_KAFKA_BOOTSTRAP, min_length=1)
    database_url: str = Field(default="", description="DSN of the service's own role; empty means the default")
    health_port: int = Field(default=8080, ge=0, le=65535, description="0 turns the health endpoint off")
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    log_format: str = Field(default="auto", pattern="^(auto|json|console)$")
    max_attempts: int = Field(default=5, ge=1, le=100, description="tries before a poison record goes to .dlq")
    retry_backoff_ms: int = Field(default=200, ge=1)
    retry_backoff_max_ms: int = Field(default=10_000, ge=1)
    max_record_bytes: int = Field(default=256 * 1024, ge=1024)
    db_pool_size: int = Field(default=5, ge=1, le=100)
    batch_max_records: int = Field(default=200, ge=1, le=5000, description="records applied in one transaction")
    inbox_retention_days: float = Field(
        default=30.0,
        ge=0,
        le=36500,
        description="inbox rows (events applied) older than this are deleted, once no topic the service reads can "
        "still hold their events; 0: kept for ever",
    )
    retention_interval_s: float = Field(
        default=3600.0, gt=0, le=86400, description="how often the retentions run (the inbox's, notify's)"
    )
    config_file: str = Field(default="", description="the program's TOML configuration; empty: built-in defaults")


S = TypeVar("S", bound=ServiceSettings)


def load_settings(cls: type[S], service: str, **overrides: Any) -> S:
    """Read and validate settings; on a bad value, stop with a message that names the variable."""
    try:
        settings = cls(**overrides)
    except ValidationError as exc:
        lines = [f"dealreg-{service}: invalid configuration:"]
        for err in exc.errors():
            name = "DEALREG_" + "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"  {name}: {err['msg']} (got {err.get('input')!r})")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None
    if not settings.database_url:
        settings = settings.model_copy(update={"database_url": default_database_url(service)})
    return settings
