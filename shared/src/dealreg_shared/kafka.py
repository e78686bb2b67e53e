"""Kafka plumbing with safe defaults: the FastStream broker, the outbox producer, topic creation."""

from __future__ import annotations

from collections.abc import Iterable

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from pydantic import BaseModel

from dealreg_shared.envelope import CloudEvent, new_event
from dealreg_shared.logging import library_logger
from dealreg_shared.topics import Topic

log = structlog.get_logger(__name__)

# commit only after the handler returned: the work (inbox + state + outbox) is durable by then; an error that
# escapes the handler rewinds the partition so the record is read again
ACK_POLICY = AckPolicy.NACK_ON_ERROR


def make_broker(bootstrap: str, *, client_id: str) -> KafkaBroker:
    return KafkaBroker(
        bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        allow_auto_create_topics=False,
        ack_policy=ACK_POLICY,
        graceful_timeout=30.0,
        logger=library_logger(),
    )


def make_producer(bootstrap: str, *, client_id: str) -> AIOKafkaProducer:
    """Idempotent, acks=all: a record the broker acknowledged is on every in-sync replica, once, in order."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=30_000,
    )


async def publish_event(
    producer: AIOKafkaProducer,
    topic: Topic,
    *,
    key: str,
    type: str,
    source: str,
    data: BaseModel,
    correlation_id: str | None = None,
    extensions: dict[str, str] | None = None,
) -> CloudEvent:
    """Publish one event straight away (for producers outside the services: partners, managers, tools)."""
    event, value = new_event(type=type, source=source, data=data, correlation_id=correlation_id, extensions=extensions)
    await producer.send_and_wait(topic.name, value=value, key=key.encode(), headers=event.headers())
    return event


async def ensure_topics(bootstrap: str, topics: Iterable[Topic], *, replication: int = 1) -> list[str]:
    """Create the catalogue's topics that do not exist yet; returns the names created."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="dealreg-setup")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in topics if t.name not in existing]
        if not wanted:
            return []
        response = await admin.create_topics(
            [NewTopic(t.name, num_partitions=t.partitions, replication_factor=replication) for t in wanted]
        )
        # the broker answers per topic; aiokafka does not raise for those errors, so we look
        failed = [
            f"{error[0]}: {error[2] if len(error) > 2 and error[2] else f'error code {error[1]}'}"
            for error in response.topic_errors
            if error[1] not in (0, TopicAlreadyExistsError.errno)  # already there: a concurrent set-up made it
        ]
        if failed:
            raise RuntimeError("could not create topics: " + "; ".join(failed))
        return [t.name for t in wanted]
    finally:
        await admin.close()
