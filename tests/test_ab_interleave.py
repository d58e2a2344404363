"""scripts/ab_interleave.py on the packaged model: two live processes, one per side, timed repeat
by repeat. The slow_decode fault in the environment reaches B only (the code under test), so B's
decode reads about half of A's and the paired rule calls it a regression, while A, started from the
same tree without the fault, keeps its speed. About a minute on 2 cores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from statistics import median

ROOT = Path(__file__).resolve().parent.parent


def test_the_driver_times_both_sides_in_turn_and_the_fault_reaches_b_only(tmp_path):
    out = tmp_path / "ab.json"
    env = {**os.environ, "MINDBENCH_FAULT": "slow_decode"}  # bare: each decode step takes twice as long
    args = ["--a", str(ROOT), "--b", str(ROOT), "--out", str(out), "--precisions", "fp32", "--threads", "1"]
    args += ["--prompt-tokens", "16", "--new-tokens", "8", "--max-pairs", "6", "--looks", "1"]
    p = subprocess.run(
        [sys.executable, "scripts/ab_interleave.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    data = json.loads(out.read_text())
    assert data["kind"] == "mindbench-ab-interleaved" and data["pairs"] == 6 and data["stopped"] == "max pairs"
    assert data["b"]["fault"] == "slow_decode" and data["a"]["commit"] == data["b"]["commit"]
    (cell,) = data["cells"]
    assert cell == "smollm2-135m-instruct/transformers/fp32/cpu"
    row = data["cells"][cell]
    assert row["first"] == ["A", "B", "A", "B", "A", "B"]  # A B, then B A: the order alternates
    assert len(row["a"]) == len(row["b"]) == 6 and all(s["decode_tok_s"] > 0 for s in row["a"] + row["b"])
    ratio = median(s["decode_tok_s"] for s in row["b"]) / median(s["decode_tok_s"] for s in row["a"])
    assert 0.35 < ratio < 0.75, ratio  # B at about half speed; A untouched
    prefill = median(s["prefill_tok_s"] for s in row["b"]) / median(s["prefill_tok_s"] for s in row["a"])
    assert prefill > 0.6, prefill  # the fault is in the decode loop only
    c = subprocess.run(
        [sys.executable, "-m", "mindbench.cli", "compare", str(out), "--ab"], cwd=ROOT, capture_output=True, text=True
    )
    assert c.returncode == 1 and "REGRESSION" in c.stdout, c.stdout + c.stderr
    assert "B ran under MINDBENCH_FAULT=slow_decode" in c.stdout


def test_bad_arguments_are_one_line_errors(tmp_path):
    p = subprocess.run(
        [
            sys.executable,
            "scripts/ab_interleave.py",
            "--a",
            str(ROOT),
            "--out",
            str(tmp_path / "x.json"),
            "--looks",
            "0",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2 and "--looks is too small" in p.stderr and "Traceback" not in p.stderr
