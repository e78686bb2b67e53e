"""Hostile records for the running services: drawn by hypothesis strategies, plus hand-written nasties."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dealreg_devstack.scenario import ScenarioPartner
from dealreg_shared.envelope import new_event
from dealreg_shared.signing import SigningKey
from dealreg_shared.topics import PARTNER_DECISIONS, REGISTRATION_DECISIONS, REGISTRATIONS_SUBMITTED, Topic
from tests.e2e.intake_helpers import registration_for

INJECTIONS = [
    "'; drop table intake.registrations; --",
    '" or 1=1 --',
    "<script>alert(1)</script>",
    "{{7*7}}${7*7}",
    "../../../../etc/passwd",
    "\u0000",
    "\u202egnp.exe",
    "%00%0d%0aSet-Cookie: x=y",
    "$(reboot)",
    "\ud800",
]


@dataclass
class Hostile:
    """One record to publish; `event_id` is the ce_id its answer (ce_causationid) or its dead letter carries."""

    kind: str
    topic: Topic
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    event_id: str
    answers_expected: bool = True  # False: an exact replay or resubmission, which must change nothing


def envelope(
    type: str, source: str, value: bytes, extensions: dict[str, str] | None = None
) -> tuple[list[tuple[str, bytes]], str]:
    event, _ = new_event(type=type, source=source, data={}, extensions=extensions)
    return event.headers(), event.id


def signed(key: SigningKey, value: bytes, partner_id: str, *, signature: str | None = None) -> Hostile:
    headers, event_id = envelope(
        "registration.submitted",
        f"partners/{partner_id}",
        value,
        {"ce_keyid": key.key_id, "ce_signature": signature if signature is not None else key.sign(value)},
    )
    return Hostile("", REGISTRATIONS_SUBMITTED, partner_id.encode()[:200], value, headers, event_id)


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(st.characters(codec=None, exclude_categories=()), max_size=40)
    | st.sampled_from(INJECTIONS)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
FIELDS = [
    ("registration_id",),
    ("partner_id",),
    ("submitted_at",),
    ("customer",),
    ("customer", "company_name"),
    ("customer", "domain"),
    ("customer", "country"),
    ("customer", "contact"),
    ("customer", "contact", "email"),
    ("opportunity", "product_lines"),
    ("opportunity", "estimated_value", "amount"),
    ("opportunity", "estimated_value", "currency"),
    ("opportunity", "expected_close_date"),
    ("opportunity", "description"),
    ("unexpected_field",),
]
WELL_FORMED_DECISIONS = 20
ATTACKS = ["forged", "replayed", "other_partners_key", "unsigned", "garbled", "unknown_key_id"]


def dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def put(data: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for name in path[:-1]:
        data = data[name]
    data[path[-1]] = value


def generate(victim: ScenarioPartner, good: ScenarioPartner, count: int) -> list[Hostile]:
    """`count` drawn inputs, a fifth each: raw bytes, JSON values, mutated registrations, signature attacks and
    managers' decisions; `victim` is the partner hostile submissions claim to be, `good` one whose key they steal."""
    out: list[Hostile] = []

    def raw_submission(value: bytes) -> None:
        h = signed(victim.key, value, victim.partner_id)
        h.kind = "raw bytes" if not value.startswith((b"{", b"[", b'"')) else "json value"
        out.append(h)

    def mutated(path: tuple[str, ...], value: Any) -> None:
        data = registration_for(victim.partner_id).model_dump(mode="json")
        put(data, path, value)
        h = signed(victim.key, dumps(data), victim.partner_id)
        h.kind = "mutated registration"
        out.append(h)

    def attack(kind: str) -> None:
        claimed = victim.partner_id if kind in ("forged", "other_partners_key", "unsigned") else good.partner_id
        value = registration_for(claimed).model_dump_json().encode()
        signature = None
        key = {"forged": SigningKey.generate(victim.key.key_id), "other_partners_key": good.key}.get(kind, good.key)
        if kind == "replayed":  # the good partner's valid signature, over bytes it signed once, on other bytes
            signature = good.key.sign(registration_for(claimed).model_dump_json().encode())
        elif kind == "garbled":
            signature = "A" * 86
        elif kind == "unknown_key_id":
            key = SigningKey.generate("k-none")
        h = signed(key, value, claimed, signature=signature)
        if kind == "unsigned":
            h.headers = [(n, v) for n, v in h.headers if n not in ("ce_keyid", "ce_signature")]
        h.kind = f"signature: {kind}"
        out.append(h)

    def decision(topic: Topic, type: str, data: dict[str, Any]) -> None:
        body = dumps(data)
        headers, event_id = envelope(type, "dealreg/managers", body)
        out.append(Hostile(f"decision: {topic.name}", topic, str(uuid.uuid4()).encode(), body, headers, event_id))

    # each decision that parses is answered with a mail to the managers' desk: a few prove it, the rest break
    well_formed = [0]

    @settings(
        max_examples=count, database=None, derandomize=True, suppress_health_check=list(HealthCheck), deadline=None
    )
    @given(
        which=st.integers(0, 4),
        raw=st.binary(max_size=300),
        value=json_values,
        path=st.sampled_from(FIELDS),
        kind=st.sampled_from(ATTACKS),
        mutate=st.booleans(),
        field=st.sampled_from(["decision", "decision_id", "registration_id", "extend_days", "manager_id", "x"]),
    )
    def draw(which: int, raw: bytes, value: Any, path: tuple[str, ...], kind: str, mutate: bool, field: str) -> None:
        if which == 0:
            raw_submission(raw)
        elif which == 1:
            raw_submission(dumps(value))
        elif which == 2:
            mutated(path, value)
        elif which == 3:
            attack(kind)
        else:  # unknown subjects (never a real one: the good records must stay untouched), maybe mutated
            rid, did = str(uuid.uuid4()), str(uuid.uuid4())
            registration = {"decision_id": did, "registration_id": rid, "decision": "approve", "manager_id": "m"}
            partner = {"decision_id": did, "partner_id": f"p-{rid[:8]}", "decision": "suspend", "manager_id": "m"}
            changes: dict[str, Any] = {}
            if mutate or well_formed[0] >= WELL_FORMED_DECISIONS:
                changes = {"decision": value, field: value}  # no literal the contract allows: dead-lettered
            else:
                well_formed[0] += 1
            if raw[:1] < b"\x80":
                decision(REGISTRATION_DECISIONS, "registration.decided", registration | changes)
            else:
                decision(PARTNER_DECISIONS, "partner.decided", partner | changes)

    draw()
    return out


