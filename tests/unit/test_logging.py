"""Service logs: one JSON object per line, each line handed to the stream in one write and flushed."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator

import pytest
import structlog

from dealreg_shared.logging import configure_logging


class RecordingStream:
    """Stands for stderr when it is a file or a pipe (not a terminal): what was written, call by call."""

    def __init__(self) -> None:
        self.writes: list[str] = []
        self.flushed_after: list[int] = []

    def write(self, text: str) -> int:
        self.writes.append(text)
        return len(text)

    def flush(self) -> None:
        self.flushed_after.append(len(self.writes))

    def isatty(self) -> bool:
        return False


@pytest.fixture
def logging_restored() -> Iterator[None]:
    """configure_logging sets structlog and the stdlib's root logger for the process: both as they were after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)  # through setLevel: it clears the loggers' cached level checks


@pytest.mark.usefixtures("logging_restored")
def test_each_line_is_one_write_of_a_whole_json_line_then_a_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    # set here, in the test's own phase: pytest puts its capturing stream back between a fixture and the test
    stderr = RecordingStream()
    monkeypatch.setattr(sys, "stderr", stderr)
    configure_logging(service="notify")
    log = structlog.get_logger("dealreg_notify.delivery")
    log.info("notification_sent", notification_id=7, channel="email")
    log.warning("delivery_failed", notification_id=8)

    assert len(stderr.writes) == 2  # PrintLogger wrote the line and its newline apart: four system calls
    first, second = (json.loads(w) for w in stderr.writes)
    assert all(w.endswith("}\n") and w.count("\n") == 1 for w in stderr.writes)
    assert first["event"] == "notification_sent" and first["service"] == "notify" and first["level"] == "info"
    assert second["event"] == "delivery_failed" and second["level"] == "warning"
    assert stderr.flushed_after == [1, 2]  # nothing waits in a buffer if the process dies next
