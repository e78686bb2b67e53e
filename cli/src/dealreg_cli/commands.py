"""What the CLI does, as functions returning rows: pending work, decisions, history, dead letters, status."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from dealreg_cli.kafka_read import Record, read_to_end, scan, topic_overview
from dealreg_shared.contracts import EventType, PartnerApplicationDecided, RegistrationDecided
from dealreg_shared.contracts.catalog import CHANNELS
from dealreg_shared.kafka import make_producer, publish_event
from dealreg_shared.topics import (
    DLQ_SUFFIX,
    MAIN_TOPICS,
    OPPORTUNITIES,
    PARTNER_DECISIONS,
    PARTNERS,
    REGISTRATION_DECISIONS,
    REGISTRATION_STATUS,
    REGISTRATIONS_RECEIVED,
    REGISTRATIONS_SUBMITTED,
    REGISTRATIONS_VETTED,
    Topic,
    by_name,
)

# which service consumes which topic (its group is dealreg-<service>.<topic>), as the contract's catalogue says
SERVICES = ("intake", "vetting", "conflict", "notify")
CONSUMERS = {ch.topic.name: [c for c in ch.consumers if c in SERVICES] for ch in CHANNELS}


def _time(record: Record) -> str:
    return record.headers.get("ce_time") or datetime.fromtimestamp(record.timestamp_ms / 1000, UTC).isoformat()


WAITING_STATUSES = ("under_review", "expiring")


def still_waiting(waiting: dict[str, dict[str, Any]], r: Record) -> None:
    """Folds one status record into the registrations that wait for a manager (each one's latest status, while
    that is one that waits): what `pending` keeps is those, not the topic."""
    data = r.data
    if r.headers.get("ce_type") != EventType.REGISTRATION_STATUS_CHANGED or not isinstance(data, dict):
        return
    registration_id = data.get("registration_id")
    if not isinstance(registration_id, str):
        return
    if data.get("status") in WAITING_STATUSES and isinstance(data.get("partner_id"), str):
        waiting[registration_id] = {**data, "time": _time(r)}
    else:
        waiting.pop(registration_id, None)


async def pending(bootstrap: str) -> list[dict[str, Any]]:
    """What waits for a manager: registrations under review, applications not decided, protections expiring."""
    waiting: dict[str, dict[str, Any]] = {}
    async for r in scan(bootstrap, REGISTRATION_STATUS.name):  # one at a time: the topic can be long
        still_waiting(waiting, r)
    rows = [
        {
            "kind": "review" if s["status"] == "under_review" else "expiring",
            "id": rid,
            "partner": s["partner_id"],
            "customer": s.get("customer_name"),
            "since": s["time"],
            "until": s.get("protected_until"),
        }
        for rid, s in waiting.items()
    ]
    applications: dict[str, dict[str, Any]] = {}
    for r in await read_to_end(bootstrap, PARTNERS.name):
        data, kind = r.data, r.headers.get("ce_type")
        if not isinstance(data, dict) or "application_id" not in data:
            continue
        if kind == EventType.PARTNER_APPLICATION_VETTED:
            applications[data["application_id"]] = {
                "kind": "application",
                "id": data["application_id"],
                "partner": data["partner_id"],
                "customer": f"{data['company_name']} (recommendation: {data['recommendation']})",
                "since": _time(r),
                "until": None,
            }
        elif kind in (EventType.PARTNER_APPROVED, EventType.PARTNER_APPLICATION_REJECTED):
            applications.pop(data["application_id"], None)
    return sorted(rows + list(applications.values()), key=lambda row: str(row["since"]))


async def decide_registration(
    bootstrap: str,
    registration_id: uuid.UUID,
    decision: Literal["approve", "reject", "extend"],
    *,
    manager: str,
    reason: str,
    extend_days: int | None,
) -> str:
    decided = RegistrationDecided(
        decision_id=uuid.uuid4(),
        registration_id=registration_id,
        decision=decision,
        manager_id=manager,
        reason=reason,
        extend_days=extend_days,
    )
    await _publish(bootstrap, REGISTRATION_DECISIONS, str(registration_id), EventType.REGISTRATION_DECIDED, decided)
    return str(decided.decision_id)


async def decide_application(
    bootstrap: str,
    application_id: uuid.UUID,
    decision: Literal["approve", "reject"],
    *,
    manager: str,
    reason: str,
    tier: str | None,
) -> str:
    decided = PartnerApplicationDecided(
        decision_id=uuid.uuid4(),
        application_id=application_id,
        decision=decision,
        tier=tier,
        manager_id=manager,
        reason=reason,
    )
    await _publish(bootstrap, PARTNER_DECISIONS, str(application_id), EventType.PARTNER_APPLICATION_DECIDED, decided)
    return str(decided.decision_id)


async def _publish(bootstrap: str, topic: Any, key: str, type: EventType, data: Any) -> None:
    producer = make_producer(bootstrap, client_id="dealreg-cli")
    await producer.start()
    try:
        await publish_event(producer, topic, key=key, type=type, source="dealreg/cli", data=data, correlation_id=key)
    finally:
        await producer.stop()


async def history(bootstrap: str, registration_id: str) -> list[dict[str, Any]]:
    """Every event about one registration across the four stages, in time order, from the topics.

    Only the services publish statuses, and their producers put a key's records in one partition: the statuses
    are read there alone. The received event gives the registration's customer key, and with it the one
    partition to read of the topics keyed by that (vetted, opportunities). The partners' submissions and the
    decisions (which other tools publish too) are read whole. Every record is passed over unless it holds the
    id's bytes, before anything is decoded, and only the registration's own are kept."""
    found = await _about(bootstrap, REGISTRATION_STATUS, registration_id, key=registration_id)
    for topic in (REGISTRATION_DECISIONS, REGISTRATIONS_SUBMITTED):
        found += await _about(bootstrap, topic, registration_id)
    received = await _about(bootstrap, REGISTRATIONS_RECEIVED, registration_id)
    customer_key = next((d["customer_key"] for _, _, d in received if isinstance(d.get("customer_key"), str)), None)
    found += received
    for topic in (REGISTRATIONS_VETTED, OPPORTUNITIES):
        found += await _about(bootstrap, topic, registration_id, key=customer_key)
    return sorted((_history_row(*f) for f in found), key=lambda row: str(row["time"]))


async def _about(
    bootstrap: str, topic: Topic, registration_id: str, *, key: str | None = None
) -> list[tuple[str, Record, dict[str, Any]]]:
    """A topic's records about one registration (its id as their correlation id or in their data), read in the
    partition of `key` when given, else in all."""
    found = []
    scanned = scan(bootstrap, topic.name, key=key.encode() if key else None, wanted=registration_id.encode())
    async for r in scanned:
        data = r.data if isinstance(r.data, dict) else {}
        if r.headers.get("ce_correlationid") == registration_id or data.get("registration_id") == registration_id:
            found.append((topic.name, r, data))
    return found


def _history_row(topic: str, r: Record, data: dict[str, Any]) -> dict[str, Any]:
    detail = data.get("status") or data.get("decision") or ""
    if data.get("reason_code"):
        detail += f" ({data['reason_code']})"
    return {
        "time": _time(r),
        "topic": topic,
        "event": r.headers.get("ce_type"),
        "source": r.headers.get("ce_source"),
        "detail": detail or data.get("opportunity_id"),
    }


def dlq_of(topic: str) -> str:
    name = topic if topic.endswith(DLQ_SUFFIX) else topic + DLQ_SUFFIX
    by_name(name)  # KeyError for a topic the catalogue does not know
    return name


async def dead_letters(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    return [
        {
            "offset": r.offset,
            "partition": r.partition,
            "failed_at": r.headers.get("dlq_failed_at"),
            "consumer": r.headers.get("dlq_consumer"),
            "error": r.headers.get("dlq_error"),
            "source": f"{r.headers.get('dlq_source_topic')}[{r.headers.get('dlq_source_partition')}]"
            f"@{r.headers.get('dlq_source_offset')}",
            "event": r.headers.get("ce_type"),
            "event_id": r.headers.get("ce_id"),
            "key": r.key.decode("utf-8", "replace") if r.key else None,
        }
        for r in await read_to_end(bootstrap, dlq_of(topic))
    ]


async def replay(bootstrap: str, topic: str, selected: set[tuple[int, int]] | None) -> list[dict[str, Any]]:
    """Publish chosen dead letters (partition, offset), or all of them, to their source topic again, as they were."""
    letters = [
        r
        for r in await read_to_end(bootstrap, dlq_of(topic))
        if selected is None or (r.partition, r.offset) in selected
    ]
    producer = make_producer(bootstrap, client_id="dealreg-cli-replay")
    await producer.start()
    replayed = []
    try:
        for r in letters:
            source = by_name(r.headers["dlq_source_topic"])
            if "dlq_value_truncated_from" in r.headers:
                # the letter holds only a prefix: replaying it would publish other bytes than the partner sent
                at = f"{source.name}[{r.headers['dlq_source_partition']}]@{r.headers['dlq_source_offset']}"
                replayed.append({"partition": r.partition, "offset": r.offset, "skipped": f"truncated; whole at {at}"})
                continue
            headers = [(k, v.encode()) for k, v in r.headers.items() if not k.startswith("dlq_")]
            await producer.send_and_wait(source.name, value=r.value, key=r.key, headers=headers)
            replayed.append(
                {"partition": r.partition, "offset": r.offset, "to": source.name, "event": r.headers.get("ce_type")}
            )
    finally:
        await producer.stop()
    return replayed


async def status(bootstrap: str) -> list[dict[str, Any]]:
    """Per topic: records held, dead letters, and each consuming service's lag."""
    groups = {t.name: [f"dealreg-{s}.{t.name}" for s in CONSUMERS.get(t.name, [])] for t in MAIN_TOPICS}
    held, lags = await topic_overview(
        bootstrap, [t.name for t in MAIN_TOPICS] + [t.dlq.name for t in MAIN_TOPICS], groups
    )
    rows = []
    for topic in MAIN_TOPICS:
        lag = [
            f"{s}:{'-' if (v := lags[(f'dealreg-{s}.{topic.name}', topic.name)]) is None else v}"
            for s in CONSUMERS.get(topic.name, [])
        ]
        rows.append(
            {
                "topic": topic.name,
                "partitions": topic.partitions,
                "records": held[topic.name],
                "lag": " ".join(lag) or None,
                "dead_letters": held[topic.dlq.name],
            }
        )
    return rows