def nasties(victim: ScenarioPartner) -> list[Hostile]:
    """The hand-written ones the issue names, each signed by the victim so only its content is hostile."""
    rid = str(uuid.uuid4())
    base = registration_for(victim.partner_id).model_dump_json()
    values = {
        "invalid utf-8": b"\xff\xfe{\xc3\x28",
        "invalid utf-8 in a string": base.replace('"Customer ', '"\xc3\x28 ').encode("latin-1", "replace"),
        "NUL bytes": base.replace("Analytics rollout", "Analytics\\u0000\\u0000").encode(),
        "raw NUL byte": base.encode().replace(b"Analytics", b"Anal\x00tics"),
        "2 MB string": base.replace("Analytics rollout", "A" * 2_000_000).encode(),
        "10,000-level nesting": b'{"registration_id": "'
        + rid.encode()
        + b'", "x": '
        + b"[" * 10_000
        + b"]" * 10_000
        + b"}",
        "10,000-level object nesting": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        "duplicate keys": base.replace("{", '{"registration_id": "' + rid + '", ', 1).encode(),
        "duplicate partner_id": base.replace("{", '{"partner_id": "p-someone-else", ', 1).encode(),
        "empty": b"",
    }
    out = []
    for kind, value in values.items():
        h = signed(victim.key, value, victim.partner_id)
        h.kind = kind
        out.append(h)
    return out
