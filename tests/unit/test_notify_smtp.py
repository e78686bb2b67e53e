"""Notify's SMTP client on real sockets: a message in two round trips where the server offers PIPELINING, one
command at a time where it does not, the same bytes delivered either way, and refusals still refusals."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiosmtplib
import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from hypothesis import given, settings
from hypothesis import strategies as st

from dealreg_devstack.sinks import SmtpSink
from dealreg_notify.channels import Email, SmtpConnections, build_email, data_section
from dealreg_notify.settings import NotifySettings

# dots starting lines, a lone dot, bare LF and CR line ends, no line end at the very end
TRICKY = "first line\n.\n.leading dot\r\n..two dots\rlone CR\n\nlast"


def _row(i: int, address: str = "buyer@vendor.example") -> dict[str, object]:
    return {"id": i, "address": address, "subject": f"Ärger #{i}", "body_text": TRICKY, "body_html": None}


class _ScriptedServer(asyncio.Protocol):
    """Offers PIPELINING and answers MAIL, RCPT and DATA only once all three have arrived: a client that waits for
    each reply before its next command never hears back. Keeps each message as it came (DATA's encoding)."""

    def __init__(self, received: list[bytes]) -> None:
        self.received = received
        self.buffer = b""
        self.in_data = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 scripted ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.in_data:
            if self.buffer.endswith(b"\r\n.\r\n"):
                self.received.append(self.buffer)
                self.buffer, self.in_data = b"", False
                self.transport.write(b"250 2.0.0 accepted\r\n")
        elif self.buffer.startswith(b"EHLO ") and self.buffer.endswith(b"\r\n"):
            self.buffer = b""
            self.transport.write(b"250-scripted\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
        elif self.buffer.startswith(b"MAIL FROM:<") and self.buffer.endswith(b"\r\nDATA\r\n"):
            assert b"\r\nRCPT TO:<" in self.buffer
            self.buffer, self.in_data = b"", True
            self.transport.write(b"250 2.1.0 sender ok\r\n250 2.1.5 recipient ok\r\n354 go ahead\r\n")
        elif self.buffer == b"QUIT\r\n":
            self.transport.write(b"221 bye\r\n")
            self.transport.close()


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[int, list[bytes]]]:
    received: list[bytes] = []
    server = await asyncio.get_running_loop().create_server(lambda: _ScriptedServer(received), "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], received
    server.close()
    await server.wait_closed()


@asynccontextmanager
async def _client(port: int, sessions: int = 1) -> AsyncIterator[tuple[NotifySettings, SmtpConnections]]:
    settings = NotifySettings(smtp_port=port, smtp_max_connections=sessions, smtp_timeout_s=3)
    smtp = SmtpConnections(settings)
    try:
        yield settings, smtp
    finally:
        smtp.close()


async def _sink(pipelining: bool) -> SmtpSink:
    sink = SmtpSink(pipelining=pipelining)
    await sink.start()
    return sink


async def test_a_server_offering_pipelining_gets_the_envelope_in_one_go_and_every_message(
    scripted: tuple[int, list[bytes]],
) -> None:
    port, received = scripted
    async with _client(port, sessions=2) as (settings, smtp):
        emails = [build_email(_row(i), settings) for i in range(6)]
        await asyncio.gather(*(smtp.send(e) for e in emails))  # two sessions, each kept for the next message
    assert sorted(received) == sorted(data_section(e.data) for e in emails)


async def test_the_same_bytes_arrive_whether_the_server_pipelines_or_not() -> None:
    emails = [build_email(_row(i), NotifySettings()) for i in range(3)]
    received = []
    for pipelining in (True, False):
        sink = await _sink(pipelining)
        try:
            async with _client(sink.port) as (_, smtp):
                for email in emails:
                    await smtp.send(email)
        finally:
            await sink.stop()
        assert sink.sessions == 1
        assert [m.subject for m in sink.mails] == ["Ärger #0", "Ärger #1", "Ärger #2"]
        assert sink.mails[0].text.splitlines()[:4] == ["first line", ".", ".leading dot", "..two dots"]
        received.append([m.content for m in sink.mails])
    assert received[0] == received[1]


@pytest.mark.parametrize("pipelining", [True, False])
async def test_a_refused_recipient_is_an_error_and_the_next_message_goes_through(pipelining: bool) -> None:
    sink = await _sink(pipelining)
    sink.fail_next["refused@vendor.example"] = 1
    try:
        async with _client(sink.port) as (settings, smtp):
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused) as refused:
                await smtp.send(build_email(_row(1, "refused@vendor.example"), settings))
            assert [(r.code, r.recipient) for r in refused.value.recipients] == [(451, "refused@vendor.example")]
            await smtp.send(build_email(_row(2, "refused@vendor.example"), settings))
            await smtp.send(build_email(_row(3), settings))
    finally:
        await sink.stop()
    assert [m.rcpt_tos for m in sink.mails] == [["refused@vendor.example"], ["buyer@vendor.example"]]
    assert sink.sessions == 2  # the session that saw the refusal was closed, its successor kept


async def test_a_session_the_server_dropped_is_replaced_without_losing_the_message() -> None:
    sink = await _sink(True)
    try:
        async with _client(sink.port) as (settings, smtp):
            await smtp.send(build_email(_row(1), settings))
            sink.drop_sessions()
            await smtp.send(build_email(_row(2), settings))
    finally:
        await sink.stop()
    assert [m.message["Message-ID"] for m in sink.mails] == ["<ntf-1@dealreg>", "<ntf-2@dealreg>"]
    assert sink.sessions == 2


def test_data_section_uses_crlf_doubles_leading_dots_and_ends_with_a_dot() -> None:
    assert data_section(b"a\n.b\r\n.\rc") == b"a\r\n..b\r\n..\r\nc\r\n.\r\n"
    assert data_section(b"") == b"\r\n.\r\n"


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n", b"\n."]), max_size=30).map(b"".join))
def test_data_section_makes_the_bytes_aiosmtplib_makes(message: bytes) -> None:
    assert data_section(message) == PERIOD_REGEX.sub(b"..", normalize_message_line_endings(message)) + b".\r\n"


def test_a_message_built_from_texts_without_a_carriage_return_has_no_lone_one() -> None:
    text = "Grüße,\n\n.a line that starts with a dot\n" + "long " * 100
    data = build_email({**_row(1), "body_text": text, "body_html": "<p>" + text + "</p>"}, NotifySettings()).data
    assert data.count(b"\r") == data.count(b"\r\n")  # no lone CR: `data_section` replaces, it does not rewrite


async def test_an_address_that_would_add_a_command_is_refused_before_anything_is_sent(
    scripted: tuple[int, list[bytes]],
) -> None:
    port, received = scripted
    async with _client(port) as (settings, smtp):
        good = build_email(_row(1), settings)
        with pytest.raises(aiosmtplib.SMTPException, match="not an address"):
            await smtp.send(Email(good.sender, "x@vendor.example>\r\nRCPT TO:<evil@else.example", good.data, False))
        with pytest.raises(aiosmtplib.SMTPException, match="not an address"):
            await smtp.send(Email(good.sender, "x@vendor.example\x00", good.data, False))
        await smtp.send(good)
    assert received == [data_section(good.data)]


class _EndlessReply(asyncio.Protocol):
    """Offers PIPELINING, then answers the envelope with continuation lines that never end the reply."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"220 endless ESMTP\r\n")

    def data_received(self, data: bytes) -> None:
        if data.startswith(b"EHLO "):
            self.transport.write(b"250-endless\r\n250 PIPELINING\r\n")
        elif data.startswith(b"MAIL FROM:"):
            self.transport.write((b"250-" + b"x" * 1000 + b"\r\n") * 64)  # 64 KB, twice the bound


async def test_a_reply_that_never_ends_is_refused_once_past_aiosmtplibs_bound_not_held_in_memory() -> None:
    server = await asyncio.get_running_loop().create_server(_EndlessReply, "127.0.0.1", 0)
    try:
        async with _client(server.sockets[0].getsockname()[1]) as (settings, smtp):
            with pytest.raises(aiosmtplib.SMTPResponseException, match="too long"):
                await smtp.send(build_email(_row(1), settings))
    finally:
        server.close()
        await server.wait_closed()
