"""The two ways out: email over SMTP and signed webhooks (Standard Webhooks headers, no redirects followed)."""

from __future__ import annotations

import asyncio
import json
import quopri
import secrets
import socket
import time
from dataclasses import dataclass
from email.header import Header
from email.utils import formataddr, formatdate, parseaddr
from functools import lru_cache
from html import escape
from typing import Any, cast

import aiohttp
import aiosmtplib
from aiosmtplib.protocol import (
    COMMAND_INJECTION_REGEX,
    MAX_RESPONSE_LENGTH,
    normalize_message_line_endings,
)

from dealreg_notify.directory import Directory
from dealreg_notify.settings import NotifySettings
from dealreg_shared import webhooks


class DeliveryError(Exception):
    pass


def _one_line(value: object) -> str:
    """A header value on one line: a name a partner typed cannot add headers."""
    return " ".join(str(value).split())


def _header(value: str) -> str:
    """On one line, RFC 2047-encoded when not ASCII."""
    value = _one_line(value)
    return value if value.isascii() else Header(value, "utf-8").encode()


def _part(content_type: str, text: str) -> bytes:
    body = quopri.encodestring(text.encode("utf-8"))
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
    ).encode() + body


@lru_cache(maxsize=8)
def _envelope_sender(mail_from: str) -> str:
    return parseaddr(mail_from)[1]


@lru_cache(maxsize=8)
def _from_header(mail_from: str) -> str:
    """`Name <address>` with only the name encoded when it is not ASCII (an encoded address is no address)."""
    name, address = parseaddr(_one_line(mail_from))
    return formataddr((name, address), charset="utf-8")


@dataclass(frozen=True)
class Email:
    sender: str  # the envelope's
    recipient: str
    data: bytes  # the whole message, as sent
    utf8: bool  # an address is not ASCII: the server must take SMTPUTF8


