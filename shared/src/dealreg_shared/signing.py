"""Ed25519 signing of record values, shared by partners (sign) and intake (verify)."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat


def b64url_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if not text or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in text):
        raise ValueError("not base64url without padding")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class SigningKey:
    """A partner's key pair; the private half never leaves the partner's system."""

    key_id: str
    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls, key_id: str) -> SigningKey:
        return cls(key_id, Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, key_id: str, seed_b64url: str) -> SigningKey:
        return cls(key_id, Ed25519PrivateKey.from_private_bytes(b64url_decode(seed_b64url)))

    @property
    def seed_b64url(self) -> str:
        raw = self.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return b64url_encode(raw)

    @property
    def public_key_b64url(self) -> str:
        return b64url_encode(self.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign(self, value: bytes) -> str:
        """The `ce_signature` header for these exact record value bytes."""
        return b64url_encode(self.private_key.sign(value))


def verify(public_key_b64url: str, value: bytes, signature_b64url: str) -> bool:
    """True only when the signature is a valid Ed25519 signature of `value` by that public key."""
    try:
        raw_key = b64url_decode(public_key_b64url)
        signature = b64url_decode(signature_b64url)
        if len(raw_key) != 32 or len(signature) != 64:
            return False
        Ed25519PublicKey.from_public_bytes(raw_key).verify(signature, value)
    except (ValueError, InvalidSignature):
        return False
    return True
