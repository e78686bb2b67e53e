"""A dev tool's helper processes (services, relay hops) stop when the tool stops, however it stops."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from dealreg_devstack.procs import pid_alive

# a tool that starts a helper the way the demo, the benchmark and the tests start a service, then waits
TOOL = """
import sys
from dealreg_devstack.launcher import child_process
helper = child_process([sys.executable, "-c", "import time; time.sleep(600)"])
print(helper.pid, flush=True)
helper.wait()
"""


def _poll(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux's")
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["terminated", "killed"])
def test_a_helper_stops_when_its_tool_dies(how: signal.Signals) -> None:
    tool = subprocess.Popen([sys.executable, "-c", TOOL], stdout=subprocess.PIPE, text=True)
    try:
        assert tool.stdout is not None
        helper = int(tool.stdout.readline())
        assert pid_alive(helper)

        tool.send_signal(how)
        tool.wait(timeout=10)

        assert _poll(lambda: not pid_alive(helper), timeout_s=10), f"helper {helper} outlived its tool"
    finally:
        tool.kill()
        tool.wait()
