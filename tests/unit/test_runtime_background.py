"""A background worker that fails is started anew, and its failure is logged, never lost silently."""

from __future__ import annotations

import structlog

from dealreg_shared.runtime import _supervised


async def test_a_failing_background_task_is_logged_and_started_anew() -> None:
    starts: list[int] = []

    async def work() -> None:
        starts.append(len(starts))
        if len(starts) == 1:
            raise RuntimeError("the database went away in an unexpected way")

    with structlog.testing.capture_logs() as logs:
        await _supervised("delivery", work)
    assert starts == [0, 1]  # failed once, ran again, then ended normally
    [failed] = [e for e in logs if e["event"] == "background_task_failed"]
    assert failed["task"] == "delivery" and failed["log_level"] == "error"
