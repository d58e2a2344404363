"""scripts/ci_gate.sh's A/B speed step adds rounds until compare --ab can decide, or its budget is
spent. The benchmark itself is stood in for (a fake `mindbench.cli run` that writes records with
per-repeat decode speeds of a known shift), so this checks the script's loop, not a model: stop
early on a clear regression or a clear pass, go on to the most rounds when the repeats cannot
tell, and then say NOT DECIDED; stop when the time budget is spent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_compare import ab_round

ROOT = Path(__file__).resolve().parent.parent

FAKE_RUN = r"""
import json, math, os, random, sys
args = sys.argv[1:]
out = args[args.index("--out") + 1]
side = "A" if os.path.basename(os.getcwd()) == "base" else "B"
rounds = sum(1 for _ in open(out)) if os.path.exists(out) else 0
rng = random.Random(f"{side}{rounds}{os.environ['FAKE_SEED']}")
slow = float(os.environ["FAKE_SLOW"]) if side == "B" else 0.0
cv = float(os.environ["FAKE_CV"])
for line in open(os.environ["FAKE_TEMPLATES"]):
    rec = json.loads(line)
    rec["speed"]["samples"]["decode_tok_s"] = [20.0 / (1 + slow) * math.exp(rng.gauss(0, cv)) for _ in range(4)]
    with open(out, "a") as f:
        f.write(json.dumps(rec) + "\n")
"""


@pytest.fixture()
def gate(tmp_path):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    if not head:
        pytest.skip("not a git checkout")
    base = tmp_path / "baseline.jsonl"
    base.write_text(json.dumps({"schema": 2, "software": {"commit": head}}) + "\n")
    (tmp_path / "fake_run.py").write_text(FAKE_RUN)
    templates = tmp_path / "templates.jsonl"
    templates.write_text("".join(json.dumps(ab_round([20.0] * 4, p).to_json()) + "\n" for p in ("fp32", "int4")))
    py = tmp_path / "python"
    # the gate's interpreter: `-m mindbench.cli run` is the fake benchmark, anything else the real one
    # and scripts/decode_work.py's counting (not its --compare) is a fixed count, B's from FAKE_WORK_B
    py.write_text(
        f'#!/bin/sh\nif [ "$1 $2 $3" = "-m mindbench.cli run" ]; then shift 3; '
        f'exec {sys.executable} {tmp_path / "fake_run.py"} "$@"; fi\n'
        'case "$1 $2" in *decode_work.py\\ --out) '
        'case "$PYTHONPATH" in */base) n=100;; *) n=${FAKE_WORK_B:-100};; esac; '
        'printf \'{"m/t/fp32/cpu": {"call": %s, "c_call": 50}}\' "$n" > "$3"; exit 0;; esac\n'
        f'exec {sys.executable} "$@"\n'
    )
    py.chmod(0o755)

    def run(slow: float, cv: float, seed: int = 0, **env):
        e = {
            **os.environ,
            "MINDBENCH_BASELINE": str(base),
            "MINDBENCH_PYTHON": str(py),
            "FAKE_TEMPLATES": str(templates),
            "FAKE_SLOW": str(slow),
            "FAKE_CV": str(cv),
            "FAKE_SEED": str(seed),
            **env,
        }
        e.pop("MINDBENCH_FAULT", None)
        return subprocess.run(
            ["bash", "scripts/ci_gate.sh", "--speed-only"], cwd=ROOT, env=e, capture_output=True, text=True, timeout=600
        )

    return run


def test_a_clear_slowdown_fails_after_the_first_look(gate):
    p = gate(0.20, 0.01)
    assert p.returncode == 1, p.stdout + p.stderr[-2000:]
    assert "decided after 2 rounds" in p.stderr and "REGRESSION" in p.stdout


def test_an_honest_quiet_rerun_passes_after_the_first_look(gate):
    p = gate(0.0, 0.01)
    assert p.returncode == 0, p.stdout + p.stderr[-2000:]
    assert "decided after 2 rounds" in p.stderr and "REGRESSION" not in p.stdout
    assert "NOT DECIDED" not in p.stdout


def test_noisy_repeats_run_to_the_most_rounds_and_say_not_decided(gate):
    p = gate(0.0, 0.15, seed=1)
    assert p.returncode == 0, p.stdout + p.stderr[-2000:]
    assert "(4 of at most 4 rounds" in p.stderr and "NOT DECIDED" in p.stdout
    assert "this is not a pass" in p.stdout


def test_the_time_budget_stops_adding_rounds(gate):
    p = gate(0.0, 0.15, seed=1, MINDBENCH_AB_BUDGET_S="0")
    assert "time budget (0 s) spent after 2 rounds" in p.stderr, p.stderr[-2000:]
    assert "NOT DECIDED" in p.stdout and p.returncode == 0


def test_more_python_work_per_token_fails_even_when_speed_passes(gate):
    p = gate(0.0, 0.01, FAKE_WORK_B="101")
    assert p.returncode == 1, p.stdout + p.stderr[-2000:]
    assert "calls per decoded token: 100.0 -> 101.0" in p.stdout and "MORE WORK" in p.stdout
    assert "REGRESSION" not in p.stdout  # the wall-time gate saw nothing
    p = gate(0.0, 0.01, FAKE_WORK_B="100")
    assert p.returncode == 0 and "MORE WORK" not in p.stdout