def build_email(row: Any, settings: NotifySettings) -> Email:
    """A multipart/alternative message (text and HTML), written directly: the stdlib's EmailMessage took a
    millisecond and more per message, most of the notify service's time under load."""
    html = row["body_html"] or (
        '<html><body><pre style="font-family: sans-serif">' + escape(row["body_text"]) + "</pre></body></html>"
    )
    boundary = f"=_dealreg_{row['id']}_{secrets.token_hex(8)}"
    headers = [
        ("From", _from_header(settings.mail_from)),
        # an address stays as it is (SMTPUTF8 carries one that is not ASCII), on one line
        ("To", _one_line(row["address"])),
        ("Subject", _header(row["subject"])),
        ("Date", formatdate(usegmt=True)),
        # the same notification keeps its Message-ID on every attempt: mail systems can drop a duplicate
        ("Message-ID", f"<ntf-{row['id']}@dealreg>"),
        ("X-Dealreg-Notification-Id", f"ntf_{row['id']}"),
        ("Auto-Submitted", "auto-generated"),  # RFC 3834: no auto-replies, no vacation loops
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    head = "".join(f"{name}: {value}\r\n" for name, value in headers).encode()
    sep = f"\r\n--{boundary}\r\n".encode()
    data = (
        head
        + sep
        + _part("text/plain", row["body_text"])
        + sep
        + _part("text/html", html)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    sender = _envelope_sender(settings.mail_from)
    return Email(sender, row["address"], data, utf8=not (sender.isascii() and str(row["address"]).isascii()))


class SmtpConnections:
    """A few SMTP sessions kept open and reused: a message costs its own commands, not a connection, a greeting
    and EHLO each. A session that fails is closed; one idle too long is replaced before use."""

    def __init__(self, settings: NotifySettings) -> None:
        self.settings = settings
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []
        self._slots = asyncio.Semaphore(settings.smtp_max_connections)
        self._hostname: str | None = None

    async def send(self, email: Email) -> None:
        async with self._slots:
            session = self._take()
            if session is not None:
                try:
                    await self._send_on(session, email)
                    return
                except (aiosmtplib.SMTPServerDisconnected, ConnectionError):
                    pass  # the server closed a kept session (its idle timeout, say): once more, on a new one
            await self._send_on(await self._connect(), email)

    async def _send_on(self, session: aiosmtplib.SMTP, email: Email) -> None:
        try:
            if session.supports_extension("pipelining") and (not email.utf8 or session.supports_extension("smtputf8")):
                await _send_pipelined(session, email, reply_timeout_s=self.settings.smtp_timeout_s)
            else:
                await session.sendmail(
                    email.sender, [email.recipient], email.data, mail_options=["SMTPUTF8"] if email.utf8 else []
                )
        except BaseException:
            session.close()
            raise
        self._idle.append((session, time.monotonic()))

    def close(self) -> None:
        for session, _ in self._idle:
            session.close()
        self._idle.clear()

    def _take(self) -> aiosmtplib.SMTP | None:
        while self._idle:
            session, since = self._idle.pop()
            if session.is_connected and time.monotonic() - since < self.settings.smtp_idle_s:
                return session
            session.close()
        return None

    async def _connect(self) -> aiosmtplib.SMTP:
        s = self.settings
        if self._hostname is None:
            self._hostname = await asyncio.to_thread(socket.getfqdn)  # once, not a lookup per session
        session = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            start_tls=s.smtp_starttls,
            use_tls=s.smtp_tls,
            username=s.smtp_username or None,
            password=s.smtp_password or None,
            timeout=s.smtp_timeout_s,
            local_hostname=self._hostname,
        )
        await session.connect()
        if session.is_ehlo_or_helo_needed:  # now, not lazily in sendmail: the extensions decide how to send
            try:
                await session.ehlo()
            except aiosmtplib.SMTPHeloError:
                await session.helo()
        return session


def data_section(message: bytes) -> bytes:
    """The message as DATA carries it (RFC 5321 4.1.1.4): CRLF line ends, a leading dot doubled, a dot to end.
    The bytes of aiosmtplib's unpipelined exchange (its line-end rewrite, then a dot that starts a line doubled),
    made without its regular expressions where no line ends in a lone CR (`build_email`'s messages, unless a text
    holds one): together they took 55-80 µs a message of 4.4 KB, the replacements below 14-24."""
    if message.count(b"\r") == message.count(b"\r\n"):  # every line ends in LF or CRLF: each becomes CRLF
        lines = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        if not lines.endswith(b"\r\n"):
            lines += b"\r\n"
    else:
        lines = normalize_message_line_endings(message)
    # a line starts at the start and after each LF; "\n." pairs cannot overlap
    return (b"." if lines.startswith(b".") else b"") + lines.replace(b"\n.", b"\n..") + b".\r\n"


async def _send_pipelined(session: aiosmtplib.SMTP, email: Email, *, reply_timeout_s: float) -> None:
    """One message in two round trips where the server offers PIPELINING (RFC 2920): MAIL, RCPT and DATA go in
    one write, the message in a second, instead of four exchanges one after the other."""
    for address in (email.sender, email.recipient):  # an empty sender is SMTP's null reverse-path, `<>`
        # control characters refused as aiosmtplib refuses them in a command; angle brackets would end the path
        if COMMAND_INJECTION_REGEX.search(address.encode("utf-8")) or "<" in address or ">" in address:
            raise aiosmtplib.SMTPException(f"not an address for an SMTP envelope: {address!r}")
    charset = "utf-8" if email.utf8 else "ascii"
    envelope = (
        f"MAIL FROM:<{email.sender}>{' SMTPUTF8' if email.utf8 else ''}\r\nRCPT TO:<{email.recipient}>\r\nDATA\r\n"
    ).encode(charset)
    mail, rcpt, data = await _exchange(session, envelope, replies=3, reply_timeout_s=reply_timeout_s)
    if mail.code != 250:
        raise aiosmtplib.SMTPSenderRefused(mail.code, mail.message, email.sender)
    if rcpt.code not in (250, 251):
        # as aiosmtplib's sendmail says it when every recipient is refused
        raise aiosmtplib.SMTPRecipientsRefused(
            [aiosmtplib.SMTPRecipientRefused(rcpt.code, rcpt.message, email.recipient)]
        )
    if data.code != 354:
        raise aiosmtplib.SMTPDataError(data.code, data.message)
    (done,) = await _exchange(session, data_section(email.data), replies=1, reply_timeout_s=reply_timeout_s)
    if done.code != 250:
        raise aiosmtplib.SMTPDataError(done.code, done.message)


async def _exchange(
    session: aiosmtplib.SMTP, payload: bytes, *, replies: int, reply_timeout_s: float
) -> list[aiosmtplib.SMTPResponse]:
    """Write `payload` and read `replies` replies. aiosmtplib's protocol reads one reply per command it wrote and
    drops what arrives with it, so for the exchange the session's transport delivers to a reader of our own."""
    protocol = session.protocol
    transport = protocol.transport if protocol is not None else None
    if protocol is None or transport is None or transport.is_closing():
        raise aiosmtplib.SMTPServerDisconnected("the session is not connected")
    reader = _Replies(protocol, replies)
    transport.set_protocol(reader)
    try:
        cast(asyncio.WriteTransport, transport).write(payload)
        try:
            return await asyncio.wait_for(reader.done, reply_timeout_s)
        except TimeoutError:
            raise aiosmtplib.SMTPReadTimeoutError("timed out waiting for the server's replies") from None
    finally:
        if not transport.is_closing():
            transport.set_protocol(protocol)


class _Replies(asyncio.Protocol):
    """Reads a number of SMTP replies (`250-...` lines continue one, `250 ...` ends it); on a lost connection it
    fails, and tells the session's own protocol as the transport would have."""

    def __init__(self, owner: asyncio.BaseProtocol, count: int) -> None:
        self.owner = owner
        self.count = count
        self.done: asyncio.Future[list[aiosmtplib.SMTPResponse]] = asyncio.get_running_loop().create_future()
        self._replies: list[aiosmtplib.SMTPResponse] = []
        self._lines: list[str] = []
        self._reply_bytes = 0  # of the reply being read: bounded as aiosmtplib bounds one
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while not self.done.done() and (end := self._buffer.find(b"\n")) >= 0:
            line = bytes(self._buffer[: end + 1]).rstrip(b"\r\n")
            del self._buffer[: end + 1]
            self._reply_bytes += end + 1
            if len(line) < 3 or not line[:3].isdigit() or line[3:4] not in (b"", b" ", b"-"):
                self._fail(aiosmtplib.SMTPResponseException(-1, f"malformed SMTP reply: {line[:80]!r}"))
                return
            self._lines.append(line[4:].decode("utf-8", "surrogateescape"))
            if line[3:4] != b"-":
                self._replies.append(aiosmtplib.SMTPResponse(int(line[:3]), "\n".join(self._lines)))
                self._lines, self._reply_bytes = [], 0
                if len(self._replies) == self.count:
                    self.done.set_result(self._replies)
        if not self.done.done() and self._reply_bytes + len(self._buffer) > MAX_RESPONSE_LENGTH:
            self._fail(aiosmtplib.SMTPResponseException(-1, "SMTP reply too long"))

    def eof_received(self) -> bool:
        self._fail(aiosmtplib.SMTPServerDisconnected("the server closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(aiosmtplib.SMTPServerDisconnected("the connection was lost"))
        self.owner.connection_lost(exc)

    def _fail(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


def signing_secrets(recipient: str, settings: NotifySettings, directory: Directory) -> list[str]:
    """A partner's own secret (derived from the master); a manager's configured one; else the master itself.

    While the master is rotated, a second signature under the previous one lets receivers switch at leisure.
    """
    masters = [settings.webhook_secret] + (
        [settings.webhook_previous_secret] if settings.webhook_previous_secret else []
    )
    kind, _, who = recipient.partition(":")
    if kind == "partner":
        return [webhooks.derive_secret(m, who) for m in masters]
    configured = directory.recipients.get(who) if kind == "manager" else None
    if configured is not None and configured.webhook_secret:
        return [configured.webhook_secret]
    return masters


def webhook_body(row: Any) -> bytes:
    return json.dumps(
        {"notification_id": f"ntf_{row['id']}", "subject": row["subject"], "data": json.loads(row["payload"])},
        separators=(",", ":"),
    ).encode()


def webhook_client(settings: NotifySettings) -> aiohttp.ClientSession:
    """The webhooks' HTTP client: connections kept, up to the delivery concurrency; each request bounded by the
    webhook timeout; proxies as the environment says. aiohttp: httpx took eight times the CPU for a request."""
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=settings.webhook_timeout_s),
        connector=aiohttp.TCPConnector(limit=settings.delivery_concurrency),
        trust_env=True,
    )


async def post_webhook(http: aiohttp.ClientSession, row: Any, secrets: list[str]) -> None:
    body = webhook_body(row)
    msg_id, timestamp = f"ntf_{row['id']}", int(time.time())
    headers = webhooks.headers(secrets[0], msg_id=msg_id, timestamp=timestamp, body=body)
    headers["webhook-signature"] = " ".join(
        webhooks.sign(s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets
    )
    # the answer's body is not read: a connection whose answer has fully arrived is kept, another one closed
    async with http.post(row["address"], data=body, headers=headers, allow_redirects=False) as response:
        status = response.status
    if not 200 <= status < 300:
        # a redirect is not followed: the receiver must give its final address
        raise DeliveryError(f"webhook answered HTTP {status}")
