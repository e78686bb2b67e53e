"""Running the four services as local processes against a stack, each with its own role and health port."""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from dealreg_devstack.procs import free_port, pid_alive, tail, wait_until
from dealreg_devstack.provision import SERVICES, Stack

_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform == "linux" else None


def _die_with(parent: int) -> None:
    """In the child, before exec: SIGTERM (a clean drain) once `parent` dies, however it dies. Should it have died
    already, between the fork and now, the child does not start."""
    assert _LIBC is not None
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:
        os._exit(1)


def child_process(args: list[str], **popen: Any) -> subprocess.Popen[bytes]:
    """A process a dev tool runs for the length of its work (a service, a relay hop). On Linux it stops when the
    tool stops, even by SIGTERM or SIGKILL: left running, it would go on consuming in the next run's consumer
    groups, against that run's stack, and send mail to a server that has gone."""
    parent = os.getpid()
    preexec = (lambda: _die_with(parent)) if _LIBC is not None else None
    # preexec_fn can deadlock on a lock another thread held at the fork: only prctl and getppid run there
    return subprocess.Popen(args, preexec_fn=preexec, **popen)


@dataclass
class ServiceProcess:
    service: str
    health_port: int
    log_path: Path
    proc: subprocess.Popen[bytes]
    _log: IO[bytes] = field(repr=False)

    def alive(self) -> bool:
        return self.proc.poll() is None

    async def ready(self) -> bool:
        async with httpx.AsyncClient(timeout=2) as client:
            response = await client.get(f"http://127.0.0.1:{self.health_port}/readyz")
            return response.status_code == 200

    def stop(self, *, kill: bool = False, timeout_s: float = 30) -> int:
        """SIGTERM (drains in-flight work) or SIGKILL; returns the exit code."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._log.close()
        return code


def service_env(stack: Stack, service: str, *, health_port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEALREG_")}
    env.update(
        DEALREG_KAFKA_BOOTSTRAP=stack.kafka_bootstrap,
        DEALREG_DATABASE_URL=stack.service_dsn(service),
        DEALREG_HEALTH_PORT=str(health_port),
        DEALREG_LOG_FORMAT="json",
    )
    env.update(extra or {})
    return env


def start_service(
    stack: Stack, service: str, *, log_dir: Path, extra_env: dict[str, str] | None = None, replica: int = 0
) -> ServiceProcess:
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / (f"{service}.log" if replica == 0 else f"{service}-{replica}.log")
    log = log_path.open("ab")
    proc = child_process(
        [sys.executable, "-m", f"dealreg_{service}"],
        env=service_env(stack, service, health_port=port, extra=extra_env),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    return ServiceProcess(service, port, log_path, proc, log)


async def wait_ready(processes: list[ServiceProcess], *, timeout_s: float = 90) -> None:
    for p in processes:
        try:
            await wait_until(p.ready, timeout_s=timeout_s, what=f"service {p.service}", alive=p.alive)
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}; last lines of {p.log_path}:\n{tail(p.log_path)}") from None


async def start_all(
    stack: Stack, *, log_dir: Path, extra_env: dict[str, dict[str, str]] | None = None
) -> dict[str, ServiceProcess]:
    processes = {s: start_service(stack, s, log_dir=log_dir, extra_env=(extra_env or {}).get(s)) for s in SERVICES}
    try:
        await wait_ready(list(processes.values()))
    except BaseException:
        stop_all(processes)
        raise
    return processes


def stop_all(processes: dict[str, ServiceProcess]) -> None:
    for p in processes.values():
        if p.alive() or pid_alive(p.proc.pid):
            p.stop()


async def stop_all_while_serving(processes: dict[str, ServiceProcess]) -> None:
    """`stop_all` off the event loop, which goes on serving the sinks it runs (mail, webhooks) meanwhile: a
    stopping notify finishes the message it is sending. With the loop blocked in `stop_all`, that message's reply
    never came, notify's drain gave it up, and its lease kept the address from the next run's mail for 90 s."""
    await asyncio.to_thread(stop_all, processes)
