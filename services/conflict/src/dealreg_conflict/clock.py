"""The one clock of the service: every decision, deadline and sweep asks it, so tests can move time."""

from __future__ import annotations

from datetime import datetime, timedelta

from dealreg_shared.db import Conn
from dealreg_shared.envelope import utcnow


class Clock:
    """The system's UTC time; with `controllable`, plus the offset a test wrote to `clock_offset`.

    The offset lives in the database so that a test moves time for every replica at once, across the
    process boundary, without restarting anything.
    """

    def __init__(self, *, controllable: bool = False) -> None:
        self.controllable = controllable

    async def now(self, conn: Conn) -> datetime:
        if not self.controllable:
            return utcnow()
        offset = await conn.fetchval("select offset_s from clock_offset")
        return utcnow() + timedelta(seconds=float(offset or 0))
