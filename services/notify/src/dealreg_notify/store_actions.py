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
    await set_states(conn, kind=kind, states=[(record_id, state)])


# the states a list of (record, state) gives, each record its last (an upsert touches a row once)
SET_STATES_SQL = (
    "insert into record_states (record_id, kind, state) select r, $1, s from unnest($2::text[], $3::text[]) "
    "as n(r, s) on conflict (record_id) do update set state = excluded.state, updated_at = now()"
)


def states_args(kind: str, states: list[tuple[str, str]]) -> tuple[str, list[str], list[str]]:
    """`SET_STATES_SQL`'s arguments ($1 to $3): each record with the last state the list gives it."""
    last = dict(states)
    return kind, list(last), list(last.values())


async def set_states(conn: Conn, *, kind: str, states: list[tuple[str, str]]) -> None:
    """Each record takes the last state the list gives it (one statement)."""
    if states:
        await conn.execute(SET_STATES_SQL, *states_args(kind, states))


async def get_state(conn: Conn, record_id: str) -> str | None:
    state: str | None = await conn.fetchval("select state from record_states where record_id = $1", record_id)
    return state


async def token_used(conn: Conn, token_id: str) -> bool:
    return bool(await conn.fetchval("select true from action_tokens where token_id = $1", token_id))
