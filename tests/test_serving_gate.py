"""compare gates serve-bench's records: p99 latency and goodput per load level, with the same
same-machine rule as tok/s. The levels are built by measure/serving.py from synthetic request
timelines, as serve-bench builds them from real ones."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mindbench.decide.compare import BadInput, compare
from mindbench.store import results
from mindbench.store.record import Record
from tests.records import requests, serving_record

ROOT = Path(__file__).resolve().parent.parent
SLO = {"ttft": 0.5, "itl": 0.05}


def _record(levels: dict, *, run: str, fingerprint: str = "s1", status: str = "ok") -> Record:
    """A serve-bench record under this file's SLO."""
    return serving_record(levels, run=run, fingerprint=fingerprint, status=status, slo=SLO)


def _serving_checks(result: dict) -> list[dict]:
    return [c for c in result["checks"] if c["what"].startswith(("p99", "p90", "p50", "goodput"))]


def test_the_same_serving_twice_passes_and_a_slower_server_regresses():
    base = _record({1: requests(60, 0.2, 0.02, 1), 4: requests(60, 0.3, 0.03, 2)}, run="a")
    same = _record({1: requests(60, 0.2, 0.02, 3), 4: requests(60, 0.3, 0.03, 4)}, run="b")
    r = compare([base], [same])
    checks = _serving_checks(r)
    # p99 of 60 requests has no upper bound: the gate uses the highest percentile it can bound, and
    # says so; ITL pools every gap (960 of them), enough for p99
    assert {c["what"] for c in checks} == {"p90 TTFT ms", "p99 ITL ms", "p90 E2E ms", "goodput share within SLO"}
    assert all("no 95 % interval" in c["note"] for c in checks if c["what"].startswith("p90"))
    assert len(checks) == 8 and r["regressions"] == 0, checks  # 4 figures x 2 levels, all noise
    # twice the time to first token and per token: p99s and goodput all regress, at both levels
    slow = _record({1: requests(60, 0.6, 0.06, 5), 4: requests(60, 0.9, 0.09, 6)}, run="c")
    r = compare([base], [slow])
    bad = {(c["cell"].rsplit(" ", 1)[1], c["what"]) for c in _serving_checks(r) if c["verdict"] == "regression"}
    assert ("concurrency=1", "p90 TTFT ms") in bad and ("concurrency=4", "p99 ITL ms") in bad
    assert ("concurrency=1", "goodput share within SLO") in bad
    # ... and the other way round it is an improvement, not a regression
    assert compare([slow], [base])["regressions"] == 0


def test_serving_is_compared_only_like_with_like():
    base = _record({1: requests(40, 0.2, 0.02, 1)}, run="a")
    slow_elsewhere = _record({1: requests(40, 0.6, 0.06, 2)}, run="b", fingerprint="other-cpu")
    with pytest.raises(BadInput, match="nothing to compare"):  # another CPU: no latency is comparable
        compare([base], [slow_elsewhere])
    # a level only one run measured is listed, not compared
    more = _record({1: requests(40, 0.2, 0.02, 3), 8: requests(40, 0.2, 0.02, 4)}, run="c")
    r = compare([more], [base])
    assert any("concurrency 8" in u for u in r["unmatched"]["baseline"])
    # a serving record and a run record of the same model never match each other
    failed = _record({}, run="d", status="error")
    assert compare([base], [failed])["regressions"] == 1


def test_compare_cli_fails_on_a_serving_regression(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    results.append(a, _record({2: requests(60, 0.2, 0.02, 1)}, run="a"))
    results.append(b, _record({2: requests(60, 0.6, 0.06, 2)}, run="b"))
    p = subprocess.run(
        [sys.executable, "-m", "mindbench.cli", "compare", str(a), str(b), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 1, p.stdout[-2000:] + p.stderr[-2000:]
    assert any(c["verdict"] == "regression" and c["what"] == "p90 TTFT ms" for c in json.loads(p.stdout)["checks"])
