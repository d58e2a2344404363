"""How long `mindbench recommend` takes, next to `mindbench --help` (the floor: Python + click).

Target: under 1.5 s wall-clock, which requires never importing torch. Prints the median
of N runs of each command, side by side, and their ratio; exits 1 if recommend's median is over
the target. Run: python benchmarks/recommend_cli.py [--runs 5] [--results FILE]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time

TARGET_S = 1.5


def timed(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        if out.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed: {out.stderr.strip()[-500:]}")
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--results", default=None, help="result file to recommend from (default: results/*.jsonl)")
    args = ap.parse_args()
    exe = shutil.which("mindbench") or sys.exit("mindbench is not on PATH: make install")
    extra = ["--results", args.results] if args.results else []
    cases = {
        "mindbench --help": [exe, "--help"],
        "mindbench recommend (this machine, all tasks)": [exe, "recommend", *extra],
        "mindbench recommend --profile t4-16gb --json": [exe, "recommend", "--profile", "t4-16gb", "--json", *extra],
        "mindbench recommend --explain-table": [exe, "recommend", "--explain-table", *extra],
        # planned hardware from the device table, and the estimator (same target: no torch)
        "mindbench recommend --gpu 'RTX 4090' --task code": [
            exe,
            "recommend",
            "--gpu",
            "RTX 4090",
            "--task",
            "code",
            *extra,
        ],
        "mindbench recommend --gpu '2x H100' (all tasks)": [exe, "recommend", "--gpu", "2x H100", *extra],
        "mindbench estimate (32B Q4_K_M, RTX 4090, 8k)": [
            exe,
            "estimate",
            "--model",
            "qwen2.5-coder-32b-instruct",
            "--precision",
            "Q4_K_M",
            "--gpu",
            "RTX 4090",
            "--context",
            "8192",
        ],
    }
    base = None
    worst = 0.0
    print(f"{'command':50s} {'median s':>9s} {'x --help':>9s}")
    for name, cmd in cases.items():
        s = timed(cmd, args.runs)
        base = base or s
        if "recommend" in name or "estimate" in name:
            worst = max(worst, s)
        print(f"{name:50s} {s:9.3f} {s / base:9.2f}")
    verdict = "ok" if worst <= TARGET_S else "OVER"
    print(f"slowest recommend/estimate: {worst:.3f} s (target {TARGET_S} s): {verdict}")
    sys.exit(0 if worst <= TARGET_S else 1)


if __name__ == "__main__":
    main()
