"""scripts/ci_gate.sh's A/B speed step: scripts/ab_interleave.py times the baseline's tree and HEAD
repeat by repeat in two live processes, looks at the pairs a few times and stops once compare --ab
can decide, at its most pairs, or when its time budget is spent. The engines are stood in for
(each side's tree is a fake `mindbench` package whose timed_run returns decode speeds of a known
shift and spread), so this checks the script and the driver's loop, not a model: stop at the first
look on a clear regression or a clear pass, run to the most pairs when the pairs cannot tell and say
NOT DECIDED, stop when the budget is spent, and refuse a side that imports the wrong package. The
real model through the same driver: tests/test_ab_interleave.py."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FAKE_ENGINE = r"""
import math, os, random
from types import SimpleNamespace

SIDE = os.path.basename(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
# which A/B run of the gate this process serves (0: the first; 1: the confirmation's fresh pair)
with open(os.path.join(os.environ["FAKE_TREES"], SIDE + ".runs"), "a+") as _f:
    _f.seek(0)
    RUN = len(_f.read())
    _f.write("x")
AGAIN = RUN > 0


class _Engine:
    runtime = "transformers"

    def __init__(self, precision):
        self.rng = random.Random(f"{SIDE}{precision}{os.environ['FAKE_SEED']}{RUN}")

    def timed_run(self, prompt_tokens, new_tokens):
        slow_now = not AGAIN or os.environ.get("FAKE_SLOW_AGAIN", "1") == "1"
        slow = float(os.environ["FAKE_SLOW"]) if SIDE == "b" and slow_now else 0.0
        cv = float(os.environ.get("FAKE_CV_AGAIN", os.environ["FAKE_CV"]) if AGAIN else os.environ["FAKE_CV"])
        tps = 20.0 / (1 + slow) * math.exp(self.rng.gauss(0, cv))
        return SimpleNamespace(decode_tok_s=tps, prefill_tok_s=500.0, ttft_s=0.25, step_s=[1 / tps] * (new_tokens - 1))


def get_engine(model, precision=None, device="auto", **kwargs):
    return _Engine(precision)
"""


@pytest.fixture()
def gate(tmp_path):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if not head:
        pytest.skip("not a git checkout")
    base = tmp_path / "baseline.jsonl"
    base.write_text(json.dumps({"schema": 2, "software": {"commit": head}}) + "\n")
    for side in ("a", "b"):  # each side's tree: a fake package with the engine interface the driver uses
        pkg = tmp_path / "trees" / side / "mindbench"
        (pkg / "runtimes").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "runtimes" / "__init__.py").write_text(FAKE_ENGINE)
    py = tmp_path / "python"
    # the gate's interpreter: the driver runs for real on the fake trees (its last --a/--b win);
    # scripts/decode_work.py's counting (not its --compare) is a fixed count, B's from FAKE_WORK_B
    py.write_text(
        '#!/bin/sh\ncase "$1" in *ab_interleave.py) '
        f'exec {sys.executable} "$@" --a "$FAKE_TREES/a" --b "$FAKE_TREES/b";; esac\n'
        'case "$1 $2" in *decode_work.py\\ --out) '
        'case "$PYTHONPATH" in */base) n=100;; *) n=${FAKE_WORK_B:-100};; esac; '
        'printf \'{"m/t/fp32/cpu": {"call": %s, "c_call": 50}}\' "$n" > "$3"; exit 0;; esac\n'
        f'exec {sys.executable} "$@"\n'
    )
    py.chmod(0o755)

    def run(slow: float, cv: float, seed: int = 0, **env):
        for side in ("a", "b"):  # each gate call starts counting its A/B runs afresh
            (tmp_path / "trees" / f"{side}.runs").unlink(missing_ok=True)
        e = {
            **os.environ,
            "MINDBENCH_BASELINE": str(base),
            "MINDBENCH_PYTHON": str(py),
            "FAKE_TREES": str(tmp_path / "trees"),
            "FAKE_SLOW": str(slow),
            "FAKE_CV": str(cv),
            "FAKE_SEED": str(seed),
            **env,
        }
        e.pop("MINDBENCH_FAULT", None)
        return subprocess.run(
            ["bash", "scripts/ci_gate.sh", "--speed-only"], cwd=ROOT, env=e, capture_output=True, text=True, timeout=600
        )

    run.trees = tmp_path / "trees"
    return run


def test_a_clear_slowdown_fails_at_the_first_look(gate):
    p = gate(0.20, 0.01)
    assert p.returncode == 1, p.stdout + p.stderr[-2000:]
    assert "decided at look 1 of 3" in p.stderr and "REGRESSION" in p.stdout
    assert "16 interleaved pairs" in p.stdout and "signed-rank interval" in p.stdout
    # confirmed by a fresh pair of processes, which see the same slowdown
    assert "timing again with a fresh pair of processes" in p.stderr and "confirmed: " in p.stderr
    assert p.stdout.count("REGRESSION |") == 4  # each decode row, in both runs' tables


def test_a_flag_that_fresh_processes_rule_out_is_cleared(gate):
    """A first run that flags a slowdown its processes alone had (a false alarm) does not fail the
    gate when a fresh pair of processes rules the 5 % target out."""
    p = gate(0.20, 0.01, FAKE_SLOW_AGAIN="0")
    assert p.returncode == 0, p.stdout + p.stderr[-2000:]
    assert "REGRESSION" in p.stdout and "not confirmed: fresh processes rule the slowdown out" in p.stderr
    # the switch: without the confirmation the first flag fails the gate
    p = gate(0.20, 0.01, FAKE_SLOW_AGAIN="0", MINDBENCH_AB_CONFIRM="0")
    assert p.returncode == 1 and "fresh pair" not in p.stderr, p.stderr[-2000:]


def test_a_flag_the_confirmation_cannot_rule_out_stands(gate):
    """A second run that is NOT DECIDED does not clear a flag: only a ruled-out slowdown does."""
    p = gate(0.20, 0.01, seed=2, FAKE_SLOW_AGAIN="0", FAKE_CV_AGAIN="0.3")
    assert p.returncode == 1, p.stdout + p.stderr[-2000:]
    assert "NOT DECIDED" in p.stdout and "confirmed: the second A/B run does not rule" in p.stderr


def test_an_honest_quiet_rerun_passes_at_the_first_look(gate):
    p = gate(0.0, 0.01)
    assert p.returncode == 0, p.stdout + p.stderr[-2000:]
    assert "decided at look 1 of 3" in p.stderr and "REGRESSION" not in p.stdout
    assert "NOT DECIDED" not in p.stdout


def test_noisy_pairs_run_to_the_most_pairs_and_say_not_decided(gate):
    p = gate(0.0, 0.15, seed=1)
    assert p.returncode == 0, p.stdout + p.stderr[-2000:]
    assert "48 pairs a cell" in p.stderr and "(max pairs)" in p.stderr and "NOT DECIDED" in p.stdout
    assert "this is not a pass" in p.stdout


def test_the_time_budget_stops_adding_pairs(gate):
    p = gate(0.0, 0.15, seed=1, MINDBENCH_AB_BUDGET_S="0")
    assert "1 pairs a cell" in p.stderr and "(time budget (0 s))" in p.stderr, p.stderr[-2000:]
    assert "NOT DECIDED" in p.stdout and p.returncode == 0


def test_more_python_work_per_token_fails_even_when_speed_passes(gate):
    p = gate(0.0, 0.01, FAKE_WORK_B="101")
    assert p.returncode == 1, p.stdout + p.stderr[-2000:]
    assert "calls per decoded token: 100.0 -> 101.0" in p.stdout and "MORE WORK" in p.stdout
    assert "REGRESSION" not in p.stdout  # the wall-time gate saw nothing
    p = gate(0.0, 0.01, FAKE_WORK_B="100")
    assert p.returncode == 0 and "MORE WORK" not in p.stdout


def test_a_side_that_imports_another_package_is_a_broken_gate_not_a_pass(gate):
    (gate.trees / "b" / "mindbench" / "__init__.py").write_text(
        "import sys\n__file__ = '/elsewhere/mindbench/__init__.py'\n"
    )
    p = gate(0.0, 0.01)
    assert p.returncode == 2, p.stdout + p.stderr[-2000:]
    assert "imported mindbench from /elsewhere/mindbench" in p.stderr
