"""CloudEvents 1.0 in Kafka binary content mode: attributes as `ce_*` headers, `data` as the UTF-8 JSON value."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

SPECVERSION = "1.0"
CONTENT_TYPE = "application/json"
REQUIRED_HEADERS = ("ce_specversion", "ce_id", "ce_type", "ce_source")
MAX_DEPTH = 32  # no event of the contract nests more than a few levels; deeper is an attack on every consumer
MAX_ID_LENGTH = 200  # ce_id is every consumer's inbox key: a UUID in practice, and an index entry has a size limit


class UndecodableRecord(Exception):
    """The record's bytes or headers are not a CloudEvent we can read: it belongs in the topic's .dlq."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def dump_data(data: BaseModel | dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON of an event's data; decimals and dates as strings, never floats."""
    if isinstance(data, BaseModel):
        return data.model_dump_json(exclude_none=False).encode()
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str).encode()


@dataclass(frozen=True)
class CloudEvent:
    """One event: its attributes and its JSON data (still a plain dict: each consumer validates its model)."""

    id: str
    type: str
    source: str
    time: str
    data: dict[str, Any]
    correlation_id: str | None = None
    causation_id: str | None = None
    extensions: dict[str, str] = field(default_factory=dict)

    def headers(self) -> list[tuple[str, bytes]]:
        pairs = [
            ("ce_specversion", SPECVERSION),
            ("ce_id", self.id),
            ("ce_type", self.type),
            ("ce_source", self.source),
            ("ce_time", self.time),
            ("content-type", CONTENT_TYPE),
        ]
        if self.correlation_id:
            pairs.append(("ce_correlationid", self.correlation_id))
        if self.causation_id:
            pairs.append(("ce_causationid", self.causation_id))
        pairs.extend(sorted(self.extensions.items()))
        return [(k, v.encode()) for k, v in pairs]


def new_event(
    *,
    type: str,
    source: str,
    data: BaseModel | dict[str, Any],
    correlation_id: str | None = None,
    causation_id: str | None = None,
    extensions: dict[str, str] | None = None,
) -> tuple[CloudEvent, bytes]:
    """A fresh event and its record value bytes (the bytes are what a partner signs)."""
    value = dump_data(data)
    event = CloudEvent(
        id=str(uuid.uuid4()),
        type=type,
        source=source,
        time=rfc3339(utcnow()),
        data=json.loads(value),
        correlation_id=correlation_id,
        causation_id=causation_id,
        extensions=dict(extensions or {}),
    )
    return event, value


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)  # built in C; a key given twice leaves fewer entries than pairs
    if len(obj) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise UndecodableRecord(f"duplicate JSON key {key!r}")
            seen.add(key)
    return obj


def _reject_constant(name: str) -> Any:
    raise UndecodableRecord(f"{name} is not valid JSON")


# one decoder for every record (`json.loads` with a hook builds a decoder and its scanner at each call)
_DECODER = json.JSONDecoder(object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
_KNOWN_HEADERS = frozenset({*REQUIRED_HEADERS, "ce_time", "ce_correlationid", "ce_causationid"})


def _nested_deeper_than(data: Any, limit: int) -> bool:
    level: list[Any] = [data]
    for _ in range(limit):
        level = [
            child
            for node in level
            for child in (node.values() if isinstance(node, dict) else node)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def decode_headers(raw: list[tuple[str, bytes]] | tuple[tuple[str, bytes], ...] | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in raw or ():
        try:
            headers[name] = value.decode("utf-8") if value is not None else ""
        except UnicodeDecodeError:
            raise UndecodableRecord(f"header {name[:100]!r} is not UTF-8") from None
        if "\x00" in headers[name]:
            # no text column can hold NUL: the inbox would fail on it at every retry
            raise UndecodableRecord(f"header {name[:100]!r} contains a NUL character")
    return headers


def decode_event(value: bytes | None, raw_headers: Any, *, max_bytes: int) -> CloudEvent:
    """Parse a record into a CloudEvent or raise UndecodableRecord saying exactly what is wrong."""
    if value is None:
        raise UndecodableRecord("record has no value")
    if len(value) > max_bytes:
        raise UndecodableRecord(f"record of {len(value)} bytes exceeds the limit of {max_bytes}")
    headers = decode_headers(raw_headers)
    missing = [h for h in REQUIRED_HEADERS if not headers.get(h)]
    if missing:
        raise UndecodableRecord(f"missing CloudEvents headers: {', '.join(missing)}")
    if len(headers["ce_id"]) > MAX_ID_LENGTH:
        raise UndecodableRecord(f"ce_id is longer than {MAX_ID_LENGTH} characters")
    if headers["ce_specversion"] != SPECVERSION:
        raise UndecodableRecord(f"unsupported ce_specversion {headers['ce_specversion'][:20]!r}")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UndecodableRecord(f"value is not UTF-8 at byte {exc.start}") from None
    try:
        data = _DECODER.decode(text)
    except RecursionError:
        raise UndecodableRecord("value is nested too deeply") from None
    except ValueError as exc:
        raise UndecodableRecord(f"value is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise UndecodableRecord(f"value is JSON {type(data).__name__}, not an object")
    # a value cannot nest deeper than it has brackets, and most have fewer than the limit: no walk for those
    if text.count("{") + text.count("[") > MAX_DEPTH and _nested_deeper_than(data, MAX_DEPTH):
        # what the parser followed, hashing or re-serializing it deeper in a handler's stack would not
        raise UndecodableRecord(f"value is nested deeper than {MAX_DEPTH} levels")
    return CloudEvent(
        id=headers["ce_id"],
        type=headers["ce_type"],
        source=headers["ce_source"],
        time=headers.get("ce_time", ""),
        data=data,
        correlation_id=headers.get("ce_correlationid"),
        causation_id=headers.get("ce_causationid"),
        extensions={k: v for k, v in headers.items() if k.startswith("ce_") and k not in _KNOWN_HEADERS},
    )
