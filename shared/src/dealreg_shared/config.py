"""The program's configuration file (TOML, one per environment): each service validates its own section.

    DEALREG_CONFIG_FILE=config/production.toml

Everything has a sensible default, so a missing file (or section) means the defaults; a present file with a
wrong value stops the service at start with the path of the bad field.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(Exception):
    pass


def load_section(path: str | Path | None, section: str, model: type[M]) -> M:
    """The `[section]` of the TOML file at `path` as `model`; the model's defaults when path is empty."""
    if not path:
        return model()
    file = Path(path)
    try:
        document = tomllib.loads(file.read_text("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    raw = document.get(section, {})
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: [{section}] must be a table")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = [f"  {section}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ConfigError(f"{file}: invalid configuration:\n" + "\n".join(problems)) from None


def load_section_or_exit(path: str | Path | None, section: str, model: type[M], *, service: str) -> M:
    """At start-up: the section, or a clear message and exit code 2."""
    try:
        return load_section(path, section, model)
    except ConfigError as exc:
        print(f"dealreg-{service}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
