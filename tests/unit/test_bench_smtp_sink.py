"""The benchmark's mail server: notify's own client delivers to it, every message counted once, whatever the
message holds and however the bytes are cut; commands out of order get SMTP's answers."""

from __future__ import annotations

import asyncio
import smtplib
from collections.abc import AsyncIterator

import pytest

from dealreg_devstack.sinks import CountingSmtpSink
from dealreg_notify.channels import SmtpConnections, build_email
from dealreg_notify.settings import NotifySettings


@pytest.fixture
async def sink() -> AsyncIterator[CountingSmtpSink]:
    sink = CountingSmtpSink()
    await sink.start()
    yield sink
    await sink.stop()


async def test_notifys_client_delivers_over_kept_sessions_and_each_message_is_counted_once(
    sink: CountingSmtpSink,
) -> None:
    settings = NotifySettings(smtp_port=sink.port, smtp_max_connections=2, smtp_timeout_s=3)
    smtp = SmtpConnections(settings)
    # a line of a single dot, and lines starting with one, inside the message: the client doubles them
    text = "first line\n.\n.leading dot\n\n.\n"
    rows = [
        {"id": i, "address": f"m{i % 3}@vendor.example", "subject": f"#{i}", "body_text": text, "body_html": None}
        for i in range(25)
    ]
    try:
        await asyncio.gather(*(smtp.send(build_email(r, settings)) for r in rows))
    finally:
        smtp.close()
    assert sink.messages == 25


async def test_a_conversation_cut_into_single_bytes_is_read_like_one_sent_whole(sink: CountingSmtpSink) -> None:
    conversation = (
        b"EHLO client\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n"
        b"Subject: x\r\n\r\n..stuffed\r\nbody\r\n.\r\n"
        b"MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nDATA\r\n.\r\n"  # an empty message
        b"QUIT\r\n"
    )
    for chunks in ([conversation], [conversation[i : i + 1] for i in range(len(conversation))]):
        before = sink.messages
        reader, writer = await asyncio.open_connection("127.0.0.1", sink.port)
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        replies = (await asyncio.wait_for(reader.read(), timeout=5)).decode().splitlines()  # until it closes
        writer.close()
        codes = [line[:3] for line in replies if line[3:4] == " "]  # last lines of replies
        assert codes == ["220", "250", "250", "250", "354", "250", "250", "250", "354", "250", "221"]
        assert sink.messages == before + 2


async def test_commands_out_of_order_or_unknown_are_refused(sink: CountingSmtpSink) -> None:
    def converse() -> None:  # the standard library's client, in a thread: the sink runs in this test's loop
        with smtplib.SMTP("127.0.0.1", sink.port, timeout=5) as client:
            client.ehlo()
            assert client.has_extn("8bitmime") and client.has_extn("smtputf8")
            assert client.docmd("DATA")[0] == 503  # no recipient yet
            assert client.docmd("VRFY", "someone")[0] == 500
            client.sendmail("a@b.example", ["c@d.example"], b"Subject: y\r\n\r\nbody\r\n")

    await asyncio.to_thread(converse)
    assert sink.messages == 1
