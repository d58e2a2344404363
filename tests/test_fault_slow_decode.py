"""MINDBENCH_FAULT=slow_decode[:FRACTION]: a slowdown of known size inside the decode loop, the
effect the speed gate's power is measured against (benchmarks/gate_power.py). It must scale as
asked: each decode step takes 1 + FRACTION times its own work."""

from __future__ import annotations

import time

import pytest

from mindbench.runtimes.base import end_step, slow_decode_fault, slow_decode_fraction
from mindbench.sweep.worker import fault_for


def test_the_fraction_is_parsed_per_precision(monkeypatch):
    monkeypatch.setenv("MINDBENCH_FAULT", "slow_decode:0.05@int4")
    assert slow_decode_fault("int4") == 0.05 and slow_decode_fault("fp32") == 0.0
    monkeypatch.setenv("MINDBENCH_FAULT", "slow_decode")
    assert slow_decode_fault("fp32") == 1.0  # bare: half speed, as before
    monkeypatch.setenv("MINDBENCH_FAULT", "corrupt_prompt,slow_decode:0.2")
    assert slow_decode_fault(None) == 0.2
    monkeypatch.delenv("MINDBENCH_FAULT")
    assert slow_decode_fault("fp32") == 0.0


@pytest.mark.parametrize("bad", ["abc", "0", "-0.1", "nan", "11"])
def test_a_bad_fraction_is_one_clear_error_before_any_model_loads(monkeypatch, bad):
    with pytest.raises(ValueError, match="fraction must be a number"):
        slow_decode_fraction(bad)
    monkeypatch.setenv("MINDBENCH_FAULT", f"slow_decode:{bad}@int4")
    with pytest.raises(ValueError, match="slow_decode"):
        fault_for({"precision": "fp32"})  # checked even for another precision


def test_the_worker_leaves_the_slowdown_to_the_engine(monkeypatch):
    monkeypatch.setenv("MINDBENCH_FAULT", "slow_decode:0.05")
    assert fault_for({"precision": "fp32"}) is None  # not a worker fault (oom, segfault, hang)
    monkeypatch.setenv("MINDBENCH_FAULT", "slow_decode:0.05,oom@fp32")
    assert fault_for({"precision": "fp32"}) == "oom"


class _Clock:
    """A perf_counter that advances by `tick` per read: end_step's arithmetic without the host."""

    def __init__(self, tick=1e-6):
        self.t, self.tick = 100.0, tick

    def perf_counter(self):
        self.t += self.tick
        return self.t


@pytest.mark.parametrize("frac", [0.03, 0.05, 0.2, 1.0])
def test_each_step_takes_one_plus_the_fraction_of_its_own_time(monkeypatch, frac):
    import mindbench.runtimes.base as base

    clock = _Clock()
    monkeypatch.setattr(base, "time", clock)
    for work in (0.002, 0.03, 0.5):  # short and long steps: the wait scales with each
        started = clock.perf_counter()
        clock.t += work
        steps: list = []
        end_step(started, steps, frac)
        assert steps[0] == pytest.approx(work * (1 + frac), abs=1e-5)
    steps = []
    end_step(clock.perf_counter() - 0.01, steps, 0.0)
    assert steps[0] == pytest.approx(0.01, abs=3e-6)  # no fault: the step as it was


def test_on_the_real_clock_the_wait_is_never_short_of_the_fraction():
    # the wait spins on the wall clock, so it can overshoot (a preempted thread) but never fall short
    for frac in (0.05, 1.0):
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.005:
            pass
        work = time.perf_counter() - t0
        steps: list = []
        end_step(t0, steps, frac)
        assert steps[0] >= work * (1 + frac)


@pytest.mark.slow
def test_the_real_decode_loop_waits_the_fraction_of_each_step(monkeypatch):
    """On the packaged model: under slow_decode:F every decode step of the transformers engine's
    timed loop is stretched to 1 + F times its own work, and the decode time it reports includes
    the waits. (How precisely the wait scales is the fake-clock test above; here the wall clock of
    a shared host can only stretch a step further, never shorten it.)"""
    import mindbench.runtimes.transformers.engine as hf
    from mindbench.models.catalog import DEFAULT_MODEL
    from mindbench.runtimes import get_engine

    seen = []

    def spy(started, steps, slow):
        work = time.perf_counter() - started
        end_step(started, steps, slow)
        seen.append((work, steps[-1], slow))

    monkeypatch.setattr(hf, "end_step", spy)
    e = get_engine(DEFAULT_MODEL, "fp32", device="cpu")
    try:
        for frac in (0.05, 1.0):
            monkeypatch.setenv("MINDBENCH_FAULT", f"slow_decode:{frac}@fp32")
            seen.clear()
            t = e.timed_run(16, 9)
            assert len(seen) == 8 and all(s == frac for _, _, s in seen)  # every step of the loop
            assert all(total >= work * (1 + frac) for work, total, _ in seen)
            assert t.decode_s >= sum(total for _, total, _ in seen)
        monkeypatch.setenv("MINDBENCH_FAULT", "slow_decode:0.05@int4")  # another precision: off
        seen.clear()
        e.timed_run(16, 5)
        assert [s for _, _, s in seen] == [0.0] * 4
    finally:
        e.unload()
