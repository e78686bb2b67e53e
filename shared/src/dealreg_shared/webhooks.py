"""Webhook signatures in the Standard Webhooks style: `webhook-id`, `webhook-timestamp`, `webhook-signature`."""

from __future__ import annotations

import base64
import hashlib
import hmac

SECRET_PREFIX = "whsec_"


def secret_bytes(secret: str) -> bytes:
    """`whsec_<base64>` as Standard Webhooks writes it; any other string is used as it is."""
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret[len(SECRET_PREFIX) :])
    return secret.encode()


def sign(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, *, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, msg_id=msg_id, timestamp=timestamp, body=body),
        "content-type": "application/json",
    }


def verify(secret: str, *, msg_id: str, timestamp: str, signature_header: str, body: bytes) -> bool:
    """What a receiver does: any of the space-separated `v1,<sig>` entries must match."""
    expected = sign(secret, msg_id=msg_id, timestamp=int(timestamp), body=body)
    return any(hmac.compare_digest(expected, candidate) for candidate in signature_header.split())


def derive_secret(master: str, subject: str) -> str:
    """A receiver's own secret, derived from the vendor's master secret: one leaked secret exposes one receiver.

    `whsec_<base64 of HMAC-SHA256(master, "dealreg-webhook-secret:" + subject)>`; nothing to store, and
    rotating the master rotates every derived secret.
    """
    digest = hmac.new(secret_bytes(master), f"dealreg-webhook-secret:{subject}".encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(digest).decode()
