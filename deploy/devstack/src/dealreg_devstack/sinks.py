"""Real SMTP and HTTP endpoints on loopback that record what notify delivers (for the demo and the tests)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
from dataclasses import dataclass, field
from email.message import EmailMessage
from functools import cached_property
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes  # as received; parsed when first read (parsing every message cost the benchmark a core's sixth)

    @cached_property
    def message(self) -> EmailMessage:
        message = email.message_from_bytes(self.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        return part.get_content() if part is not None else ""


class _Gates:
    """Endpoints held on purpose: a request waits until released, and is dropped if its sender goes away."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}
        self.waiting: dict[str, int] = {}

    def hold(self, name: str) -> None:
        self.gates.setdefault(name, asyncio.Event())

    def release(self, name: str) -> None:
        gate = self.gates.pop(name, None)
        if gate is not None:
            gate.set()

    async def pass_(self, names: list[str]) -> None:
        for name in names:
            gate = self.gates.get(name)
            if gate is None:
                continue
            self.waiting[name] = self.waiting.get(name, 0) + 1
            try:
                await gate.wait()
            finally:
                self.waiting[name] -= 1


class SmtpSink:
    """An SMTP server (aiosmtpd) in this event loop; every accepted message is kept in `mails`.

    `fail_next[address] = n` refuses that recipient n times (451, try again); `hold(address)` keeps messages to
    it waiting in DATA until `release(address)`; `arrivals[address]` counts every message that reached DATA;
    `sessions` counts the connections clients opened, and `drop_sessions()` closes the open ones. It offers
    PIPELINING (RFC 2920), as mail relays do, unless made with `pipelining=False`.
    """

    def __init__(self, *, pipelining: bool = True) -> None:
        self.pipelining = pipelining
        self.mails: list[ReceivedMail] = []
        self.port = 0
        self._server: asyncio.Server | None = None
        self.fail_next: dict[str, int] = {}
        self.arrivals: dict[str, int] = {}
        self.sessions = 0
        self._open: list[SMTP] = []
        self._gates = _Gates()

    def hold(self, address: str) -> None:
        self._gates.hold(address)

    def release(self, address: str) -> None:
        self._gates.release(address)

    def waiting(self, address: str) -> int:
        return self._gates.waiting.get(address, 0)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        return [*responses[:-1], "250-PIPELINING", *responses[-1:]] if self.pipelining else responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.fail_next.get(address, 0) > 0:
            self.fail_next[address] -= 1
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        for address in envelope.rcpt_tos:
            self.arrivals[address] = self.arrivals.get(address, 0) + 1
        # a held message whose client disconnects is cancelled here by aiosmtpd: never accepted, never kept
        await self._gates.pass_(list(envelope.rcpt_tos))
        content = envelope.original_content or b""
        self.mails.append(ReceivedMail(str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 Message accepted for delivery"

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def _session(self) -> SMTP:
        self.sessions += 1
        protocol = SMTP(self, hostname="dealreg-sink")
        # a protocol without a transport yet is still connecting: it stays
        self._open = [p for p in self._open if p.transport is None or not p.transport.is_closing()]
        self._open.append(protocol)
        return protocol

    def drop_sessions(self) -> None:
        """As a server does to clients idle too long: close every open connection."""
        for protocol in self._open:
            if protocol.transport is not None:
                protocol.transport.close()
        self._open.clear()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def to(self, address: str) -> list[ReceivedMail]:
        return [m for m in self.mails if address in m.rcpt_tos]


@dataclass(frozen=True)
class ReceivedHook:
    name: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookSink:
    """An HTTP server; POST /hooks/<name> is recorded. `fail_next[name] = n` answers 503 n times first.

    `hold(name)` keeps requests to it waiting until `release(name)` (a request whose sender goes away meanwhile
    is dropped, unanswered and unrecorded); `arrivals[name]` counts every request, answered or not.
    """

    hooks: list[ReceivedHook] = field(default_factory=list)
    fail_next: dict[str, int] = field(default_factory=dict)
    arrivals: dict[str, int] = field(default_factory=dict)
    port: int = 0
    _runner: web.AppRunner | None = None
    _gates: _Gates = field(default_factory=_Gates)

    def hold(self, name: str) -> None:
        self._gates.hold(name)

    def release(self, name: str) -> None:
        self._gates.release(name)

    def waiting(self, name: str) -> int:
        return self._gates.waiting.get(name, 0)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/{name}"

    async def _receive(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self.arrivals[name] = self.arrivals.get(name, 0) + 1
        if self.fail_next.get(name, 0) > 0:
            self.fail_next[name] -= 1
            return web.Response(status=503, text="try later")
        await self._gates.pass_([name])
        self.hooks.append(ReceivedHook(name, dict(request.headers), await request.read()))
        return web.Response(status=204)

    async def start(self) -> int:
        app = web.Application()
        app.router.add_post("/hooks/{name}", self._receive)
        # a request whose sender has gone is cancelled, as a real receiver would never have answered it
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def to(self, name: str) -> list[ReceivedHook]:
        return [h for h in self.hooks if h.name == name]


class CountingSmtpSink:
    """The benchmark's mail server: a minimal SMTP server (RFC 5321's commands; no extension but 8BITMIME,
    SMTPUTF8 and PIPELINING) that accepts every message and counts it, keeping nothing.

    It stands where a vendor's mail relay would be, on another machine. `SmtpSink` (aiosmtpd) parses every address
    with the email package: it cost the benchmark's machine more CPU than notify spent sending the mail.
    """

    def __init__(self) -> None:
        self.messages = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _CountingSmtpSession(self), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()


class _CountingSmtpSession(asyncio.Protocol):
    MAX_LINE = 4096  # a longer command line is refused, and the connection closed

    def __init__(self, sink: CountingSmtpSink) -> None:
        self.sink = sink
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._in_data = False
        self._recipients = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        transport.write(b"220 dealreg-bench-sink ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        """Answers every command the bytes complete, in one write: a pipelining client's batch, one reply batch."""
        self._buffer += data
        replies = bytearray()
        quit_ = self._read(replies)
        if self._transport is not None and not self._transport.is_closing():
            if replies:
                self._transport.write(replies)
            if quit_:
                self._transport.close()

    def _read(self, replies: bytearray) -> bool:
        """Appends the replies to what the buffer holds; True once the client said QUIT."""
        while self._transport is not None and not self._transport.is_closing():
            if self._in_data:
                # the message ends at a line holding a single dot (a dot starting a line of the message is doubled
                # by the client); at the very start, the message is empty
                if self._buffer.startswith(b".\r\n"):
                    end = 3
                elif (found := self._buffer.find(b"\r\n.\r\n")) >= 0:
                    end = found + 5
                else:
                    return False
                del self._buffer[:end]
                self._in_data = False
                self._recipients = 0
                self.sink.messages += 1
                replies += b"250 2.0.0 accepted\r\n"
                continue
            eol = self._buffer.find(b"\r\n")
            if eol < 0:
                if len(self._buffer) > self.MAX_LINE:
                    self._transport.write(replies + b"500 5.5.2 line too long\r\n")
                    replies.clear()
                    self._transport.close()
                return False
            line = bytes(self._buffer[:eol])
            del self._buffer[: eol + 2]
            verb = line[:4].upper()
            replies += self._answer(verb)
            if verb == b"QUIT":
                return True
        return False

    def _answer(self, verb: bytes) -> bytes:
        if verb == b"EHLO":
            return b"250-dealreg-bench-sink\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n"
        if verb == b"HELO":
            return b"250 dealreg-bench-sink\r\n"
        if verb in (b"MAIL", b"RSET"):
            self._recipients = 0
            return b"250 2.0.0 OK\r\n"
        if verb == b"RCPT":
            self._recipients += 1
            return b"250 2.1.5 OK\r\n"
        if verb == b"DATA" and self._recipients:
            self._in_data = True
            return b"354 end with <CR><LF>.<CR><LF>\r\n"
        if verb == b"DATA":
            return b"503 5.5.1 RCPT first\r\n"
        if verb == b"NOOP":
            return b"250 2.0.0 OK\r\n"
        if verb == b"QUIT":
            return b"221 2.0.0 bye\r\n"
        return b"500 5.5.2 command not recognized\r\n"
