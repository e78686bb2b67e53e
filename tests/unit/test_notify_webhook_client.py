"""Notify's webhook client against a real HTTP server on loopback: signed bodies, kept connections, no redirect
followed, every request bounded by the webhook timeout."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from dealreg_notify.channels import DeliveryError, post_webhook, webhook_client
from dealreg_notify.settings import NotifySettings
from dealreg_shared import webhooks

SECRET = "whsec_" + base64.b64encode(b"unit-test-webhook-secret-0123456789").decode()


@dataclass
class Receiver:
    """Answers POST /<status> with that status (a 3xx with a Location to /moved); /slow answers after `released`."""

    port: int = 0
    bodies: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    peers: set[tuple[str, int]] = field(default_factory=set)
    released: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.peers.add(request.transport.get_extra_info("peername") if request.transport else ("?", 0))
        self.bodies.append((request.path, dict(request.headers), await request.read()))
        what = request.match_info["what"]
        if what == "slow":
            await self.released.wait()
            return web.Response(status=204)
        status = int(what)
        headers = {"Location": f"http://127.0.0.1:{self.port}/200"} if 300 <= status < 400 else {}
        return web.Response(status=status, text="answer", headers=headers)

    def url(self, what: object) -> str:
        return f"http://127.0.0.1:{self.port}/{what}"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    app = web.Application()
    app.router.add_post("/{what}", r.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    r.port = sock.getsockname()[1]
    await web.SockSite(runner, sock).start()
    yield r
    r.released.set()
    await runner.cleanup()


def _row(i: int, address: str) -> dict[str, object]:
    return {"id": i, "address": address, "subject": f"#{i}", "payload": json.dumps({"seq": i})}


async def test_a_webhook_arrives_signed_and_a_2xx_is_delivered(receiver: Receiver) -> None:
    async with webhook_client(NotifySettings()) as http:
        await post_webhook(http, _row(1, receiver.url(200)), [SECRET])
    [(_, headers, body)] = receiver.bodies
    assert json.loads(body) == {"notification_id": "ntf_1", "subject": "#1", "data": {"seq": 1}}
    assert headers["webhook-id"] == "ntf_1" and headers["Content-Type"] == "application/json"
    assert webhooks.verify(
        SECRET,
        msg_id="ntf_1",
        timestamp=headers["webhook-timestamp"],
        signature_header=headers["webhook-signature"],
        body=body,
    )


@pytest.mark.parametrize("status", [307, 404, 503])
async def test_any_other_answer_is_an_error_and_a_redirect_is_not_followed(receiver: Receiver, status: int) -> None:
    async with webhook_client(NotifySettings()) as http:
        with pytest.raises(DeliveryError, match=f"HTTP {status}"):
            await post_webhook(http, _row(1, receiver.url(status)), [SECRET])
    assert [path for path, _, _ in receiver.bodies] == [f"/{status}"]  # nothing went to /200


async def test_webhooks_to_one_receiver_go_over_kept_connections(receiver: Receiver) -> None:
    async with webhook_client(NotifySettings(delivery_concurrency=4)) as http:
        for i in range(20):
            await post_webhook(http, _row(i, receiver.url(200)), [SECRET])
        await asyncio.gather(*(post_webhook(http, _row(i, receiver.url(204)), [SECRET]) for i in range(40)))
    assert len(receiver.bodies) == 60
    assert len(receiver.peers) <= 4, "one connection for the sequential ones; the concurrency bounds the rest"


async def test_a_receiver_that_does_not_answer_is_given_up_on_at_the_timeout(receiver: Receiver) -> None:
    async with webhook_client(NotifySettings(webhook_timeout_s=0.3)) as http:
        with pytest.raises(asyncio.TimeoutError):
            await post_webhook(http, _row(1, receiver.url("slow")), [SECRET])
        receiver.released.set()
        await post_webhook(http, _row(2, receiver.url(200)), [SECRET])  # the client still works
    assert [path for path, _, _ in receiver.bodies] == ["/slow", "/200"]
