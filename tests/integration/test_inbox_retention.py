"""The inbox's retention on the real stack: what the broker says its topics keep, and what goes from the inbox."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from dealreg_devstack.provision import Stack
from dealreg_shared.envelope import utcnow
from dealreg_shared.inbox_retention import (
    _PURGE_SQL,
    InboxRetention,
    purge_inbox,
    too_long_kept,
    what_topics_keep,
)
from tests.conftest import unique
from tests.integration.conftest import Plumbing

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
async def kept_topics(stack: Stack) -> AsyncIterator[dict[str, str]]:
    """Topics of the tests' own, each kept its own way: a day (segments rolled hourly), for ever, compacted."""
    marker = unique("keeps")
    configs = {
        "day": {"retention.ms": str(DAY_MS), "segment.ms": str(HOUR_MS)},
        "forever": {"retention.ms": "-1"},
        "compacted": {"cleanup.policy": "compact"},
    }
    names = {kind: f"tests.inbox-retention.{marker}.{kind}" for kind in configs}
    admin = AIOKafkaAdminClient(bootstrap_servers=stack.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(names[k], 1, 1, topic_configs=c) for k, c in configs.items()])
        yield names
        await admin.delete_topics(list(names.values()))
    finally:
        await admin.close()


async def test_the_broker_says_how_long_each_topic_can_still_hold_a_record(
    stack: Stack, kept_topics: dict[str, str]
) -> None:
    kept = {k.topic: k for k in await what_topics_keep(stack.kafka_bootstrap, list(kept_topics.values()))}
    day, forever, compacted = (kept[kept_topics[k]] for k in ("day", "forever", "compacted"))
    # retention after the segment's newest record, and a segment open for up to segment.ms
    assert day.longest == timedelta(hours=25)
    assert forever.longest is None
    assert compacted.longest is None
    # with a day's margin: 25 h + 24 h fits in three days, not in two
    assert too_long_kept([day], timedelta(days=3)) == []
    assert too_long_kept([day], timedelta(days=2)) == [day]
    assert too_long_kept([day, forever, compacted], timedelta(days=3650)) == [forever, compacted]


async def test_a_topic_the_broker_does_not_know_is_an_error_not_a_guess(stack: Stack) -> None:
    with pytest.raises(KafkaError):
        await what_topics_keep(stack.kafka_bootstrap, [f"tests.inbox-retention.{unique('none')}"])


async def age_inbox(p: Plumbing, count: int) -> tuple[set[str], set[str]]:
    """`count` inbox rows, every other one received 40 days ago (old and new share every page); (old, new) ids."""
    ids = [f"event-{i}" for i in range(count)]
    old = set(ids[::2])
    await p.pool.execute(
        "insert into inbox (event_id, topic, received_at) select e, 't', case when o then now() - interval '40 days' "
        "else now() end from unnest($1::text[], $2::bool[]) as r(e, o)",
        ids,
        [i in old for i in ids],
    )
    return old, set(ids) - old


async def inbox_ids(p: Plumbing) -> set[str]:
    return {r["event_id"] for r in await p.pool.fetch("select event_id from inbox")}


async def test_a_purge_deletes_the_rows_received_before_the_cutoff_page_range_by_page_range(plumbing: Plumbing) -> None:
    _, new = await age_inbox(plumbing, 3000)
    pages = await plumbing.pool.fetchval("select pg_relation_size('inbox') / current_setting('block_size')::int")
    assert pages > 9  # several statements, and a last range past the end
    deleted = await purge_inbox(plumbing.pool, before=utcnow() - timedelta(days=30), pages_per_statement=4)
    assert deleted == 1500
    assert await inbox_ids(plumbing) == new


async def test_each_statement_reads_its_page_range_only(plumbing: Plumbing) -> None:
    """A TID range scan: a plan that read the whole inbox in every statement would make a round quadratic."""
    await age_inbox(plumbing, 3000)
    async with plumbing.pool.acquire() as conn:
        plan = "\n".join(
            r[0]
            for r in await conn.fetch(
                f"explain (analyze, buffers, costs off) {_PURGE_SQL}", 2, 4, utcnow() - timedelta(days=30)
            )
        )
    assert "Tid Range Scan on inbox" in plan, plan
    assert "Seq Scan" not in plan, plan


def retention(p: Plumbing, stack: Stack, topics: list[str], days: float) -> InboxRetention:
    return InboxRetention(
        pool=p.pool, service="tests", bootstrap=stack.kafka_bootstrap, topics=topics, days=days, interval_s=3600
    )


async def test_a_round_purges_only_when_every_topic_read_has_let_go_of_what_it_deletes(
    plumbing: Plumbing, stack: Stack, kept_topics: dict[str, str]
) -> None:
    old, new = await age_inbox(plumbing, 400)
    # a topic that keeps its records for ever: the rows could still be needed, and stay
    unsafe = retention(plumbing, stack, [kept_topics["day"], kept_topics["forever"]], days=30)
    assert await unsafe.round() is None
    # the broker cannot say: nothing goes either
    unknown = retention(plumbing, stack, [kept_topics["day"], f"tests.inbox-retention.{unique('none')}"], days=30)
    assert await unknown.round() is None
    # no broker to ask (nothing listens on port 1): nothing goes
    away = InboxRetention(
        pool=plumbing.pool, service="tests", bootstrap="127.0.0.1:1", topics=[kept_topics["day"]], days=30, interval_s=1
    )
    assert await away.round() is None
    # kept a day, rolled hourly: past 30 days nothing of it is left
    assert await inbox_ids(plumbing) == old | new
    assert await retention(plumbing, stack, [kept_topics["day"]], days=30).round() == len(old)
    assert await inbox_ids(plumbing) == new
