"""The published contract (contract/): generated from the code, checked in, and usable by partners' tools."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from dealreg_shared.asyncapi import document, main, rendered
from dealreg_shared.contracts import EventType
from dealreg_shared.contracts.catalog import CHANNELS, MODELS
from dealreg_shared.topics import MAIN_TOPICS
from tests.samples import DESIGN_REGISTRATION as DESIGN_SAMPLE

CONTRACT = Path(__file__).parents[2] / "contract"


def test_the_checked_in_contract_matches_the_code() -> None:
    """Fails when a model or topic changes without `make contract`."""
    for rel, content in rendered().items():
        assert (CONTRACT / rel).read_text("utf-8") == content, f"contract/{rel} drifted: run make contract"
    main(["--check", str(CONTRACT)])  # the CI command agrees


def test_every_event_type_has_a_model_and_travels_on_a_channel() -> None:
    assert set(MODELS) == set(EventType)
    carried = {e for ch in CHANNELS for e in ch.events}
    assert carried == set(EventType)
    assert {ch.topic for ch in CHANNELS} == set(MAIN_TOPICS)


def test_every_channel_and_operation_of_the_asyncapi_document_resolves() -> None:
    doc = document()
    assert doc["asyncapi"].startswith("3.")
    for op in doc["operations"].values():
        assert op["channel"]["$ref"].removeprefix("#/channels/") in doc["channels"]
    for channel in doc["channels"].values():
        for message in channel["messages"].values():
            name = message["$ref"].removeprefix("#/components/messages/")
            payload = doc["components"]["messages"][name]["payload"]["$ref"].removeprefix("#/components/schemas/")
            assert payload in doc["components"]["schemas"]


def test_the_published_schema_accepts_the_designs_sample_and_refuses_a_float_amount() -> None:
    schema = json.loads((CONTRACT / "schemas" / "registration.submitted.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(DESIGN_SAMPLE, schema)
    broken = json.loads(json.dumps(DESIGN_SAMPLE))
    broken["opportunity"]["estimated_value"]["amount"] = 48000.5
    errors = list(jsonschema.Draft202012Validator(schema).iter_errors(broken))
    assert errors, "a float amount must not validate"
