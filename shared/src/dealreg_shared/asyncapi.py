"""The published contract, generated from the code: an AsyncAPI 3 document and a JSON Schema per event.

uv run python -m dealreg_shared.asyncapi contract/      # write (make contract)
uv run python -m dealreg_shared.asyncapi --check contract/   # exit 1 when the checked-in copy drifted
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pydantic.json_schema import models_json_schema

from dealreg_shared.contracts.catalog import CHANNELS, MODELS
from dealreg_shared.topics import DLQ_SUFFIX

CE_HEADERS: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0 attributes in Kafka binary content mode (record headers)",
    "required": ["ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time", "content-type"],
    "properties": {
        "ce_specversion": {"const": "1.0"},
        "ce_id": {"type": "string", "description": "UUID, unique per event: every consumer's idempotency key"},
        "ce_type": {"type": "string"},
        "ce_source": {"type": "string", "description": "dealreg/<service> or partners/<partner_id>"},
        "ce_time": {"type": "string", "format": "date-time"},
        "content-type": {"const": "application/json"},
        "ce_correlationid": {"type": "string", "description": "the registration or application id"},
        "ce_causationid": {"type": "string", "description": "ce_id of the event that caused this one"},
        "ce_keyid": {"type": "string", "description": "registration.submitted: which registered key signed"},
        "ce_signature": {
            "type": "string",
            "description": "registration.submitted: base64url (no padding) Ed25519 signature of the value bytes",
        },
    },
}


def _schema_name(model: type[Any]) -> str:
    return str(model.__name__)


def schemas() -> dict[str, Any]:
    """Every model's JSON Schema, with nested models under components/schemas."""
    models = sorted(set(MODELS.values()), key=_schema_name)
    _, top = models_json_schema([(m, "validation") for m in models], ref_template="#/components/schemas/{model}")
    return dict(sorted(top["$defs"].items()))


def document() -> dict[str, Any]:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for ch in CHANNELS:
        cid = ch.topic.name.removeprefix("dealreg.").removesuffix(".v1").replace(".", "-")
        channels[cid] = {
            "address": ch.topic.name,
            "description": f"{ch.topic.description}. Key: {ch.topic.key}. Dead letters: {ch.topic.name}{DLQ_SUFFIX}.",
            "messages": {str(e): {"$ref": f"#/components/messages/{e}"} for e in ch.events},
            "bindings": {
                "kafka": {"topic": ch.topic.name, "partitions": ch.topic.partitions, "bindingVersion": "0.5.0"}
            },
        }
        ref = {"$ref": f"#/channels/{cid}"}
        for who in ch.producers:
            operations[f"{who}-sends-{cid}"] = {"action": "send", "channel": ref, "summary": f"{who} publishes"}
        for who in ch.consumers:
            operations[f"{who}-receives-{cid}"] = {"action": "receive", "channel": ref, "summary": f"{who} consumes"}
        for event in ch.events:
            messages[str(event)] = {
                "name": str(event),
                "contentType": "application/json",
                "headers": CE_HEADERS,
                "payload": {"$ref": f"#/components/schemas/{_schema_name(MODELS[event])}"},
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "dealreg",
            "version": "1.0.0",
            "description": "Deal registration events between partner systems, dealreg's services, managers and CRMs.",
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "127.0.0.1:9092", "protocol": "kafka", "description": "the local stack"}},
        "channels": channels,
        "operations": dict(sorted(operations.items())),
        "components": {"messages": dict(sorted(messages.items())), "schemas": schemas()},
    }


def event_schema(event: str) -> dict[str, Any]:
    """A standalone JSON Schema (2020-12) of one event's data, for partners' code generators."""
    model = MODELS[event]  # type: ignore[index]
    schema = model.model_json_schema(ref_template="#/$defs/{model}")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": f"dealreg:{event}", **schema}


def rendered() -> dict[str, str]:
    """Relative path → file content of the whole published contract."""
    files = {"asyncapi.json": json.dumps(document(), indent=2, sort_keys=False) + "\n"}
    for event in sorted(MODELS):
        files[f"schemas/{event}.schema.json"] = json.dumps(event_schema(event), indent=2) + "\n"
    return files


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dealreg-contract", description=__doc__)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    drift = []
    for rel, content in rendered().items():
        path = args.folder / rel
        if args.check:
            if not path.is_file() or path.read_text("utf-8") != content:
                drift.append(rel)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, "utf-8")
    if drift:
        print(
            "the checked-in contract differs from the code; run `make contract`: " + ", ".join(drift), file=sys.stderr
        )
        raise SystemExit(1)


if __name__ == "__main__":
    main()
