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


def test_a_group_keeps_the_cpu_of_a_member_that_has_ended_and_counts_a_new_one_whole() -> None:
    clock = CpuClock({})
    script = BURN + "import sys\nprint('burnt', flush=True)\nsys.stdin.read()\n"
    first = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert first.stdout is not None
    assert first.stdout.readline() == b"burnt\n"
    clock.groups = {"connections": [first.pid]}
    seen = clock.read()[1]["connections"]
    assert seen >= COUNTED
    first.communicate(b"")  # it ends (a connection closed): what it used stays counted
    assert clock.read()[1]["connections"] >= seen
    second = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert second.stdout is not None
        assert second.stdout.readline() == b"burnt\n"
        clock.groups = {"connections": [first.pid, second.pid]}  # a new connection: all its time since it began
        assert clock.read()[1]["connections"] >= seen + COUNTED
    finally:
        second.communicate(b"")


def test_a_group_none_of_whose_processes_can_be_seen_is_left_out_not_counted_as_idle() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    clock = CpuClock({})
    clock.groups = {"elsewhere": [gone.pid]}
    assert "elsewhere" not in clock.read()[1]
    assert "elsewhere" not in cpu_figures(clock.read(), clock.read(), work=1)


def test_a_group_first_seen_in_the_second_reading_is_counted_from_zero() -> None:
    before = (0.0, {"machine": 1.0})
    after = (1.0, {"machine": 2.0, "database: intake": 0.25})
    assert cpu_figures(before, after, work=1)["database: intake"] == {"core_share": 0.25, "ms_per_registration": 250.0}
