"""Intake passes over its own answers on the status topic, known from their headers; it applies every other."""

from __future__ import annotations

import uuid
from typing import Any

from aiokafka.structs import ConsumerRecord

from dealreg_intake.handlers import own_status
from dealreg_shared.contracts import Status
from dealreg_shared.outbox import Outbox, OutgoingRecord
from dealreg_shared.statuses import emit_status
from tests.conftest import consumer_record


def _status_from(service: str, stage: Any, status: Status) -> OutgoingRecord:
    outbox = Outbox(service=service)
    emit_status(outbox, registration_id=uuid.uuid4(), partner_id="p-1", status=status, stage=stage, partner_message="m")
    [record] = outbox.records
    return record


def _consumed(record: OutgoingRecord) -> ConsumerRecord[Any, Any]:
    return consumer_record(record.topic, record.value, record.headers, offset=1, key=record.key)


def test_intakes_own_answers_are_passed_over() -> None:
    for status in (Status.RECEIVED, Status.REJECTED):
        assert own_status(_consumed(_status_from("intake", "intake", status)))


def test_the_later_stages_statuses_are_applied() -> None:
    assert not own_status(_consumed(_status_from("vetting", "vetting", Status.REJECTED)))
    assert not own_status(_consumed(_status_from("conflict", "conflict", Status.APPROVED)))


def test_a_record_without_headers_or_of_another_type_from_intake_is_not_passed_over() -> None:
    record = _status_from("intake", "intake", Status.RECEIVED)
    other_type = [(k, b"registration.received" if k == "ce_type" else v) for k, v in record.headers]
    assert not own_status(_consumed(OutgoingRecord(record.topic, record.key, record.value, other_type)))
    assert not own_status(_consumed(OutgoingRecord(record.topic, record.key, record.value, [])))
