"""Small process helpers: pid files, polling with a deadline, log tails."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path


def read_pid(pid_file: Path) -> int | None:
    """The live process a pid file names (on its first line: Postgres's postmaster.pid has more)."""
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still "exists": look at its state
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True


def stop_pid(pid_file: Path, *, timeout_s: float = 30.0) -> bool:
    """SIGTERM, wait for a clean stop, SIGKILL past the deadline. True when something was stopped."""
    pid = read_pid(pid_file)
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)
    return True


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


async def wait_until(
    probe: Callable[[], Awaitable[bool]],
    *,
    timeout_s: float,
    what: str,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Poll `probe` until it answers True; fail with `what` past the deadline or when `alive` says it died."""
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    while True:
        try:
            if await probe():
                return
        except Exception:  # noqa: S110 - not ready yet is expected while starting
            pass
        if alive is not None and not alive():
            raise RuntimeError(f"{what}: the process exited while starting")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not ready after {timeout_s:.0f}s")
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 1.0)
