"""The local Postgres's set-up: a checkout its server user cannot reach is named before initdb fails on it."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dealreg_devstack.postgres_local import PgLayout, _check_reachable, _postgres_can_enter, first_closed_dir


def test_the_first_closed_directory_on_the_way_is_named() -> None:
    closed = {Path("/srv/a/b")}
    assert first_closed_dir(Path("/srv/a/b/c/d"), lambda p: p not in closed) == Path("/srv/a/b")
    assert first_closed_dir(Path("/srv/a/b"), lambda p: p not in closed) == Path("/srv/a/b")
    assert first_closed_dir(Path("/srv/a/x/y"), lambda p: p not in closed) is None


def _has_postgres_user() -> bool:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return True


@pytest.fixture
def private_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp())  # 0700, as `mktemp -d` makes them
    yield path
    shutil.rmtree(path)


@pytest.mark.skipif(
    os.geteuid() != 0 or not _has_postgres_user(), reason="only root runs the server as the postgres user"
)
def test_a_checkout_in_a_private_folder_stops_set_up_with_the_folder_named(private_dir: Path) -> None:
    home = private_dir / "repo" / ".dealreg" / "postgres"
    home.mkdir(parents=True)
    assert not _postgres_can_enter(private_dir)
    with pytest.raises(SystemExit, match=f"cannot enter {private_dir} on the way to {home}"):
        _check_reachable(PgLayout(home, 5432, "secret"))
    private_dir.chmod(0o755)
    assert _postgres_can_enter(private_dir)
    _check_reachable(PgLayout(home, 5432, "secret"))  # open all the way: no complaint
