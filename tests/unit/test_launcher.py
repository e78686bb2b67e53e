"""A dev tool's helper processes (services, relay hops) stop when the tool stops, however it stops."""

from __future__ import annotations

import asyncio
import signal
import sys

import pytest

from dealreg_devstack.procs import pid_alive, wait_until

# a tool that starts a helper the way the demo, the benchmark and the tests start a service (the helper waits
# for a signal, as a service does), then waits for it
TOOL = """
import subprocess, sys
from dealreg_devstack.launcher import child_process
helper = child_process([sys.executable, "-c", "import signal; signal.pause()"], stdout=subprocess.DEVNULL)
print(helper.pid, flush=True)
helper.wait()
"""


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux's")
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["terminated", "killed"])
async def test_a_helper_stops_when_its_tool_dies(how: signal.Signals) -> None:
    tool = await asyncio.create_subprocess_exec(sys.executable, "-c", TOOL, stdout=asyncio.subprocess.PIPE)
    try:
        assert tool.stdout is not None
        helper = int(await tool.stdout.readline())
        assert pid_alive(helper)

        tool.send_signal(how)
        await asyncio.wait_for(tool.wait(), timeout=10)

        async def helper_gone() -> bool:
            return not pid_alive(helper)

        await wait_until(helper_gone, timeout_s=10, what=f"helper {helper} outlived its tool")
    finally:
        if tool.returncode is None:
            tool.kill()
            await tool.wait()
