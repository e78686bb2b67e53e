"""Notify's SQL for one-click decisions: consuming a token exactly once."""

from __future__ import annotations

import uuid

from dealreg_notify.actions import ActionToken
from dealreg_shared.db import Conn


async def consume_token(conn: Conn, token: ActionToken, decision_id: uuid.UUID) -> bool:
    """True the first time; a token already used (a second click, a replay, a race) changes nothing."""
    used = await conn.fetchval(
        "insert into action_tokens (token_id, recipient, kind, record_id, action, decision_id) "
        "values ($1, $2, $3, $4, $5, $6) on conflict (token_id) do nothing returning true",
        token.j,
        token.m,
        token.k,
        token.r,
        token.a,
        decision_id,
    )
    return bool(used)
