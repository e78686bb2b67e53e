"""A started service keeps its start-up heap out of the cyclic collector's walks, and still collects cycles.

Each check runs in a fresh interpreter: freezing the test process's own heap would change every test after it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from dealreg_shared.runtime import GC_THRESHOLDS

# what a service has made by the time it starts: the four services' modules imported
_STARTED = """
import gc, json, weakref
import dealreg_conflict.app, dealreg_intake.app, dealreg_notify.app, dealreg_vetting.app
from dealreg_shared.runtime import freeze_startup_heap

before = len(gc.get_objects())
freeze_startup_heap()
after = len(gc.get_objects())

class Node:
    pass

# garbage only the collector can free (a cycle), made after start-up, then a service's ordinary allocations
a, b = Node(), Node()
a.peer, b.peer = b, a
alive = weakref.ref(a)
del a, b
kept = []
for _ in range({allocations}):
    kept.append([])
print(json.dumps({{"before": before, "after": after, "frozen": gc.get_freeze_count(),
                   "threshold": gc.get_threshold(), "cycle_collected": alive() is None}}))
"""


def _run(allocations: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _STARTED.format(allocations=allocations)],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_the_startup_heap_is_frozen_out_of_the_collectors_walks() -> None:
    result = _run(0)
    assert result["frozen"] >= 50_000  # modules, classes, pydantic's validators
    assert result["after"] < result["before"] / 10  # a full collection walks only this
    assert tuple(result["threshold"]) == GC_THRESHOLDS


def test_a_cycle_made_after_start_is_still_collected_without_being_asked() -> None:
    result = _run(GC_THRESHOLDS[0] + 1_000)
    assert result["cycle_collected"] is True


def test_a_cycle_waits_for_the_young_threshold() -> None:
    # the other half of the bargain: below the threshold, no collection runs (what saves the CPU)
    result = _run(GC_THRESHOLDS[0] // 2)
    assert result["cycle_collected"] is False
