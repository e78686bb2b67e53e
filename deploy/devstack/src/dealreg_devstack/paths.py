"""Where the project and its ignored local state (`.dealreg/`) live."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout: DEALREG_HOME, else the first folder upwards (from here, then the cwd) with deploy/kafka/pom.xml."""
    if home := os.environ.get("DEALREG_HOME"):
        return Path(home).resolve()
    for start in (Path(__file__).resolve(), Path.cwd().resolve()):
        for folder in (start, *start.parents):
            if (folder / "deploy" / "kafka" / "pom.xml").is_file():
                return folder
    raise SystemExit("dealreg: cannot find the project (no deploy/kafka/pom.xml above here); set DEALREG_HOME")


def state_dir() -> Path:
    """Jars, data and logs of the local stack: DEALREG_STATE_DIR, else `.dealreg/` in the checkout."""
    path = Path(os.environ["DEALREG_STATE_DIR"]) if os.environ.get("DEALREG_STATE_DIR") else project_root() / ".dealreg"
    path.mkdir(parents=True, exist_ok=True)
    return path
