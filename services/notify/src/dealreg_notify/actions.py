"""One-click decisions, free of I/O: signed action tokens, and which actions a manager's notification offers."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from dealreg_notify.domain import Notification
from dealreg_notify.templates import render
from dealreg_shared.contracts import Status

Kind = Literal["registration", "application"]
Action = Literal["approve", "reject", "extend"]
EXTEND_DAYS = 30  # what an "extend" link grants; a different length is a CLI decision


class ActionToken(BaseModel, frozen=True):
    """What a link may do: one action (`a`) on one record (`r`, of kind `k`) by one manager (`m`), until `x`."""

    j: str  # the token's unique id: consumed once in notify's schema
    m: str  # the recipient, "manager:<id>"
    k: Kind
    r: str
    a: Action
    x: int  # expiry, unix seconds

    @property
    def manager_id(self) -> str:
        return self.m.split(":", 1)[1] if ":" in self.m else self.m


class TokenError(Exception):
    """Why a token is refused: `code` is shown on the page and logged."""

    def __init__(self, code: Literal["malformed", "bad_signature", "expired"]) -> None:
        super().__init__(code)
        self.code = code


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, body: str) -> str:
    return _b64(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest())


def sign(token: ActionToken, secret: str) -> str:
    """`<payload>.<signature>`, both base64url: compact JSON signed with HMAC-SHA256."""
    body = _b64(json.dumps(token.model_dump(), separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(secret, body)}"


def verify(text: str, secret: str, *, now: float) -> ActionToken:
    """The token if its signature is the secret's and it has not expired; otherwise a TokenError."""
    body, dot, signature = text.partition(".")
    if not dot or not body or not signature:
        raise TokenError("malformed")
    # compare the signature first: nothing of an unsigned payload is parsed
    if not hmac.compare_digest(_mac(secret, body).encode(), signature.encode()):
        raise TokenError("bad_signature")
    try:
        token = ActionToken.model_validate(json.loads(_unb64(body)))
    except (ValueError, binascii.Error, ValidationError) as exc:
        raise TokenError("malformed") from exc
    if token.x <= now:
        raise TokenError("expired")
    return token


# the states in which each action still makes sense; anything else means the record has moved on
OPEN_STATES: dict[tuple[Kind, Action], set[str]] = {
    ("registration", "approve"): {Status.UNDER_REVIEW.value},
    ("registration", "reject"): {Status.UNDER_REVIEW.value},
    ("registration", "extend"): {Status.APPROVED.value, Status.EXPIRING.value},
    ("application", "approve"): {"vetted"},
    ("application", "reject"): {"vetted"},
}


def still_open(token: ActionToken, state: str | None) -> bool:
    """Whether the link's action fits the record's latest state notify has seen.

    A record notify has not heard of yet passes: the owning service validates every decision again and answers a
    stale one with decision.refused, which notify tells the managers about.
    """
    return state is None or state in OPEN_STATES.get((token.k, token.a), set())


@dataclass(frozen=True)
class Offer:
    """One link in a notification: what it is called, and what its token allows."""

    label: str
    kind: Kind
    record_id: str
    action: Action


def offers_for(payload: dict[str, Any]) -> list[Offer]:
    """The decisions a manager's notification asks for, from the payload notify recorded with it."""
    kind = payload.get("type")
    if kind == "partner.application.vetted":
        app_id = str(payload["application_id"])
        return [
            Offer("Approve the application", "application", app_id, "approve"),
            Offer("Reject the application", "application", app_id, "reject"),
        ]
    if kind != "registration.status-changed" or "manager_detail" not in payload:
        return []  # partners' notifications carry their own payload: never a link
    rid = str(payload["registration_id"])
    detail = payload.get("manager_detail") or {}
    escalated = payload.get("reason_code") == "review_overdue" or bool(
        detail.get("escalated") or detail.get("escalation")
    )
    if payload.get("status") == Status.UNDER_REVIEW.value or escalated:
        offers = [Offer("Approve this registration", "registration", rid, "approve")]
        competing = [c for c in detail.get("competing", []) if isinstance(c, dict)]
        if not competing and detail.get("competing_registration_id"):
            competing = [{"registration_id": detail["competing_registration_id"]}]
        # in a conflict, approving a side is picking it as the winner
        for c in competing:
            if c.get("registration_id"):
                other = str(c["registration_id"])
                offers.append(Offer(f"Pick competing registration {other}", "registration", other, "approve"))
        return [*offers, Offer("Reject this registration", "registration", rid, "reject")]
    if payload.get("status") == Status.EXPIRING.value:
        return [Offer(f"Extend the protection by {EXTEND_DAYS} days", "registration", rid, "extend")]
    return []


def with_links(notification: Notification, links: list[tuple[str, str]]) -> Notification:
    """The notification with its one-click links (label, url) added to the text and, before its end, the HTML."""
    if not links:
        return notification
    text_block, html_block = render("action_links", links=links)
    html = notification.html
    if html:
        html = html.replace("</body>", html_block + "</body>", 1) if "</body>" in html else html + html_block
    return Notification(
        notification.recipient,
        notification.channel,
        notification.address,
        notification.subject,
        notification.text + text_block,
        notification.payload,
        html,
        notification.digest,
    )


def link_notifications(
    items: list[Notification], *, base_url: str, secret: str, ttl_s: float, now: float, new_id: Callable[[], str]
) -> list[Notification]:
    """Each manager's notification with links of its own: a token names its recipient, so links are not shared."""
    out: list[Notification] = []
    for n in items:
        offers = offers_for(n.payload) if n.recipient.startswith("manager:") else []
        links = [
            (o.label, f"{base_url.rstrip('/')}/actions/{sign(token, secret)}")
            for o in offers
            for token in [
                ActionToken(j=new_id(), m=n.recipient, k=o.kind, r=o.record_id, a=o.action, x=int(now + ttl_s))
            ]
        ]
        out.append(with_links(n, links))
    return out
