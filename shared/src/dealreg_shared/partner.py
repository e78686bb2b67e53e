"""The partner toolkit: sign and publish registrations (and applications) the way intake expects them.

dealreg-partner keygen --key-id k1 --seed-file k1.seed
dealreg-partner apply --key-id k1 --seed-file k1.seed application.json
dealreg-partner submit --partner-id p-x --key-id k1 --seed-file k1.seed registration.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from dealreg_shared.contracts import EventType, PartnerApplicationSubmitted, RegistrationSubmitted
from dealreg_shared.envelope import dump_data, new_event, rfc3339, utcnow
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


def prepare_registration(document: dict[str, Any], *, partner_id: str | None = None) -> RegistrationSubmitted:
    """A registration file as a partner writes it: a new `registration_id` and `submitted_at` when it has neither,
    `partner_id` from the command line when it has none (and agreeing with it when it has one)."""
    document = dict(document)
    if partner_id is not None:
        if document.setdefault("partner_id", partner_id) != partner_id:
            raise ValueError(f"the file names partner {document['partner_id']!r}, not {partner_id!r}")
    if "registration_id" in document and "submitted_at" not in document:
        # a fresh timestamp would make every retry of this id different content: conflicting_resubmission
        raise ValueError("a file with its own registration_id needs its submitted_at too, so a retry is the same")
    document.setdefault("registration_id", str(uuid.uuid4()))
    document.setdefault("submitted_at", rfc3339(utcnow()))
    return RegistrationSubmitted.model_validate(document)


def prepare_application(document: dict[str, Any], *, key: SigningKey | None = None) -> PartnerApplicationSubmitted:
    """An application file: `application_id` and `submitted_at` filled in when absent, and the public half of
    `key` registered when the file lists no keys (the seed itself never leaves the partner's machine)."""
    document = dict(document)
    if key is not None and not document.get("public_keys"):
        document["public_keys"] = [{"key_id": key.key_id, "public_key": key.public_key_b64url}]
    document.setdefault("application_id", str(uuid.uuid4()))
    document.setdefault("submitted_at", rfc3339(utcnow()))
    return PartnerApplicationSubmitted.model_validate(document)


def _write_secret(path: Path, text: str) -> None:
    """Create `path` readable by its owner only; never overwrite an existing key."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text + "\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dealreg-partner", description="sign and publish deal registrations")
    sub = parser.add_subparsers(dest="command", required=True)
    bootstrap = os.environ.get("DEALREG_KAFKA_BOOTSTRAP", DEFAULT_KAFKA_BOOTSTRAP)
    keygen = sub.add_parser("keygen", help="make an Ed25519 key pair: register the public key, keep the seed secret")
    keygen.add_argument("--key-id", required=True)
    keygen.add_argument("--seed-file", type=Path, help="write the seed to this new file (mode 0600) instead of stdout")
    apply_cmd = sub.add_parser("apply", help="publish a partner application JSON file")
    apply_cmd.add_argument("--key-id", help="with --seed-file: register this key when the file lists none")
    apply_cmd.add_argument("--seed-file", type=Path)
    apply_cmd.add_argument("--bootstrap", default=bootstrap)
    apply_cmd.add_argument("application", type=Path)
    submit = sub.add_parser("submit", help="sign and publish a registration.submitted JSON file")
    submit.add_argument("--partner-id", help="the partner id the program gave you (when the file names none)")
    submit.add_argument("--key-id", required=True)
    submit.add_argument("--seed-file", required=True, type=Path, help="file with the base64url private seed")
    submit.add_argument("--bootstrap", default=bootstrap)
    submit.add_argument("registration", type=Path)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Prints one JSON object on stdout (what a script needs next); errors go to stderr with exit code 2."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "keygen":
            key = SigningKey.generate(args.key_id)
            out = {"key_id": key.key_id, "public_key": key.public_key_b64url}
            if args.seed_file is None:
                out["seed"] = key.seed_b64url
            else:
                _write_secret(args.seed_file, key.seed_b64url)
            print(json.dumps(out))
        elif args.command == "apply":
            if bool(args.key_id) != bool(args.seed_file):
                parser.error("apply: --key-id and --seed-file go together")
            own = SigningKey.from_seed(args.key_id, args.seed_file.read_text().strip()) if args.seed_file else None
            application = prepare_application(json.loads(args.application.read_bytes()), key=own)
            asyncio.run(apply(args.bootstrap, application))
            print(json.dumps({"application_id": str(application.application_id)}))
        else:
            key = SigningKey.from_seed(args.key_id, args.seed_file.read_text().strip())
            registration = prepare_registration(json.loads(args.registration.read_bytes()), partner_id=args.partner_id)

            async def _submit() -> None:
                async with PartnerClient(bootstrap=args.bootstrap, key=key) as client:
                    await client.submit(registration)

            asyncio.run(_submit())
            # exactly as signed: add both to the file and a retry of it is the same content, a no-op
            print(json.dumps(registration.model_dump(mode="json", include={"registration_id", "submitted_at"})))
    except (OSError, ValueError) as exc:  # a missing file, bad JSON, a contract violation, a bad seed
        print(f"dealreg-partner {args.command}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
