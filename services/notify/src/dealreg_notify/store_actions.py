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


async def set_state(conn: Conn, *, kind: str, record_id: str, state: str) -> None:
    await conn.execute(
        "insert into record_states (record_id, kind, state) values ($1, $2, $3) "
        "on conflict (record_id) do update set state = excluded.state, updated_at = now()",
        record_id,
        kind,
        state,
    )


async def get_state(conn: Conn, record_id: str) -> str | None:
    state: str | None = await conn.fetchval("select state from record_states where record_id = $1", record_id)
    return state


async def token_used(conn: Conn, token_id: str) -> bool:
    return bool(await conn.fetchval("select true from action_tokens where token_id = $1", token_id))
