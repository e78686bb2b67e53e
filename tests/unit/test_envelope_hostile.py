"""Hostile headers are undecodable: nothing a consumer would fail on at every retry gets past decoding."""

from __future__ import annotations

import pytest

from dealreg_shared.envelope import MAX_DEPTH, MAX_ID_LENGTH, UndecodableRecord, decode_event
from tests.unit.test_envelope import MAX, _headers


@pytest.mark.parametrize("header", ["ce_id", "ce_type", "ce_keyid", "ce_correlationid"])
def test_a_nul_character_in_a_header_value_makes_the_record_undecodable(header: str) -> None:
    headers = [*_headers(), (header, b"abc\x00def")] if header == "ce_keyid" else _headers(**{header: "abc\x00def"})
    with pytest.raises(UndecodableRecord, match="NUL"):
        decode_event(b"{}", headers, max_bytes=MAX)


def test_an_event_id_longer_than_any_real_one_makes_the_record_undecodable() -> None:
    with pytest.raises(UndecodableRecord, match="ce_id is longer"):
        decode_event(b"{}", _headers(ce_id="x" * (MAX_ID_LENGTH + 1)), max_bytes=MAX)
    assert decode_event(b"{}", _headers(ce_id="x" * MAX_ID_LENGTH), max_bytes=MAX).id == "x" * MAX_ID_LENGTH


def test_the_error_quotes_a_huge_header_name_only_briefly() -> None:
    with pytest.raises(UndecodableRecord) as caught:
        decode_event(b"{}", [*_headers(), ("h" * 100_000, b"\xff")], max_bytes=MAX)
    assert len(str(caught.value)) < 200


def test_json_nested_deeper_than_any_event_makes_the_record_undecodable() -> None:
    deep = b'{"a":' + b"[" * MAX_DEPTH + b"]" * MAX_DEPTH + b"}"
    with pytest.raises(UndecodableRecord, match=f"nested deeper than {MAX_DEPTH}"):
        decode_event(deep, _headers(), max_bytes=MAX)


def test_json_nested_as_deep_as_allowed_decodes() -> None:
    # the object itself is the first level, each list inside one more
    allowed = b'{"a":' + b"[" * (MAX_DEPTH - 1) + b"]" * (MAX_DEPTH - 1) + b"}"
    assert "a" in decode_event(allowed, _headers(), max_bytes=MAX).data


def test_brackets_inside_strings_do_not_make_a_shallow_value_undecodable() -> None:
    # more brackets than the limit, all of them text: the value is two levels deep
    shallow = b'{"a":{"b":"' + b"[{" * MAX_DEPTH + b'"}}'
    assert decode_event(shallow, _headers(), max_bytes=MAX).data == {"a": {"b": "[{" * MAX_DEPTH}}


def test_a_value_that_starts_with_a_byte_order_mark_is_not_json() -> None:
    with pytest.raises(UndecodableRecord, match="not JSON"):
        decode_event(b'\xef\xbb\xbf{"a":1}', _headers(), max_bytes=MAX)
