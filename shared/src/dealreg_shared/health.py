"""A tiny HTTP endpoint: `/livez` (the process answers), `/readyz` (broker and database answer), `/metrics`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import structlog

from dealreg_shared.metrics import exposition

log = structlog.get_logger(__name__)

ReadinessCheck = Callable[[], Awaitable[bool]]
_REASONS = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}


class HealthServer:
    def __init__(self, *, port: int, checks: dict[str, ReadinessCheck], host: str = "0.0.0.0") -> None:
        self.host = host
        self.port = port
        self.checks = checks
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("health_listening", port=self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def readiness(self) -> tuple[bool, dict[str, bool]]:
        results: dict[str, bool] = {}
        for name, check in self.checks.items():
            try:
                results[name] = await asyncio.wait_for(check(), timeout=3.0)
            except Exception:
                results[name] = False
        return all(results.values()), results

    async def _respond(self, path: str) -> tuple[int, bytes, str]:
        if path == "/metrics":
            return 200, exposition(), "text/plain; version=0.0.4; charset=utf-8"
        body: dict[str, object]
        if path == "/livez":
            status, body = 200, {"status": "alive"}
        elif path == "/readyz":
            ready, results = await self.readiness()
            status, body = (200 if ready else 503), {"status": "ready" if ready else "not ready", **results}
        else:
            status, body = 404, {"error": "not found"}
        return status, json.dumps(body).encode(), "application/json"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), timeout=5.0)
            parts = request_line.decode("latin-1").split()
            status, payload, content_type = await self._respond(parts[1] if len(parts) >= 2 else "")
            writer.write(
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
