"""Ed25519 signatures over exact record bytes: partners sign, intake verifies."""

from __future__ import annotations

import pytest

from dealreg_shared.signing import SigningKey, b64url_decode, b64url_encode, verify

VALUE = b'{"registration_id":"6f1c8f0e-3a0b-4c55-9d1e-8a2b7d9f1c20","partner_id":"p-northwind"}'


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey.generate("k1")


def test_a_signature_verifies_with_its_public_key(key: SigningKey) -> None:
    assert verify(key.public_key_b64url, VALUE, key.sign(VALUE))


def test_signature_is_base64url_without_padding(key: SigningKey) -> None:
    signature = key.sign(VALUE)
    assert "=" not in signature
    assert "+" not in signature
    assert "/" not in signature
    assert len(b64url_decode(signature)) == 64


def test_public_key_is_32_raw_bytes_base64url(key: SigningKey) -> None:
    assert len(key.public_key_b64url) == 43
    assert len(b64url_decode(key.public_key_b64url)) == 32


@pytest.mark.parametrize("position", [0, len(VALUE) // 2, len(VALUE) - 1])
def test_a_signature_fails_when_one_byte_of_the_value_is_altered(key: SigningKey, position: int) -> None:
    signature = key.sign(VALUE)
    altered = bytearray(VALUE)
    altered[position] ^= 0x01
    assert not verify(key.public_key_b64url, bytes(altered), signature)


def test_a_signature_fails_when_a_byte_is_appended_or_removed(key: SigningKey) -> None:
    signature = key.sign(VALUE)
    assert not verify(key.public_key_b64url, VALUE + b" ", signature)
    assert not verify(key.public_key_b64url, VALUE[:-1], signature)


def test_a_signature_fails_with_another_key(key: SigningKey) -> None:
    other = SigningKey.generate("k2")
    assert not verify(other.public_key_b64url, VALUE, key.sign(VALUE))
    assert not verify(key.public_key_b64url, VALUE, other.sign(VALUE))


def test_a_truncated_signature_fails(key: SigningKey) -> None:
    signature = key.sign(VALUE)
    for cut in (1, 2, 4, 43):
        assert not verify(key.public_key_b64url, VALUE, signature[:-cut])


def test_a_signature_with_one_altered_byte_fails(key: SigningKey) -> None:
    raw = bytearray(b64url_decode(key.sign(VALUE)))
    raw[10] ^= 0x80
    assert not verify(key.public_key_b64url, VALUE, b64url_encode(bytes(raw)))


@pytest.mark.parametrize(
    "signature",
    ["", "garbage", "!!!!", "A" * 86, "===", "é" * 86, "a b", b64url_encode(b"\x00" * 64), b64url_encode(b"\x00" * 65)],
)
def test_a_garbage_signature_fails_without_raising(key: SigningKey, signature: str) -> None:
    assert not verify(key.public_key_b64url, VALUE, signature)


@pytest.mark.parametrize(
    "public_key",
    ["", "garbage!", "A" * 10, b64url_encode(b"\x01" * 31), b64url_encode(b"\x01" * 33), "=" * 43, "ü" * 43],
)
def test_a_garbage_public_key_fails_without_raising(key: SigningKey, public_key: str) -> None:
    assert not verify(public_key, VALUE, key.sign(VALUE))


def test_padded_base64_is_not_accepted_as_base64url() -> None:
    with pytest.raises(ValueError):
        b64url_decode("AAAA==")


def test_from_seed_reproduces_the_same_public_key(key: SigningKey) -> None:
    again = SigningKey.from_seed("k1", key.seed_b64url)
    assert again.public_key_b64url == key.public_key_b64url
    assert again.key_id == "k1"


def test_from_seed_signs_so_the_original_public_key_verifies(key: SigningKey) -> None:
    again = SigningKey.from_seed("k1", key.seed_b64url)
    assert verify(key.public_key_b64url, VALUE, again.sign(VALUE))


def test_from_seed_with_a_fixed_seed_is_deterministic() -> None:
    seed = b64url_encode(bytes(range(32)))
    assert SigningKey.from_seed("a", seed).public_key_b64url == SigningKey.from_seed("b", seed).public_key_b64url
    assert SigningKey.from_seed("a", seed).seed_b64url == seed


def test_from_seed_rejects_a_seed_of_the_wrong_length() -> None:
    with pytest.raises(ValueError):
        SigningKey.from_seed("k", b64url_encode(b"\x00" * 31))


def test_base64url_round_trips_every_length() -> None:
    for n in range(1, 70):
        raw = bytes(range(200, 256)) * 2
        assert b64url_decode(b64url_encode(raw[:n])) == raw[:n]
