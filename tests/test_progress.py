"""The sweep's live display (mindbench/sweep/progress.py), driven by a fake clock and fake worker
events: it redraws without events, shows stage, items, tok/s and both ETAs, and leaves one
summary line per finished cell."""

import io
import json
import os
import re
import subprocess
import sys
import time

import pytest

from mindbench.sweep.progress import Progress, clock_text, timings_text
from tests.records import record

CELL = {"cell": "k1", "model": "smollm2-135m-instruct", "runtime": "transformers", "precision": "fp32"}


def _done(**kw):
    """The finished record of CELL (what the executor hands the display)."""
    return record(cell="k1", model=CELL["model"], runtime=CELL["runtime"], precision=CELL["precision"], **kw)


CELL2 = {"cell": "k2", "model": "smollm2-135m-instruct", "runtime": "transformers", "precision": "int4"}


class FakeClock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


class Tty(io.StringIO):
    def isatty(self):
        return True


def _bars(clock, total=2):
    out = Tty()
    return Progress(total, enabled=True, stream=out, clock=clock, timer=False), out


def test_clock_and_timings_text():
    assert (clock_text(7.4), clock_text(205), clock_text(3723), clock_text(None)) == ("0:07", "3:25", "1:02:03", "?")
    assert (
        timings_text({"load": 3.14, "speed": 20.0, "generation": 30.04, "total": 60})
        == "load 3.1 s, speed 20.0 s, generation 30.0 s"
    )
    assert timings_text(None) == ""  # a record from before the stage breakdown


def test_redraws_with_no_event_and_the_elapsed_time_moves():
    clock = FakeClock()
    p, out = _bars(clock)
    p.event(CELL, {"event": "phase", "phase": "fidelity"})
    before = p.redraws
    first = p.render()[0]
    clock.t += 7
    p.tick()  # the timer's call: no event arrived
    assert p.redraws == before + 1
    assert "elapsed 0:00" in first and "elapsed 0:07" in p.render()[0]
    assert "elapsed 0:07" in out.getvalue()  # and it reached the terminal
    p.close()


def test_stage_items_tok_s_and_etas_from_estimates_then_from_measured_rates():
    clock = FakeClock()
    p, out = _bars(clock)
    p.event(CELL, {"event": "phase", "phase": "load"})
    clock.t += 5
    # after load the worker sends its estimates: speed 30 s, code suite 120 s
    p.event(CELL, {"event": "plan", "eta_s": {"speed": 30.0, "suite code": 120.0}})
    p.event(CELL, {"event": "phase", "phase": "speed", "eta_s": 30.0})
    clock.t += 10
    f = p.fields(p.cells["k1"], clock())
    assert f["stage"] == "speed" and f["stage_eta_s"] == 20.0  # the estimate, less 10 s spent
    # sweep: 20 s of speed + 120 s of suite left in this cell, and one more cell of ~ this one's
    # projected total (15 s so far + 140 s)
    assert f["sweep_eta_s"] == 140.0 + 155.0
    p.event(CELL, {"event": "phase", "phase": "suite code"})
    clock.t += 20
    p.event(
        CELL,
        {
            "event": "progress",
            "suite": "code",
            "stage": "generate",
            "done": 10,
            "total": 40,
            "tokens": 640,
            "seconds": 20.0,
        },
    )
    line = p.render()[0]
    # measured now: 10 tasks in 20 s -> 30 left take 60 s, not the estimate's 100
    assert "[1/2] smollm2-135m-instruct transformers fp32: suite code generate 10/40" in line
    assert "32.0 tok/s" in line and "stage ETA 1:00" in line and "elapsed 0:35" in line
    p.tick()
    shown = out.getvalue()
    assert "suite code generate" in shown and "10/40" in shown and "32.0 tok/s" in shown and "stage ETA 1:00" in shown
    # the cell ends: one summary line with its stage breakdown; the next cell's ETA uses its time
    clock.t += 60
    p.finished(
        _done(
            duration_s=95.0, timings_s={"load": 5.0, "speed": 10.0, "generation": 78.0, "execution": 2.0, "total": 95.0}
        )
    )
    assert (
        "[1/2] smollm2-135m-instruct transformers fp32: ok in 1:35 (load 5.0 s, speed 10.0 s, "
        "generation 78.0 s, execution 2.0 s)" in out.getvalue()
    )
    p.event(CELL2, {"event": "phase", "phase": "load"})
    assert p.render()[0].startswith("[2/2] smollm2-135m-instruct transformers int4: load")
    p.close()


def test_speed_runs_show_their_decode_rate():
    clock = FakeClock()
    p, _ = _bars(clock, total=1)
    p.event(CELL, {"event": "phase", "phase": "speed", "eta_s": 40.0})
    clock.t += 12
    p.event(CELL, {"event": "progress", "stage": "speed", "done": 2, "total": 3, "tok_s": 14.9})
    line = p.render()[0]
    assert "speed 2/3" in line and "14.9 tok/s" in line and "stage ETA 0:06" in line
    p.close()


