"""The CLI reads topics that can hold hostile records: those are skipped, never a crash."""

from __future__ import annotations

from dealreg_cli.kafka_read import Record


def record(value: bytes) -> Record:
    return Record("t", 0, 0, 0, None, value, {})


def test_a_record_nested_past_the_parsers_limit_has_no_data() -> None:
    assert record(b"[" * 100_000 + b"]" * 100_000).data is None


def test_bytes_that_are_not_json_have_no_data() -> None:
    assert record(b"\xff\xfe{").data is None


def test_a_json_object_is_read() -> None:
    assert record(b'{"registration_id": "r1"}').data == {"registration_id": "r1"}
