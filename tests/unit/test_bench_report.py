"""The benchmark's summary: what it says when a phase measured nothing, and that the warm-up is named as such."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, cast

import pytest

from dealreg_devstack.bench.__main__ import parse_args, recorded_arguments, report, runs_table
from dealreg_devstack.bench.measure import Run, hop_latencies_ms, publish, write_json
from dealreg_devstack.bench.workload import Submission


def figures(**overrides: Any) -> dict[str, Any]:
    f: dict[str, Any] = {
        "run": "abc123",
        "when": "2026-12-02T13:52:51+00:00",
        "args": {"warmup_seconds": 30.0},
        "warmup_per_s": 245.1,
        "database_tx_per_s": 1472.1,
        "database_batched_records_per_s": 10926.3,
        "relay_per_s": 3071.4,
        "pipeline_per_s": 284.4,
        "pipeline_vs_relay": 0.093,
        "settled_s": 55.0,
        "with_mail_per_s": 128.4,
        "fixed_rate_offered_per_s": 142.0,
        "fixed_rate_published": 1420,
        "fixed_rate_latency_ms": {"p50": 412.0, "p95": 764.0, "p99": 969.0, "max": 1200.0},
        "fixed_rate_unfinished": 0,
        "stages_full_speed": {},
        "outcomes_full_speed": {"approved": 87},
        "outcomes_fixed_rate": {"approved": 88},
        "peak_rss_mb": {"intake": 98.0},
    }
    return f | overrides


def test_the_summary_gives_the_latency_percentiles_and_names_the_warm_up_as_not_measured() -> None:
    text = report(figures())
    assert "412 / 764 / 969 ms" in text
    assert "warm-up, not measured (30 s at full speed)" in text
    assert "245.1 /s" in text


def test_a_fixed_rate_phase_left_without_registrations_is_reported_as_not_measured_not_as_zero_latency() -> None:
    text = report(figures(fixed_rate_published=0, fixed_rate_latency_ms={}))
    latency = next(line for line in text.splitlines() if line.startswith("latency at"))
    assert "not measured" in latency and "raise --registrations" in latency
    assert "0 / 0 / 0" not in text


def test_a_phase_whose_signed_registrations_ran_out_is_named_with_how_long_it_published() -> None:
    text = report(figures(ran_out={"fixed-rate": 19.4}))
    warning = next(line for line in text.splitlines() if "ran out" in line)
    assert "WARNING" in warning and "'fixed-rate'" in warning and "19 s" in warning
    assert "raise --registrations" in warning
    assert "ran out" not in report(figures())


async def test_the_publisher_notes_when_its_supply_ended_the_phase_early() -> None:
    run = Run("fixed-rate")
    sent: list[bytes] = []

    class Producer:
        async def send(self, topic: str, *, value: bytes, key: bytes, headers: list[tuple[str, bytes]]) -> Any:
            sent.append(value)
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            done.set_result(None)
            return done

        async def flush(self) -> None:
            return None

    supply = iter([Submission(f"r{i}", b"k", f"v{i}".encode(), [], "clear") for i in range(3)])
    await publish(cast(Any, Producer()), "t", supply, run, seconds=30, rate=1000, label="fixed-rate")
    assert sent == [b"v0", b"v1", b"v2"]
    assert run.ran_out_after_s is not None and run.ran_out_after_s < 30

    full = Run("full")
    await publish(cast(Any, Producer()), "t", iter([]), full, seconds=0, label="full")
    assert full.ran_out_after_s is None  # its time was up before it asked for one


def test_a_run_without_warm_up_has_no_warm_up_line() -> None:
    f = figures()
    del f["warmup_per_s"]
    assert "warm-up" not in report(f)


def test_the_summary_says_where_the_cpu_went_and_what_the_machine_allows_at_that_cost() -> None:
    shares = {"intake": 0.36, "broker": 0.18, "postgres": 0.3, "machine": 1.9, "stolen": 0.02}
    costs = {"intake": 1.2, "broker": 0.6, "postgres": 1.0, "machine": 6.25, "stolen": 0.1}
    text = report(
        figures(
            cpu_count=2,
            cpu_full_speed={k: {"core_share": v, "ms_per_registration": 0.0} for k, v in shares.items()},
            cpu_until_idle={k: {"core_share": 0.0, "ms_per_registration": v} for k, v in costs.items()},
            cpu_fixed_rate={k: {"core_share": 0.0, "ms_per_registration": 2 * v} for k, v in costs.items()},
        )
    )
    intake = next(line for line in text.splitlines() if line.strip().startswith("intake "))
    assert intake.split()[-3:] == ["36%", "1.20", "2.40"]
    machine = next(line for line in text.splitlines() if "the whole machine" in line)
    assert machine.split()[-3:] == ["190%", "6.25", "12.50"]
    assert "6.25 ms of CPU a registration (its mail included), 2 CPUs allow at most 320 registrations/s" in text


def test_without_cpu_figures_the_summary_has_no_cpu_section() -> None:
    assert "CPU" not in report(figures())


def test_the_figures_of_a_run_given_a_json_path_can_be_written(tmp_path: Path) -> None:
    # `--json PATH` made the run's arguments hold a Path, and writing the figures failed after the whole run
    path = tmp_path / "figures.json"
    args = parse_args(["--json", str(path), "--rate", "20"])

    write_json(path, figures(args=recorded_arguments(args)))

    written = json.loads(path.read_text())
    assert written["args"]["json"] == str(path)
    assert written["args"]["rate"] == 20.0


def test_the_summary_breaks_the_latency_down_by_stage_and_says_how_busy_the_machine_was_meanwhile() -> None:
    hops = {
        "intake": {"p50": 210.0, "p95": 380.0, "p99": 500.0, "max": 600.0},
        "vetting": {"p50": 90.0, "p95": 200.0, "p99": 260.0, "max": 300.0},
        "conflict": {"p50": 180.0, "p95": 320.0, "p99": 410.0, "max": 450.0},
    }
    text = report(
        figures(
            fixed_rate_hops_ms=hops,
            cpu_count=2,
            cpu_fixed_rate={"machine": {"core_share": 1.97, "ms_per_registration": 12.31}},
        )
    ).splitlines()
    lines = [line for line in text if "hop (to its output)" in line]
    assert [line.split()[3] for line in lines] == ["intake", "vetting", "conflict"]
    assert lines[0].endswith("210 / 380 / 500 ms") and lines[2].endswith("180 / 320 / 410 ms")
    [busy] = [line for line in text if "the machine meanwhile" in line]
    assert "98%" in busy and "12.31 ms" in busy


def test_a_hop_is_timed_from_the_point_before_it_for_the_registrations_seen_at_every_point() -> None:
    published = {"a": 0.0, "b": 1.0, "c": 2.0}
    received = {"a": 0.1, "b": 1.3, "c": 2.2}
    decided = {"a": 0.6, "b": 1.4}  # c was rejected before the decision: it is left out of every hop
    hops = hop_latencies_ms(published, ("intake", received), ("conflict", decided))
    assert hops["intake"]["max"] == pytest.approx(300.0)
    assert hops["intake"]["p50"] == pytest.approx(300.0)  # of a and b: 100 and 300 ms
    assert hops["conflict"]["max"] == pytest.approx(500.0) and hops["conflict"]["p50"] == pytest.approx(500.0)
    assert hop_latencies_ms(published, ("intake", {})) == {"intake": {}}


def test_the_fixed_rate_latency_is_given_for_each_few_seconds_of_publication_in_order() -> None:
    run = Run("fixed-rate", started=100.0)
    # 0-5 s: quick; 5-10 s: one slow registration among quick ones (a vacuum round, say); 10-15 s: none finished
    for n in range(100):
        run.published[f"a{n}"] = 100.0 + n * 0.04
        run.finished[f"a{n}"] = run.published[f"a{n}"] + 0.1
        run.published[f"b{n}"] = 105.0 + n * 0.04
        run.finished[f"b{n}"] = run.published[f"b{n}"] + (2.0 if n == 50 else 0.2)
    run.published["c"] = 111.0
    windows = run.latency_windows_ms(5.0)
    assert [(w["from_s"], w["n"]) for w in windows] == [(0.0, 100), (5.0, 100)]
    assert windows[0]["p99"] == pytest.approx(100.0) and windows[1]["max"] == pytest.approx(2000.0)
    assert windows[1]["p50"] == pytest.approx(200.0)
    line = next(x for x in report(figures(fixed_rate_latency_windows_ms=windows)).splitlines() if "of each" in x)
    assert line.strip() == "p99 of each 5 s, in order (ms): 100 2000"


def test_each_services_database_connections_are_named_and_a_phase_without_figures_shows_a_dash() -> None:
    text = report(
        figures(
            cpu_count=2,
            cpu_full_speed={
                "postgres": {"core_share": 0.4, "ms_per_registration": 0.0},
                "database: notify": {"core_share": 0.15, "ms_per_registration": 0.0},
            },
            cpu_until_idle={"database: notify": {"core_share": 0.0, "ms_per_registration": 0.31}},
        )
    )
    notify = next(line for line in text.splitlines() if "notify's connections" in line)
    assert notify.split()[-3:] == ["15%", "0.31", "-"]
    assert "database: notify" not in text


def test_several_runs_are_compared_side_by_side_with_each_figures_spread() -> None:
    runs = [
        figures(run="r1", pipeline_per_s=425.6, relay_per_s=3504.1, pipeline_vs_relay=0.121),
        figures(run="r2", pipeline_per_s=506.1, relay_per_s=4790.2, pipeline_vs_relay=0.106),
        figures(run="r3", fixed_rate_latency_ms={}),  # its fixed rate measured nothing
    ]
    runs[1]["fixed_rate_latency_ms"] = {"p50": 1.0, "p95": 2.0, "p99": 1615.0, "max": 1700.0}
    lines = runs_table(runs).splitlines()
    assert lines[0].startswith("3 runs in a row")
    r1, r2, r3 = (next(x for x in lines if x.startswith(name)) for name in ("r1", "r2", "r3"))
    assert "425.6/s" in r1 and "3504/s" in r1 and "12.1%" in r1 and "969 ms at 142/s" in r1
    assert "1615 ms at 142/s" in r2
    assert " - " in r3  # no latency, not a zero
    assert "  end to end (/s): 284.4 to 506.1" in lines
    assert "  p99 at the fixed rate (ms): 969.0 to 1615.0" in lines  # the run without one is left out


def test_runs_must_be_at_least_one() -> None:
    assert parse_args(["--runs", "3"]).runs == 3
    with pytest.raises(SystemExit):
        parse_args(["--runs", "0"])
