"""CloudEvents in Kafka binary mode: what decode_event accepts, and what it refuses with a telling message."""

from __future__ import annotations

import json

import pytest

from dealreg_shared.envelope import SPECVERSION, CloudEvent, UndecodableRecord, decode_event, new_event

MAX = 64 * 1024


def _headers(**overrides: str | None) -> list[tuple[str, bytes]]:
    base: dict[str, str | None] = {
        "ce_specversion": "1.0",
        "ce_id": "2f0b9c1e-4d7a-4a8e-9c3b-1a2b3c4d5e6f",
        "ce_type": "registration.submitted",
        "ce_source": "partners/p-northwind",
        "ce_time": "2026-11-23T10:15:00Z",
        "content-type": "application/json",
    }
    base.update(overrides)
    return [(k, v.encode()) for k, v in base.items() if v is not None]


def _reject(value: bytes | None, headers: list[tuple[str, bytes]] | None = None, *, max_bytes: int = MAX) -> str:
    with pytest.raises(UndecodableRecord) as info:
        decode_event(value, _headers() if headers is None else headers, max_bytes=max_bytes)
    return str(info.value)


def test_decode_event_accepts_a_well_formed_record() -> None:
    event = decode_event(b'{"a":"b"}', _headers(), max_bytes=MAX)
    assert event.data == {"a": "b"}
    assert event.id == "2f0b9c1e-4d7a-4a8e-9c3b-1a2b3c4d5e6f"
    assert event.type == "registration.submitted"
    assert event.source == "partners/p-northwind"
    assert event.time == "2026-11-23T10:15:00Z"


def test_decode_event_rejects_a_record_without_value() -> None:
    assert "no value" in _reject(None)


def test_decode_event_rejects_non_utf8_value_naming_the_byte() -> None:
    message = _reject(b'{"a":"\xff"}')
    assert "not UTF-8" in message
    assert "byte 6" in message


def test_decode_event_rejects_non_utf8_header() -> None:
    headers = [*_headers(), ("ce_keyid", b"\xff\xfe")]
    message = _reject(b"{}", headers)
    assert "ce_keyid" in message
    assert "UTF-8" in message


@pytest.mark.parametrize("value", [b"not json", b"{", b'{"a":1} trailing', b"", b"{'a': 1}"])
def test_decode_event_rejects_non_json(value: bytes) -> None:
    assert "not JSON" in _reject(value)


@pytest.mark.parametrize("value", [b"NaN", b'{"a": NaN}', b'{"a": Infinity}', b'{"a": -Infinity}'])
def test_decode_event_rejects_nan_and_infinity_which_json_does_not_allow(value: bytes) -> None:
    # RFC 8259 has no NaN/Infinity; Python's json module accepts them unless told otherwise
    _reject(value)


@pytest.mark.parametrize(
    ("value", "kind"),
    [(b"[]", "list"), (b'"text"', "str"), (b"42", "int"), (b"1.5", "float"), (b"null", "NoneType"), (b"true", "bool")],
)
def test_decode_event_rejects_json_that_is_not_an_object(value: bytes, kind: str) -> None:
    message = _reject(value)
    assert "not an object" in message
    assert kind in message


def test_decode_event_rejects_duplicate_top_level_keys() -> None:
    message = _reject(b'{"partner_id":"p-a","partner_id":"p-b"}')
    assert "duplicate JSON key" in message
    assert "partner_id" in message


def test_decode_event_rejects_duplicate_nested_keys() -> None:
    message = _reject(b'{"customer":{"domain":"a.com","domain":"b.com"}}')
    assert "duplicate JSON key" in message
    assert "domain" in message


def test_decode_event_rejects_oversize_value_naming_size_and_limit() -> None:
    value = b'{"a":"' + b"x" * 2000 + b'"}'
    message = _reject(value, max_bytes=1024)
    assert str(len(value)) in message
    assert "1024" in message


def test_decode_event_accepts_a_value_of_exactly_the_limit() -> None:
    value = b'{"a":"' + b"x" * (1024 - 8) + b'"}'
    assert len(value) == 1024
    assert decode_event(value, _headers(), max_bytes=1024).data["a"] == "x" * (1024 - 8)


