"""The partner toolkit: sign and publish registrations (and applications) the way intake expects them.

dealreg-partner keygen --key-id k1
dealreg-partner submit --partner-id p-x --key-id k1 --seed-file k1.seed registration.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from dealreg_shared.contracts import EventType, PartnerApplicationSubmitted, RegistrationSubmitted
from dealreg_shared.envelope import dump_data, new_event
from dealreg_shared.kafka import make_producer, publish_event
from dealreg_shared.settings import DEFAULT_KAFKA_BOOTSTRAP
from dealreg_shared.signing import SigningKey
from dealreg_shared.topics import PARTNER_APPLICATIONS, REGISTRATIONS_SUBMITTED


def signed_submission(
    registration: RegistrationSubmitted | dict[str, Any], key: SigningKey
) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of a signed `registration.submitted` record; the signature covers the value bytes."""
    data = registration if isinstance(registration, BaseModel) else RegistrationSubmitted.model_validate(registration)
    value = dump_data(data)
    event, _ = new_event(
        type=EventType.REGISTRATION_SUBMITTED,
        source=f"partners/{data.partner_id}",
        data=data,
        correlation_id=str(data.registration_id),
        extensions={"ce_keyid": key.key_id, "ce_signature": key.sign(value)},
    )
    return data.partner_id.encode(), value, event.headers()


class PartnerClient:
    """Publishes as one partner. `async with PartnerClient(...) as client: await client.submit(reg)`."""

    def __init__(self, *, bootstrap: str, key: SigningKey) -> None:
        self.key = key
        self.producer = make_producer(bootstrap, client_id="dealreg-partner")

    async def __aenter__(self) -> PartnerClient:
        await self.producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.producer.stop()

    async def submit(self, registration: RegistrationSubmitted | dict[str, Any]) -> None:
        key, value, headers = signed_submission(registration, self.key)
        await self.producer.send_and_wait(REGISTRATIONS_SUBMITTED.name, value=value, key=key, headers=headers)

    async def send_raw(self, *, value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> None:
        """For testing intake's defences: publish exactly these bytes."""
        await self.producer.send_and_wait(REGISTRATIONS_SUBMITTED.name, value=value, key=key, headers=headers)


async def apply(bootstrap: str, application: PartnerApplicationSubmitted) -> None:
    """Publish a partner application (what the onboarding form does)."""
    producer = make_producer(bootstrap, client_id="dealreg-onboarding")
    await producer.start()
    try:
        await publish_event(
            producer,
            PARTNER_APPLICATIONS,
            key=str(application.application_id),
            type=EventType.PARTNER_APPLICATION_SUBMITTED,
            source="dealreg/onboarding",
            data=application,
            correlation_id=str(application.application_id),
        )
    finally:
        await producer.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dealreg-partner", description="sign and publish deal registrations")
    sub = parser.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="make an Ed25519 key pair: register the public key, keep the seed secret")
    keygen.add_argument("--key-id", required=True)
    submit = sub.add_parser("submit", help="sign and publish a registration.submitted JSON file")
    submit.add_argument("--key-id", required=True)
    submit.add_argument("--seed-file", required=True, type=Path, help="file with the base64url private seed")
    submit.add_argument("--bootstrap", default=os.environ.get("DEALREG_KAFKA_BOOTSTRAP", DEFAULT_KAFKA_BOOTSTRAP))
    submit.add_argument("registration", type=Path)
    args = parser.parse_args(argv)
    if args.command == "keygen":
        key = SigningKey.generate(args.key_id)
        print(json.dumps({"key_id": key.key_id, "public_key": key.public_key_b64url, "seed": key.seed_b64url}))
        return
    key = SigningKey.from_seed(args.key_id, args.seed_file.read_text().strip())
    registration = RegistrationSubmitted.model_validate_json(args.registration.read_bytes())

    async def _submit() -> None:
        async with PartnerClient(bootstrap=args.bootstrap, key=key) as client:
            await client.submit(registration)

    asyncio.run(_submit())
    print(f"submitted {registration.registration_id}", file=sys.stderr)


if __name__ == "__main__":
    main()
