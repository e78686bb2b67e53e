"""Prometheus metrics every service exposes on its health port at `/metrics` (official client library)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)

RECORDS_CONSUMED = Counter(
    "dealreg_records_consumed", "Records read from Kafka", ["service", "topic"], registry=REGISTRY
)
RECORDS_PROCESSED = Counter(
    "dealreg_records_processed",
    "Records whose effect is durable, by outcome: applied, duplicate (already applied), dead_lettered, skipped "
    "(nothing to do for this service, known from the headers)",
    ["service", "topic", "outcome"],
    registry=REGISTRY,
)
REGISTRATIONS_REJECTED = Counter(
    "dealreg_registrations_rejected",
    "Registrations rejected, by reason code",
    ["service", "reason_code"],
    registry=REGISTRY,
)
PROCESSING_SECONDS = Histogram(
    "dealreg_processing_seconds",
    "Time from reading a record to its effect being durable",
    ["service", "topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "dealreg_consumer_lag",
    "Records behind the end of the partition",
    ["service", "topic", "partition"],
    registry=REGISTRY,
)
OUTBOX_BACKLOG = Gauge(
    "dealreg_outbox_backlog", "Committed events not yet published to Kafka", ["service"], registry=REGISTRY
)
OUTBOX_SET_ASIDE = Counter(
    "dealreg_outbox_set_aside",
    "Outbox records the broker can never take, set aside with the error",
    ["service"],
    registry=REGISTRY,
)
NOTIFICATIONS_DELIVERED = Counter(
    "dealreg_notification_deliveries",
    "Notification delivery attempts by channel and outcome",
    ["channel", "outcome"],
    registry=REGISTRY,
)
NOTIFICATIONS_PURGED = Counter(
    "dealreg_notifications_purged",
    "Finished notifications deleted once past their retention (DEALREG_NOTIFICATION_RETENTION_DAYS)",
    registry=REGISTRY,
)
INBOX_PURGED = Counter(
    "dealreg_inbox_purged",
    "Inbox rows deleted once past their retention (DEALREG_INBOX_RETENTION_DAYS) and out of every topic",
    ["service"],
    registry=REGISTRY,
)


def exposition() -> bytes:
    return generate_latest(REGISTRY)
