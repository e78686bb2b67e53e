"""What operators rely on, on the real stack: readiness that follows the database, metrics that count."""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dealreg_devstack.launcher import start_service, wait_ready
from dealreg_devstack.scenario import new_registration
from dealreg_devstack.tcpproxy import TcpProxy
from dealreg_shared.partner import PartnerClient, signed_submission
from dealreg_shared.signing import SigningKey
from dealreg_shared.topics import REGISTRATIONS_SUBMITTED
from tests.e2e.conftest import Pipeline

pytestmark = pytest.mark.e2e


async def sample(port: int, name: str, **labels: str) -> float:
    """The value of one metric sample of a running service (0 when it has not been seen yet)."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


async def status_code(port: int, path: str) -> int:
    async with httpx.AsyncClient(timeout=5) as client:
        return (await client.get(f"http://127.0.0.1:{port}{path}")).status_code


async def test_metrics_count_a_known_burst_of_valid_invalid_and_undecodable_records(pipeline: Pipeline) -> None:
    p = pipeline
    port = p.services["intake"].health_port
    topic = REGISTRATIONS_SUBMITTED.name
    partner = await p.onboard("metrics")
    before = {
        "consumed": await sample(port, "dealreg_records_consumed_total", service="intake", topic=topic),
        "applied": await sample(port, "dealreg_records_processed_total", topic=topic, outcome="applied"),
        "dead": await sample(port, "dealreg_records_processed_total", topic=topic, outcome="dead_lettered"),
        "unauth": await sample(port, "dealreg_registrations_rejected_total", reason_code="unauthenticated"),
    }
    customer = {
        "company": "Alpine Ski House",
        "domain": "alpineskihouse.com",
        "country": "AT",
        "contact_email": "buyer@alpineskihouse.com",
    }
    async with PartnerClient(bootstrap=p.stack.kafka_bootstrap, key=partner.key) as good:
        for _ in range(3):
            await good.submit(new_registration(partner.partner_id, **customer))
    async with PartnerClient(bootstrap=p.stack.kafka_bootstrap, key=SigningKey.generate("k1")) as forger:
        for _ in range(2):
            await forger.submit(new_registration(partner.partner_id, **customer))
        key, _, headers = signed_submission(new_registration(partner.partner_id, **customer), partner.key)
        await forger.send_raw(value=b"\x00\x01 not json", key=key, headers=headers)

    async def delta(name: str, metric: str, **labels: str) -> float:
        return await sample(port, metric, **labels) - before[name]

    await p.eventually_async(
        lambda: delta("consumed", "dealreg_records_consumed_total", service="intake", topic=topic),
        6,
        "intake consumed the burst",
    )
    assert await delta("applied", "dealreg_records_processed_total", topic=topic, outcome="applied") == 5
    assert await delta("dead", "dealreg_records_processed_total", topic=topic, outcome="dead_lettered") == 1
    assert await delta("unauth", "dealreg_registrations_rejected_total", reason_code="unauthenticated") == 2
    assert await sample(port, "dealreg_processing_seconds_count", service="intake", topic=topic) >= 6


async def test_readiness_turns_not_ready_when_the_database_is_unreachable_and_ready_when_it_is_back(
    pipeline: Pipeline,
) -> None:
    p = pipeline
    dsn = urlsplit(p.stack.service_dsn("conflict"))
    proxy = TcpProxy(dsn.hostname or "127.0.0.1", dsn.port or 5432)
    await proxy.start()
    through_proxy = dsn._replace(netloc=dsn.netloc.replace(f":{dsn.port}", f":{proxy.port}")).geturl()
    replica = start_service(
        p.stack,
        "conflict",
        log_dir=p.log_dir,
        replica=uuid.uuid4().int % 1000 + 1,
        extra_env={"DEALREG_DATABASE_URL": through_proxy},
    )
    try:
        await wait_ready([replica])
        assert await status_code(replica.health_port, "/readyz") == 200
        proxy.cut()
        await p.eventually_async(lambda: status_code(replica.health_port, "/readyz"), 503, "readiness follows the cut")
        assert await status_code(replica.health_port, "/livez") == 200  # alive: nothing to restart for
        proxy.restore()
        await p.eventually_async(lambda: status_code(replica.health_port, "/readyz"), 200, "ready again")
    finally:
        replica.stop()
        await proxy.stop()


async def test_a_service_starting_forgets_inbox_rows_past_their_retention_and_keeps_the_rest(
    pipeline: Pipeline,
) -> None:
    """The inbox's retention runs when a service starts: the local broker keeps its topics a week, segments roll
    weekly, so at the default 30 days a row received 40 days ago goes and one received now stays."""
    p = pipeline
    marker = uuid.uuid4().hex
    aged, recent = f"tests-aged-{marker}", f"tests-recent-{marker}"
    admin = await asyncpg.connect(p.stack.admin_dealreg_dsn)

    async def left() -> set[str]:
        rows = await admin.fetch("select event_id from vetting.inbox where event_id = any($1)", [aged, recent])
        return {r["event_id"] for r in rows}

    try:
        await admin.execute(
            "insert into vetting.inbox (event_id, topic, received_at) "
            "values ($1, 'tests', now() - interval '40 days'), ($2, 'tests', now())",
            aged,
            recent,
        )
        replica = start_service(p.stack, "vetting", log_dir=p.log_dir, replica=uuid.uuid4().int % 1000 + 1)
        try:
            await wait_ready([replica])
            await p.eventually_async(left, {recent}, "the aged inbox row purged, the recent one kept")
            assert await sample(replica.health_port, "dealreg_inbox_purged_total", service="vetting") >= 1
        finally:
            replica.stop()
    finally:
        await admin.execute("delete from vetting.inbox where event_id = any($1)", [aged, recent])
        await admin.close()
