"""Postgres 15 from the system's packages, in a project-local data directory, started with pg_ctl."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from dealreg_devstack.paths import state_dir
from dealreg_devstack.procs import port_open, read_pid, wait_until

ADMIN_USER = "dealreg_admin"
PG_MAJOR = "15"


@dataclass(frozen=True)
class PgLayout:
    home: Path
    port: int
    password: str

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def sockets(self) -> Path:
        return self.home / "run"

    @property
    def log(self) -> Path:
        return self.home / "postgres.log"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://{ADMIN_USER}:{self.password}@127.0.0.1:{self.port}/postgres"


def layout() -> PgLayout:
    home = state_dir() / "postgres"
    home.mkdir(exist_ok=True)
    return PgLayout(
        home,
        int(os.environ.get("DEALREG_PG_PORT", "5432")),
        os.environ.get("DEALREG_PG_ADMIN_PASSWORD", "dealreg"),
    )


def bindir() -> Path:
    """The server binaries: DEALREG_PG_BINDIR, Debian's path, or installed through apt when allowed."""
    candidates = [os.environ.get("DEALREG_PG_BINDIR", ""), f"/usr/lib/postgresql/{PG_MAJOR}/bin"]
    for c in candidates:
        if c and (Path(c) / "pg_ctl").is_file():
            return Path(c)
    if os.geteuid() == 0 and shutil.which("apt-get") and os.environ.get("DEALREG_NO_APT") != "1":
        print(f"postgres: installing postgresql-{PG_MAJOR} from the system's packages ...", file=sys.stderr)
        # no cluster of the package's own on 5432: ours lives in the project
        conf = Path("/etc/postgresql-common/createcluster.conf")
        if not conf.exists():
            conf.parent.mkdir(parents=True, exist_ok=True)
            conf.write_text("create_main_cluster = false\n")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
        subprocess.run(
            [
                "apt-get",
                "install",
                "-y",
                "-q",
                "-o",
                "Dpkg::Options::=--force-confold",
                f"postgresql-{PG_MAJOR}",
                f"postgresql-contrib-{PG_MAJOR}",
            ],
            check=False,
            env=env,
            stdout=subprocess.DEVNULL,
        )
        path = Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")
        if (path / "pg_ctl").is_file():
            return path
    raise SystemExit(
        f"dealreg: Postgres {PG_MAJOR} server binaries not found; install postgresql-{PG_MAJOR} "
        "(or set DEALREG_PG_BINDIR, or point DEALREG_ADMIN_DATABASE_URL at a running server)"
    )


def _as_owner(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse root: run them as the `postgres` user then."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _chown_for_server(lay: PgLayout) -> None:
    if os.geteuid() != 0:
        return
    try:
        pg = pwd.getpwnam("postgres")
    except KeyError:
        raise SystemExit("dealreg: running as root needs a `postgres` system user to own the database") from None
    for path in (lay.home, lay.data, lay.sockets):
        path.mkdir(exist_ok=True)
        os.chown(path, pg.pw_uid, pg.pw_gid)


def first_closed_dir(path: Path, can_enter: Callable[[Path], bool]) -> Path | None:
    """The first directory on the way from / to `path` (itself included) that `can_enter` refuses; None: all open."""
    return next((p for p in [*reversed(path.parents), path] if not can_enter(p)), None)


def _postgres_can_enter(path: Path) -> bool:
    result = subprocess.run(["runuser", "-u", "postgres", "--", "test", "-x", str(path)], check=False)
    return result.returncode == 0


def _check_reachable(lay: PgLayout) -> None:
    """As root, the server runs as `postgres`, which must be able to enter every directory above its own. Inside
    a checkout in a private folder (`mktemp -d` makes them 0700), initdb failed with `Permission denied` on a file
    of ours; say which directory and what to do instead."""
    if os.geteuid() != 0:
        return
    closed = first_closed_dir(lay.home.parent, _postgres_can_enter)
    if closed is not None:
        raise SystemExit(
            f"dealreg: the local Postgres runs as the `postgres` user, which cannot enter {closed} on the way to "
            f"{lay.home}: let it through (chmod o+x {closed}), work from a checkout it can reach, or point "
            "DEALREG_ADMIN_DATABASE_URL at a running server"
        )


def _initdb(lay: PgLayout, bins: Path) -> None:
    if (lay.data / "PG_VERSION").is_file():
        return
    _check_reachable(lay)
    lay.data.mkdir(exist_ok=True)
    lay.sockets.mkdir(exist_ok=True)
    _chown_for_server(lay)
    pwfile = lay.home / "run" / "pwfile"
    pwfile.write_text(lay.password + "\n")
    if os.geteuid() == 0:
        shutil.chown(pwfile, "postgres")
    try:
        subprocess.run(
            _as_owner(
                [
                    str(bins / "initdb"),
                    "-D",
                    str(lay.data),
                    "-U",
                    ADMIN_USER,
                    "--pwfile",
                    str(pwfile),
                    "--auth-host=scram-sha-256",
                    "--auth-local=trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    finally:
        pwfile.unlink(missing_ok=True)


async def server_ready(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn, timeout=3)
    try:
        return bool(await conn.fetchval("select true"))
    finally:
        await conn.close()


def _status(lay: PgLayout, bins: Path) -> bool:
    result = subprocess.run(
        _as_owner([str(bins / "pg_ctl"), "status", "-D", str(lay.data)]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return result.returncode == 0


async def up() -> str:
    lay = layout()
    bins = bindir()
    _initdb(lay, bins)
    _chown_for_server(lay)
    if not _status(lay, bins):
        if port_open("127.0.0.1", lay.port):
            raise SystemExit(
                f"dealreg: port {lay.port} is taken by another process; stop it, or set DEALREG_PG_PORT, "
                "or point DEALREG_ADMIN_DATABASE_URL at a running server"
            )
        options = f"-p {lay.port} -k {lay.sockets} -c listen_addresses=127.0.0.1 -c max_connections=200"
        subprocess.run(
            _as_owner(
                [
                    str(bins / "pg_ctl"),
                    "start",
                    "-D",
                    str(lay.data),
                    "-l",
                    str(lay.log),
                    "-o",
                    options,
                    "-w",
                    "-t",
                    "60",
                ]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    await wait_until(lambda: server_ready(lay.admin_dsn), timeout_s=60, what="postgres")
    return lay.admin_dsn


def down() -> bool:
    lay = layout()
    if not (lay.data / "PG_VERSION").is_file():
        return False
    bins = bindir()
    if not _status(lay, bins):
        return False
    subprocess.run(
        _as_owner([str(bins / "pg_ctl"), "stop", "-D", str(lay.data), "-m", "fast", "-w", "-t", "60"]),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return True


def running() -> bool:
    lay = layout()
    return (lay.data / "PG_VERSION").is_file() and _status(lay, bindir())


def pid() -> int | None:
    """The local server's postmaster (the parent of every backend), when it runs."""
    return read_pid(layout().data / "postmaster.pid")
