"""The whole pipeline as processes: four services on the real stack, with a real SMTP and HTTP sink."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from dealreg_devstack.launcher import ServiceProcess, start_all, start_service, stop_all_while_serving, wait_ready
from dealreg_devstack.procs import free_port, wait_until
from dealreg_devstack.provision import SERVICES, Stack
from dealreg_devstack.scenario import ScenarioPartner, new_partner, onboard
from dealreg_devstack.sinks import ReceivedHook, SmtpSink, WebhookSink
from dealreg_shared.kafka import make_producer
from dealreg_shared.topics import OPPORTUNITIES, REGISTRATION_STATUS
from tests.conftest import unique
from tests.e2e.conflict_support import Tail, conflict_env, set_clock_offset

_replicas = itertools.count(1)
MANAGER = "channel-managers@vendor.example"
# the configuration file every service the tests start reads: intake's tiers, the vetting program, conflict's
# regions
CONFIG_FILE = Path(__file__).with_name("config.toml")
WEBHOOK_SECRET = "whsec_" + "dGVzdC1zZWNyZXQtZm9yLXdlYmhvb2tzLW9ubHk="
ACTIONS_SECRET = "act_" + "dGVzdC1zZWNyZXQtZm9yLWFjdGlvbnMtb25seQ"  # signs the pipeline's one-click links


@dataclass
class Pipeline:
    stack: Stack
    smtp: SmtpSink
    hooks: WebhookSink
    producer: AIOKafkaProducer
    services: dict[str, ServiceProcess]
    log_dir: Path
    service_env: dict[str, dict[str, str]]

    async def restart(self, service: str, *, kill: bool, extra_env: dict[str, str] | None = None) -> ServiceProcess:
        """Stop a service (SIGKILL: mid-work, no draining) and start a fresh process of it."""
        self.services[service].stop(kill=kill)
        env = {**self.service_env.get(service, {}), **(extra_env or {})}
        fresh = start_service(self.stack, service, log_dir=self.log_dir, extra_env=env, replica=next(_replicas))
        await wait_ready([fresh])
        self.services[service] = fresh
        return fresh

    async def eventually(self, condition: Callable[[], object], what: str, timeout_s: float = 45) -> None:
        """Poll with a deadline until `condition()` is truthy."""

        async def probe() -> bool:
            return bool(condition())

        await wait_until(probe, timeout_s=timeout_s, what=what)

    async def onboard(self, label: str, *, tier: str = "gold") -> ScenarioPartner:
        """A newly approved partner of `tier` with its own domain, webhook and key."""
        name = unique(label)
        partner = new_partner(
            company=f"{label.title()} {name[-8:]} Ltd",
            website=f"https://www.{name}.co.uk",
            contact_name="Sam Patel",
            email=f"sam@{name}.co.uk",
            country="GB",
            webhook_url=self.hooks.url(name),
        )

        def approved() -> str | None:
            return next(
                (
                    h.json["data"]["partner_id"]
                    for h in self.hooks.to(name)
                    if h.json["data"]["type"] == "partner.approved"
                ),
                None,
            )

        await onboard(partner, stack=self.stack, producer=self.producer, approved_partner_id=approved, tier=tier)
        return partner

    async def eventually_async(
        self, value: Callable[[], Awaitable[object]], expected: object, what: str, timeout_s: float = 45
    ) -> None:
        """Poll an async value with a deadline until it equals `expected`."""

        async def probe() -> bool:
            return await value() == expected

        await wait_until(probe, timeout_s=timeout_s, what=what)

    def hooks_of(self, partner: ScenarioPartner) -> list[ReceivedHook]:
        """What the partner's webhook endpoint received."""
        return self.hooks.to(hook_name(partner))


def hook_name(partner: ScenarioPartner) -> str:
    return (partner.application.webhook_url or "").rsplit("/", 1)[-1]


@pytest.fixture(scope="session")
async def pipeline(stack: Stack) -> AsyncIterator[Pipeline]:
    smtp, hooks = SmtpSink(), WebhookSink()
    await smtp.start()
    await hooks.start()
    log_dir = Path(tempfile.mkdtemp(prefix="dealreg-e2e-logs-"))
    actions_port = free_port()
    notify_env = {
        "DEALREG_SMTP_PORT": str(smtp.port),
        "DEALREG_MANAGER_EMAILS": MANAGER,
        "DEALREG_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "DEALREG_DELIVERY_BACKOFF_S": "0.2",
        "DEALREG_ACTIONS_PORT": str(actions_port),
        "DEALREG_ACTIONS_BASE_URL": f"http://127.0.0.1:{actions_port}",
        "DEALREG_ACTIONS_SECRET": ACTIONS_SECRET,
    }
    service_env = {s: {"DEALREG_CONFIG_FILE": str(CONFIG_FILE)} for s in SERVICES}
    service_env["notify"].update(notify_env)
    service_env["conflict"].update(conflict_env())  # the same file, and a clock the tests can move
    services = await start_all(stack, log_dir=log_dir, extra_env=service_env)
    producer = make_producer(stack.kafka_bootstrap, client_id="tests-e2e")
    await producer.start()
    try:
        yield Pipeline(stack, smtp, hooks, producer, services, log_dir, service_env)
    finally:
        await producer.stop()
        await stop_all_while_serving(services)
        await smtp.stop()
        await hooks.stop()


@dataclass
class Conflict:
    """Two conflict replicas on the real stack (any other conflict process runs with the same settings), a
    producer for their input, and tails of what they publish."""

    stack: Stack
    replicas: list[ServiceProcess]
    producer: AIOKafkaProducer
    statuses: Tail
    opportunities: Tail


@pytest.fixture(scope="session")
async def conflict(stack: Stack) -> AsyncIterator[Conflict]:
    log_dir = Path(tempfile.mkdtemp(prefix="dealreg-conflict-logs-"))
    replicas = [start_service(stack, "conflict", log_dir=log_dir, extra_env=conflict_env(), replica=i) for i in (1, 2)]
    producer = make_producer(stack.kafka_bootstrap, client_id="tests-conflict")
    statuses, opportunities = (
        Tail(stack.kafka_bootstrap, REGISTRATION_STATUS),
        Tail(stack.kafka_bootstrap, OPPORTUNITIES),
    )
    try:
        await wait_ready(replicas)  # their migrations are applied
        await set_clock_offset(stack.admin_dealreg_dsn, timedelta(0))  # whatever an interrupted run left
        await producer.start()
        await statuses.start()
        await opportunities.start()
        yield Conflict(stack, replicas, producer, statuses, opportunities)
    finally:
        await statuses.stop()
        await opportunities.stop()
        await producer.stop()
        for replica in replicas:
            replica.stop()