def test_off_a_terminal_one_plain_line_per_event_with_the_same_fields():
    clock = FakeClock()
    out = io.StringIO()
    p = Progress(2, stream=out, clock=clock)  # enabled=None and not a terminal: lines
    assert p.mode == "lines"
    p.event(CELL, {"event": "phase", "phase": "suite code", "eta_s": 50.0})
    clock.t += 8
    p.event(
        CELL,
        {
            "event": "progress",
            "suite": "code",
            "stage": "generate",
            "done": 8,
            "total": 10,
            "tokens": 640,
            "seconds": 32.0,
        },
    )
    p.event(
        CELL,
        {
            "event": "progress",
            "suite": "code",
            "stage": "generate",
            "done": 8,
            "total": 10,
            "tokens": 640,
            "seconds": 32.0,
        },
    )  # the same again: no new line
    p.finished(_done(duration_s=9.0, timings_s={"generation": 9.0}))
    lines = out.getvalue().splitlines()
    assert lines == [
        "[1/2] smollm2-135m-instruct transformers fp32: suite code, elapsed 0:00, stage ETA 0:50, sweep ETA 1:40",
        "[1/2] smollm2-135m-instruct transformers fp32: suite code generate 8/10, 20.0 tok/s, elapsed 0:08, "
        "stage ETA 0:02, sweep ETA 0:12",
        "[1/2] smollm2-135m-instruct transformers fp32: ok in 0:09 (generation 9.0 s)",
    ]
    assert "\r" not in out.getvalue()


def test_first_etas_come_from_the_estimator_before_the_worker_says_anything():
    from mindbench.sweep.harness import first_estimates

    cell = {
        **CELL,
        "device": "cpu",
        "prompt_tokens": 256,
        "new_tokens": 64,
        "repeats": 3,
        "fidelity": True,
        "suites": ["code:humaneval"],
        "limit": 40,
        "batch_size": 8,
    }
    plan = first_estimates(cell)
    assert set(plan) == {"bandwidth", "load", "speed", "fidelity", "suite code:humaneval"}
    assert all(v > 0 for v in plan.values())
    # bigger stages, longer estimates: twice the tasks, twice the suite's seconds
    assert first_estimates({**cell, "limit": 80})["suite code:humaneval"] == pytest.approx(
        2 * plan["suite code:humaneval"], rel=0.01
    )
    assert first_estimates({**cell, "model": "no-such/model-xyz"}) == {}  # nothing to estimate from
    clock = FakeClock()
    p, _ = _bars(clock, total=2)
    p.event(cell, {"event": "plan", "eta_s": plan})
    p.event(cell, {"event": "phase", "phase": "bandwidth"})
    f = p.fields(p.cells["k1"], clock())
    assert f["stage_eta_s"] == plan["bandwidth"]
    assert f["sweep_eta_s"] == pytest.approx(2 * sum(plan.values()))  # this cell, and one more like it
    p.close()


def test_the_timer_redraws_at_least_once_a_second_on_its_own():
    p = Progress(1, enabled=True, stream=Tty(), interval_s=0.1)
    p.event(CELL, {"event": "phase", "phase": "load"})
    start = p.redraws
    # No event arrives meanwhile. Waited for, not timed: a loaded CI host may hold the timer thread
    # back for a while, and the claim here is that it redraws on its own at all.
    deadline = time.monotonic() + 30
    while p.redraws - start < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    n = p.redraws - start
    p.close()
    assert n >= 5, n


@pytest.mark.slow
def test_a_real_run_records_its_stage_breakdown_and_prints_it(tmp_path):
    """The packaged model through `mindbench run`: the record's timings_s names every stage it
    ran, they add up to no more than the cell's time, and the summary prints them."""
    out = tmp_path / "runs.jsonl"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "mindbench.cli",
            "run",
            "--suite",
            "code:easy",
            "--limit",
            "2",
            "--precisions",
            "fp32",
            "--device",
            "cpu",
            "--repeats",
            "1",
            "--prompt-tokens",
            "16",
            "--new-tokens",
            "4",
            "--fidelity-tokens",
            "64",
            "--threads",
            "1",
            "--speed-max-s",
            "5",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert res.returncode == 0, res.stderr
    [rec] = json.loads(res.stdout)
    t = rec["timings_s"]
    assert rec["status"] == "ok" and {"load", "speed", "fidelity", "generation", "execution", "total"} <= set(t)
    assert all(v >= 0 for v in t.values()) and t["load"] > 0 and t["speed"] > 0 and t["generation"] > 0
    assert sum(v for k, v in t.items() if k != "total") <= t["total"] + 0.05 and t["total"] == rec["duration_s"]
    assert "time per stage, smollm2-135m-instruct transformers fp32: " in res.stderr
    # off a terminal: one plain line per event, with the fields, then the cell's summary line
    assert "[1/1] smollm2-135m-instruct transformers fp32: speed 1/" in res.stderr
    assert re.search(r"suite code:easy generate \d/2, [\d.]+ tok/s, elapsed \d+:\d\d, stage ETA", res.stderr)
    assert "[1/1] smollm2-135m-instruct transformers fp32: ok in " in res.stderr
