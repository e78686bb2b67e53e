"""The CLI reads topics that can hold hostile records: those are skipped, never a crash."""

from __future__ import annotations

import json
from typing import Any

from dealreg_cli.commands import still_waiting
from dealreg_cli.kafka_read import Record

STATUS_HEADERS = {"ce_type": "registration.status-changed"}


def record(value: bytes) -> Record:
    return Record("t", 0, 0, 0, None, value, {})


def test_a_record_nested_past_the_parsers_limit_has_no_data() -> None:
    assert record(b"[" * 100_000 + b"]" * 100_000).data is None


def test_bytes_that_are_not_json_have_no_data() -> None:
    assert record(b"\xff\xfe{").data is None


def test_a_json_object_is_read() -> None:
    assert record(b'{"registration_id": "r1"}').data == {"registration_id": "r1"}


def status(
    registration_id: str, value: str, *, partner: str = "p1", type: str = "registration.status-changed"
) -> Record:
    data = {"registration_id": registration_id, "partner_id": partner, "status": value}
    return Record("s", 0, 0, 0, None, json.dumps(data).encode(), {"ce_type": type, "ce_time": "t"})


def test_pending_keeps_a_registration_while_its_latest_status_waits_for_a_manager_and_drops_it_after() -> None:
    waiting: dict[str, dict[str, Any]] = {}
    for r in (status("r1", "received"), status("r1", "under_review"), status("r2", "under_review")):
        still_waiting(waiting, r)
    assert set(waiting) == {"r1", "r2"}
    still_waiting(waiting, status("r1", "approved"))
    still_waiting(waiting, status("r3", "approved"))  # never waited: nothing to drop, nothing kept
    assert set(waiting) == {"r2"}
    still_waiting(waiting, status("r2", "expiring"))
    assert waiting["r2"]["status"] == "expiring"


def test_pending_passes_over_records_that_are_no_status_or_lack_what_a_row_needs() -> None:
    waiting: dict[str, dict[str, Any]] = {}
    still_waiting(waiting, status("r1", "under_review", type="registration.decided"))
    still_waiting(waiting, Record("s", 0, 0, 0, None, b'{"status": "under_review"}', STATUS_HEADERS))
    still_waiting(waiting, Record("s", 0, 0, 0, None, b"\xff", STATUS_HEADERS))
    still_waiting(
        waiting, Record("s", 0, 0, 0, None, b'{"registration_id": "r9", "status": "under_review"}', STATUS_HEADERS)
    )
    assert waiting == {}