def test_decode_event_checks_size_before_parsing() -> None:
    # an oversize record is refused for its size, even when it is also not JSON
    assert "exceeds" in _reject(b"\xff" * 2048, max_bytes=1024)


@pytest.mark.parametrize("missing", ["ce_specversion", "ce_id", "ce_type", "ce_source"])
def test_decode_event_rejects_missing_required_header(missing: str) -> None:
    message = _reject(b"{}", _headers(**{missing: None}))
    assert "missing CloudEvents headers" in message
    assert missing in message


def test_decode_event_treats_empty_required_header_as_missing() -> None:
    assert "ce_id" in _reject(b"{}", _headers(ce_id=""))


def test_decode_event_rejects_record_without_any_headers() -> None:
    message = _reject(b"{}", [])
    for name in ("ce_specversion", "ce_id", "ce_type", "ce_source"):
        assert name in message


@pytest.mark.parametrize("version", ["0.3", "1.1", "1", "2.0"])
def test_decode_event_rejects_wrong_specversion(version: str) -> None:
    message = _reject(b"{}", _headers(ce_specversion=version))
    assert "ce_specversion" in message
    assert repr(version) in message


def test_decode_event_rejects_deeply_nested_arrays() -> None:
    depth = 10_000
    assert "nested too deeply" in _reject(b'{"a":' + b"[" * depth + b"]" * depth + b"}")


def test_decode_event_rejects_deeply_nested_objects() -> None:
    depth = 10_000
    assert "nested too deeply" in _reject(b'{"a":' * depth + b"1" + b"}" * depth)


def test_new_event_round_trips_through_headers_and_decode_event() -> None:
    data = {"registration_id": "6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20", "amount": "48000.00", "name": "Müller"}
    event, value = new_event(
        type="registration.submitted",
        source="partners/p-northwind",
        data=data,
        correlation_id="corr-1",
        causation_id="cause-1",
    )
    decoded = decode_event(value, event.headers(), max_bytes=MAX)
    assert decoded == event
    assert decoded.data == data
    assert json.loads(value) == data


def test_new_event_headers_carry_the_cloudevents_attributes() -> None:
    event, _ = new_event(type="t.x", source="dealreg/intake", data={})
    headers = dict(event.headers())
    assert headers["ce_specversion"] == SPECVERSION.encode()
    assert headers["content-type"] == b"application/json"
    assert headers["ce_time"].endswith(b"Z")
    assert "ce_correlationid" not in headers
    assert "ce_causationid" not in headers


def test_new_events_get_distinct_ids() -> None:
    first, _ = new_event(type="t", source="s", data={})
    second, _ = new_event(type="t", source="s", data={})
    assert first.id != second.id


def test_extensions_such_as_keyid_and_signature_survive_the_round_trip() -> None:
    event, value = new_event(
        type="registration.submitted",
        source="partners/p-northwind",
        data={"x": 1},
        extensions={"ce_keyid": "k1", "ce_signature": "c2lnbmF0dXJl"},
    )
    decoded = decode_event(value, event.headers(), max_bytes=MAX)
    assert decoded.extensions == {"ce_keyid": "k1", "ce_signature": "c2lnbmF0dXJl"}


def test_decode_event_collects_unknown_ce_headers_as_extensions_but_not_other_headers() -> None:
    headers = [*_headers(ce_correlationid="c1"), ("ce_keyid", b"k1"), ("traceparent", b"00-abc")]
    decoded = decode_event(b"{}", headers, max_bytes=MAX)
    assert decoded.extensions == {"ce_keyid": "k1"}
    assert decoded.correlation_id == "c1"


def test_cloud_event_headers_are_bytes() -> None:
    event = CloudEvent(id="i", type="t", source="s", time="2026-01-01T00:00:00Z", data={}, extensions={"ce_x": "y"})
    assert all(isinstance(k, str) and isinstance(v, bytes) for k, v in event.headers())
