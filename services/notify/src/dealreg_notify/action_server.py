"""The one-click endpoint: GET /actions/<token> asks to confirm, POST publishes the decision exactly once."""

from __future__ import annotations

import asyncio
import html
import time
import uuid
from urllib.parse import unquote

import structlog
from pydantic import BaseModel

from dealreg_notify.actions import ActionToken, TokenError, still_open, verify
from dealreg_notify.store_actions import consume_token, get_state, token_used
from dealreg_shared.contracts import EventType, PartnerApplicationDecided, RegistrationDecided
from dealreg_shared.db import Pool
from dealreg_shared.outbox import Outbox, insert_outbox
from dealreg_shared.topics import PARTNER_DECISIONS, REGISTRATION_DECISIONS

log = structlog.get_logger(__name__)
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 410: "Gone"}
_MOVED_ON = "This record has moved on"
_REFUSED = {
    "malformed": (400, "This link is not valid", "The link is incomplete or was changed. Nothing was decided."),
    "bad_signature": (400, "This link is not valid", "The link was changed or was not issued by dealreg."),
    "expired": (410, "This link has expired", "Nothing was decided. Use the dealreg CLI, or ask for a new link."),
}
MAX_REQUEST_BYTES = 16_384


def _page(title: str, body: str) -> bytes:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body style='font-family: sans-serif'><h2>{html.escape(title)}</h2>{body}</body></html>"
    ).encode()


_USED = _page("This link was already used", "<p>The decision was taken once; nothing more was done.</p>")


def _describe(token: ActionToken) -> str:
    what = "partner application" if token.k == "application" else "registration"
    return f"{token.a} {what} <code>{html.escape(token.r)}</code> as {html.escape(token.manager_id)}"


def decision_of(token: ActionToken, decision_id: uuid.UUID) -> BaseModel:
    """The same event a manager publishes with the CLI, validated by the same contract."""
    reason = "decided from a one-click link"
    if token.k == "application":
        if token.a == "extend":
            raise ValueError("an application cannot be extended")
        return PartnerApplicationDecided(
            decision_id=decision_id,
            application_id=uuid.UUID(token.r),
            decision="approve" if token.a == "approve" else "reject",
            manager_id=token.manager_id,
            reason=reason,
        )
    return RegistrationDecided(
        decision_id=decision_id,
        registration_id=uuid.UUID(token.r),
        decision=token.a,
        manager_id=token.manager_id,
        reason=reason,
        extend_days=30 if token.a == "extend" else None,
    )


class ActionServer:
    def __init__(self, *, pool: Pool, secret: str, port: int, service: str, host: str = "0.0.0.0") -> None:
        self.pool = pool
        self.secret = secret
        self.port = port
        self.host = host
        self.service = service

    async def run(self) -> None:
        """Serve until cancelled (the runtime cancels its background work on shutdown)."""
        server = await asyncio.start_server(self._handle, self.host, self.port)
        log.info("actions_listening", port=server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    async def respond(self, method: str, path: str) -> tuple[int, bytes]:
        if not path.startswith("/actions/"):
            return 404, _page("Not found", "")
        raw = unquote(path.removeprefix("/actions/").split("?", 1)[0])
        try:
            token = verify(raw, self.secret, now=time.time())
        except TokenError as refused:
            log.info("action_refused", reason=refused.code)
            status, title, text = _REFUSED[refused.code]
            return status, _page(title, f"<p>{text}</p>")
        if method == "GET":
            async with self.pool.acquire() as conn:
                used, state = await token_used(conn, token.j), await get_state(conn, token.r)
            if used:
                return 409, _USED
            if not still_open(token, state):
                return 409, self._moved_on(token, state)
            action = f"/actions/{html.escape(raw)}"
            form = f"<form method='post' action='{action}'><button type='submit'>Confirm</button></form>"
            return 200, _page("Confirm your decision", f"<p>You are about to {_describe(token)}.</p>{form}")
        if method != "POST":
            return 405, _page("Method not allowed", "")
        return await self._decide(token)

    async def _decide(self, token: ActionToken) -> tuple[int, bytes]:
        decision_id = uuid.uuid4()
        try:
            data = decision_of(token, decision_id)
        except ValueError:
            return 400, _page("This link is not valid", "<p>The decision it names is not one dealreg accepts.</p>")
        outbox = Outbox(service=self.service)
        if token.k == "application":
            outbox.emit(PARTNER_DECISIONS, key=token.r, type=EventType.PARTNER_APPLICATION_DECIDED, data=data)
        else:
            outbox.emit(REGISTRATION_DECISIONS, key=token.r, type=EventType.REGISTRATION_DECIDED, data=data)
        async with self.pool.acquire() as conn, conn.transaction():
            # the token and the event commit together: a second click finds the token used and publishes nothing
            # a second click hears that it was used before it hears what became of the record
            if await token_used(conn, token.j):
                return 409, _USED
            state = await get_state(conn, token.r)
            if not still_open(token, state):
                log.info("action_out_of_date", token_id=token.j, state=state)
                return 409, self._moved_on(token, state)
            if not await consume_token(conn, token, decision_id):  # a concurrent click won the race
                log.info("action_replayed", token_id=token.j)
                return 409, _USED
            await insert_outbox(conn, outbox.records)
        log.info("action_decided", token_id=token.j, kind=token.k, record_id=token.r, action=token.a)
        body = f"<p>Done: {_describe(token)}. Decision <code>{decision_id}</code> is on its way; "
        body += "if the record has moved on meanwhile, you will get a 'Decision not applied' notification.</p>"
        return 200, _page("Decision recorded", body)

    @staticmethod
    def _moved_on(token: ActionToken, state: str | None) -> bytes:
        body = (
            f"<p>You cannot {_describe(token)} any more: it is now {html.escape(state or '')}. Nothing was decided.</p>"
        )
        return _page(_MOVED_ON, body)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10.0)
            lines = head.decode("latin-1").split("\r\n")
            parts = lines[0].split()
            length = next(
                (int(v) for k, _, v in (h.partition(":") for h in lines[1:]) if k.lower() == "content-length"), 0
            )
            if 0 < length <= MAX_REQUEST_BYTES:
                await asyncio.wait_for(reader.readexactly(length), timeout=10.0)  # the form's body says nothing
            status, payload = (
                await self.respond(parts[0], parts[1]) if len(parts) >= 2 else (400, _page("Bad request", ""))
            )
            writer.write(
                f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: text/html; charset=utf-8\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
                + payload
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()
