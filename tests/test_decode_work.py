"""scripts/decode_work.py: Python-level calls per decoded token, a count that load cannot move,
gated exactly (any rise is more work)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SPEC = importlib.util.spec_from_file_location(
    "decode_work", Path(__file__).resolve().parent.parent / "scripts" / "decode_work.py"
)
work = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(work)


def _step():
    return sum(range(3))  # one Python call and one C call (sum) per step; range is a type call


class _Engine:
    """timed_run's shape: set-up work once, then `extra` + 1 Python calls per decoded token."""

    def __init__(self, extra=0):
        self.extra = extra

    def timed_run(self, prompt_tokens, new_tokens):
        for _ in range(prompt_tokens):  # prefill and set-up: cancels out in the difference
            _step()
        for _ in range(new_tokens - 1):
            _step()
            for _ in range(self.extra):
                _step()


def test_calls_per_token_are_exact_and_cancel_the_setup():
    a = work.per_token(_Engine())
    assert a == work.per_token(_Engine())  # the same on every run
    b = work.per_token(_Engine(extra=1))
    assert b["call"] == pytest.approx(2 * a["call"])  # one more call of _step per token, exactly
    assert a["call"] == 1.0


def test_compare_flags_any_rise_and_passes_equal_or_less():
    a = {"m/t/fp32/cpu": {"call": 4110.0, "c_call": 3099.0}}
    same = {"m/t/fp32/cpu": {"call": 4110.0, "c_call": 3099.0}}
    more = {"m/t/fp32/cpu": {"call": 4111.0, "c_call": 3099.0}}
    less = {"m/t/fp32/cpu": {"call": 4000.0, "c_call": 3000.0}}
    assert work.compare(a, same, 0.0)[1] == 0
    lines, rc = work.compare(a, more, 0.0)
    assert rc == 1 and any("MORE WORK" in line and "call" in line for line in lines)
    assert work.compare(a, more, 0.001)[1] == 0  # a stated tolerance can allow it
    assert work.compare(a, less, 0.0)[1] == 0
    assert work.compare(a, {"other": same["m/t/fp32/cpu"]}, 0.0)[1] == 2


@pytest.mark.slow
def test_the_packaged_model_makes_the_same_calls_per_token_twice():
    from mindbench.models.catalog import DEFAULT_MODEL
    from mindbench.runtimes import get_engine

    e = get_engine(DEFAULT_MODEL, "fp32", device="cpu")
    try:
        first, second = work.per_token(e), work.per_token(e)
    finally:
        e.unload()
    assert first == second and first["call"] > 100  # real Python work per token, counted exactly
