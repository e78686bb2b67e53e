"""The CLI reads long topics a record at a time, and only what it needs: one key's partition, one id's records."""

from __future__ import annotations

import uuid

import pytest

from dealreg_cli.kafka_read import partition_of, scan
from dealreg_devstack.provision import Stack
from dealreg_shared.kafka import ensure_topics, make_producer
from dealreg_shared.topics import Topic
from tests.conftest import unique

pytestmark = pytest.mark.integration

PARTITIONS = 6


async def _topic(stack: Stack, records: list[tuple[bytes, bytes, list[tuple[str, bytes]]]]) -> tuple[str, list[int]]:
    """A topic of the test's own holding these (key, value, headers), published by the services' producer; the
    partition each went to."""
    topic = Topic(f"tests.cli-scan.{unique('t')}", PARTITIONS, "key", "CLI scan test")
    await ensure_topics(stack.kafka_bootstrap, [topic])
    producer = make_producer(stack.kafka_bootstrap, client_id="tests-cli-scan")
    await producer.start()
    try:
        sent = [await producer.send_and_wait(topic.name, value=v, key=k, headers=h) for k, v, h in records]
    finally:
        await producer.stop()
    return topic.name, [md.partition for md in sent]


async def test_the_cli_reads_a_keys_records_in_the_partition_the_services_producer_put_them_in(stack: Stack) -> None:
    keys = [str(uuid.uuid4()).encode() for _ in range(40)]
    name, partitions = await _topic(stack, [(k, b"{}", []) for k in keys])
    assert [partition_of(k, PARTITIONS) for k in keys] == partitions
    assert len(set(partitions)) > 1  # the keys spread: reading one partition leaves records out
    for key in keys[:5]:
        read = [r async for r in scan(stack.kafka_bootstrap, name, key=key)]
        assert key in {r.key for r in read}
        assert {r.partition for r in read} == {partition_of(key, PARTITIONS)}
        assert len(read) == partitions.count(partition_of(key, PARTITIONS))


async def test_a_scan_for_an_id_keeps_the_records_that_may_hold_it_and_passes_over_the_rest(stack: Stack) -> None:
    rid = str(uuid.uuid4())
    escaped = "".join(f"\\u{ord(c):04x}" for c in rid)  # the same text, spelled with JSON escapes
    records = [
        (b"a", f'{{"registration_id": "{rid}"}}'.encode(), []),
        (b"b", b'{"other": 1}', [("ce_correlationid", rid.encode())]),
        (b"c", f'{{"registration_id": "{escaped}"}}'.encode(), []),
        (b"d", f'{{"registration_id": "{uuid.uuid4()}"}}'.encode(), [("ce_correlationid", b"else")]),
    ]
    name, _ = await _topic(stack, records)
    kept = {r.key async for r in scan(stack.kafka_bootstrap, name, wanted=rid.encode())}
    assert kept == {b"a", b"b", b"c"}
    assert len([r async for r in scan(stack.kafka_bootstrap, name)]) == len(records)
