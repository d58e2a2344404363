"""Is the roofline column right? Recompute it from an independently measured read bandwidth.

    python benchmarks/roofline_check.py [--rounds 2]

The table's roofline column is decode tok/s x weight bytes per token / the read bandwidth that
mindbench.measure.bandwidth measures (a torch.sum over 1 GiB, best of 10). The target is for it to
be within 10 % of the same ratio computed with a bandwidth measured independently. Here, right
after each cell (cell, bandwidth, cell, bandwidth, ...):
  - sysbench: `sysbench memory --memory-oper=read` with 1 GiB blocks, one per thread, as many
    threads as the cell used: another program's sequential read (apt-get install sysbench);
  - sum 1 GiB: torch.sum over a 1 GiB float32 buffer in a fresh process, median of 11.
On a host whose memory bandwidth swings from second to second (a shared VM) each round differs;
the ratios are of means over the rounds.
A measurement, not a test: the cell's own contention verdict is printed, since a shared machine
makes any ratio meaningless. Note the CPU features beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

from mindbench.store import results

INDEPENDENT = r"""
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[2]))
def median_gb_s(fn, nbytes, runs=11):
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return nbytes / sorted(times)[len(times) // 2] / 1e9
buf = torch.ones(1024 * 1024 * 1024 // 4)
s = median_gb_s(lambda: buf.sum(), buf.numel() * 4)
del buf
print(json.dumps({"sum_1gib": s}))
"""


def cell() -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cell.jsonl")
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "mindbench.cli",
                "run",
                "--suite",
                "none",
                "--no-fidelity",
                "--precisions",
                "fp32",
                "--out",
                out,
            ],
            capture_output=True,
            text=True,
        )
        if p.returncode:
            raise SystemExit(f"mindbench run failed: {p.stderr.strip()[-500:]}")
        rec = results.read(out)[-1]
    if rec.status != "ok":
        raise SystemExit(f"the fp32 cell is {rec.status}: {rec.error}")
    return {
        "decode": rec.speed.figure("decode_tok_s").value,
        "verdict": rec.speed.verdict,
        "roof": rec.roofline.to_json(),
        "threads": (rec.speed.runtime_settings or {}).get("threads"),
    }


def sysbench(threads: int) -> float | None:
    """sysbench's sequential read in GB/s (it prints MiB/sec), or None when it is not installed."""
    if not shutil.which("sysbench"):
        return None
    p = subprocess.run(
        [
            "sysbench",
            "memory",
            "--memory-oper=read",
            "--memory-block-size=1G",
            "--memory-total-size=40G",
            f"--threads={threads}",
            "run",
        ],
        capture_output=True,
        text=True,
    )
    m = re.search(r"\(([\d.]+) MiB/sec\)", p.stdout)
    return float(m.group(1)) * 1024 * 1024 / 1e9 if m else None


def independent(weight_bytes: int, threads: int) -> dict:
    p = subprocess.run(
        [sys.executable, "-c", INDEPENDENT, str(weight_bytes), str(threads)], capture_output=True, text=True
    )
    if p.returncode:
        raise SystemExit(f"bandwidth script failed: {p.stderr.strip()[-500:]}")
    return {**json.loads(p.stdout.strip().splitlines()[-1]), "sysbench": sysbench(threads)}


def _features() -> str:
    flags = set(open("/proc/cpuinfo").read().split()) if os.path.exists("/proc/cpuinfo") else set()
    return " ".join(f for f in ("avx2", "avx512f", "amx_tile") if f in flags) or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    cells, bws = [], []
    for _ in range(a.rounds):
        c = cell()
        cells.append(c)
        bws.append(independent(c["roof"]["bytes_per_token"], c["threads"] or len(os.sched_getaffinity(0))))
    decode = statistics.mean(c["decode"] for c in cells)
    column = statistics.mean(c["roof"]["efficiency"] for c in cells)
    bpt = cells[-1]["roof"]["bytes_per_token"]
    print(
        f"packaged SmolLM2 fp32 decode, {a.rounds} interleaved rounds; cell verdicts: {[c['verdict'] for c in cells]}"
    )
    print(
        f"decode {decode:.2f} tok/s x {bpt / 1e6:.0f} MB/token; CPU features: {_features()}; mindbench bandwidth "
        f"{[c['roof']['bandwidth_gb_s'] for c in cells]} GB/s ({cells[-1]['roof']['bandwidth_method']})"
    )
    print(f"roofline column                       {100 * column:5.1f} %")
    for key, label in (
        ("sysbench", "sysbench memory read, 1 GiB blocks"),
        ("sum_1gib", "torch.sum 1 GiB, median of 11"),
    ):
        if any(b[key] is None for b in bws):
            print(f"recomputed with {label:36s}   not measured (apt-get install sysbench)")
            continue
        bw = statistics.mean(b[key] for b in bws)
        frac = decode * bpt / (bw * 1e9)
        print(
            f"recomputed with {label:36s} {100 * frac:5.1f} %  (bandwidth {bw:.1f} GB/s; "
            f"column / recomputed = {column / frac:.2f})"
        )


if __name__ == "__main__":
    main()
