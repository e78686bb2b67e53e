"""Forgetting applied events once they can no longer come again, so no service's inbox grows for ever.

An inbox row is what makes a redelivered event change nothing; it may go only once its event can no longer be
delivered. A record can be read again for as long as its topic keeps it: after a crash, a rebalance, or offsets
expired and reset to the earliest record. The broker keeps a record until the segment holding it is deleted,
`retention.ms` after the segment's newest record, and a segment stays open for up to `segment.ms`. So before each
round the broker is asked what every topic the service reads keeps, and the round runs only when the inbox's
retention is longer than that, with a day to spare: an event was published before it was applied, and its row
is older than the retention, so it is older than anything the topic still holds. A topic kept for ever (or
compacted), or a broker that cannot be asked, means no round: the rows stay.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from dealreg_shared.db import Pool, every
from dealreg_shared.envelope import utcnow
from dealreg_shared.metrics import INBOX_PURGED

log = structlog.get_logger(__name__)

# beyond what the topics keep: producers' clocks (a record's timestamp is its producer's, and the broker's
# retention counts from it; Kafka 4 refuses timestamps more than an hour ahead by default)
MARGIN = timedelta(days=1)
# heap pages a statement looks at (8 KB each, some 30,000 rows of an inbox: each statement a short transaction).
# The inbox is read once a round, in its physical order, by TID ranges: no index on received_at weighs on the hot
# path, and no statement reads what another did
PAGES_PER_STATEMENT = 256
_TOPIC_CONFIGS = ("retention.ms", "segment.ms", "cleanup.policy")


@dataclass(frozen=True)
class TopicKeeps:
    """How long a topic can still hold a record; None: for ever (no time retention, or compacted)."""

    topic: str
    longest: timedelta | None
    detail: str


def topic_keeps(topic: str, configs: dict[str, str]) -> TopicKeeps:
    retention_ms = int(configs.get("retention.ms", "-1"))
    segment_ms = int(configs.get("segment.ms", "0"))
    policy = configs.get("cleanup.policy", "delete")
    detail = f"retention.ms={retention_ms} segment.ms={segment_ms} cleanup.policy={policy}"
    if retention_ms < 0 or "delete" not in policy.split(","):
        return TopicKeeps(topic, None, detail)
    return TopicKeeps(topic, timedelta(milliseconds=retention_ms + segment_ms), detail)


async def what_topics_keep(bootstrap: str, topics: list[str]) -> list[TopicKeeps]:
    """The broker's answer for each topic; raises when it cannot say (unknown topic, broker away)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="dealreg-inbox-retention")
    try:
        await admin.start()  # a broker away fails here: the client's connections are closed all the same
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t, dict.fromkeys(_TOPIC_CONFIGS)) for t in topics]
        )
    finally:
        await admin.close()
    kept: list[TopicKeeps] = []
    for response in responses:
        for resource in response.to_object()["resources"]:
            if resource["error_code"]:
                raise KafkaError(f"{resource['resource_name']}: error code {resource['error_code']}")
            # aiokafka names the entry's name field `config_names`
            configs = {e["config_names"]: e["config_value"] for e in resource["config_entries"]}
            kept.append(topic_keeps(resource["resource_name"], configs))
    return kept


def too_long_kept(kept: list[TopicKeeps], retention: timedelta) -> list[TopicKeeps]:
    """The topics that may still hold a record whose inbox row would be past the retention."""
    return [k for k in kept if k.longest is None or k.longest + MARGIN >= retention]


# Rows received before $3 in heap pages [$1, $2): a TID range scan reads those pages and nothing else.
_PURGE_SQL = (
    "with gone as (delete from inbox where ctid >= format('(%s,0)', $1::bigint)::tid "
    "and ctid < format('(%s,0)', $2::bigint)::tid and received_at < $3 returning 1) select count(*) from gone"
)
_PAGES_SQL = "select pg_relation_size('inbox') / current_setting('block_size')::bigint"


async def purge_inbox(pool: Pool, *, before: datetime, pages_per_statement: int = PAGES_PER_STATEMENT) -> int:
    """Deletes the inbox rows received before `before`, a few pages a statement (each its own short
    transaction); how many went. Pages added meanwhile hold rows received now: the round ends at the pages the
    inbox had when it started."""
    pages: int = await pool.fetchval(_PAGES_SQL)
    total = 0
    for first in range(0, pages, pages_per_statement):
        total += await pool.fetchval(_PURGE_SQL, first, first + pages_per_statement, before)
    return total


class InboxRetention:
    """Every `interval_s` (and at start): the broker says what the service's topics keep; when the inbox's
    retention is longer, the rows past it go."""

    def __init__(
        self, *, pool: Pool, service: str, bootstrap: str, topics: list[str], days: float, interval_s: float
    ) -> None:
        self.pool = pool
        self.service = service
        self.bootstrap = bootstrap
        self.topics = sorted(set(topics))
        self.retention = timedelta(days=days)
        self.interval_s = interval_s

    async def run(self) -> None:
        await every(self.interval_s, self.round, failed="inbox_purge_failed")

    async def round(self) -> int | None:
        """One round: how many rows went, or None when the topics' retention forbade it (or could not be read)."""
        try:
            kept = await what_topics_keep(self.bootstrap, self.topics)
        except (KafkaError, OSError) as exc:
            log.warning("inbox_purge_skipped", reason="topic retention unknown", error=repr(exc))
            return None
        unsafe = too_long_kept(kept, self.retention)
        if unsafe:
            log.warning(
                "inbox_purge_skipped",
                reason="a topic may still hold records older than the inbox's retention (plus a day's margin)",
                inbox_retention_days=self.retention.total_seconds() / 86400,
                topics={k.topic: k.detail for k in unsafe},
            )
            return None
        before = utcnow() - self.retention
        started = time.monotonic()
        deleted = await purge_inbox(self.pool, before=before)
        INBOX_PURGED.labels(self.service).inc(deleted)
        if deleted:
            log.info(
                "inbox_purged",
                deleted=deleted,
                received_before=before.isoformat(),
                seconds=round(time.monotonic() - started, 2),
            )
        return deleted
