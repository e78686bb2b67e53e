"""The benchmark's CPU accounting: a tree counts the CPU of a process's children, a plain process only its own."""

from __future__ import annotations

import os
import subprocess
import sys

from dealreg_devstack.bench.measure import CpuClock, cpu_figures

BURN = "import time\nwhile time.process_time() < 0.5: pass\n"  # 0.5 s of CPU, however busy the machine is
# /proc counts CPU in clock ticks, sampled: a process's total can read a few ticks off what it used
COUNTED = 0.4


def test_a_tree_counts_a_finished_childs_cpu_and_a_plain_process_does_not() -> None:
    me = os.getpid()
    clock = CpuClock({"alone": me}, trees={"tree": me})
    before = clock.read()
    subprocess.run([sys.executable, "-c", BURN], check=True)  # waited for: its time is now in our children's
    after = clock.read()
    figures = cpu_figures(before, after, work=4)
    tree, alone = figures["tree"]["ms_per_registration"] * 4, figures["alone"]["ms_per_registration"] * 4
    assert tree - alone >= COUNTED * 1000  # the child's
    assert alone < COUNTED * 1000
    assert figures["machine"]["ms_per_registration"] * 4 >= COUNTED * 1000


def test_a_live_childs_cpu_counts_in_its_tree() -> None:
    clock = CpuClock({"alone": os.getpid()}, trees={"tree": os.getpid()})
    start = clock.read()[1]
    # the child burns its CPU, says so, then waits for its stdin to close: alive, not yet reaped, while we look
    script = BURN + "import sys\nprint('burnt', flush=True)\nsys.stdin.read()\n"
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"burnt\n"  # returns once the child has used its CPU
        now = clock.read()[1]
        assert (now["tree"] - start["tree"]) - (now["alone"] - start["alone"]) >= COUNTED
        assert child.poll() is None
    finally:
        child.communicate(b"")


def test_processes_that_are_gone_are_left_out() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert set(CpuClock({"gone": gone.pid}).read()[1]) == {"machine", "stolen"}
