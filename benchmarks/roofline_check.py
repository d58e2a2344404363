"""Is the roofline column right? Recompute it from an independently measured read bandwidth.

    python benchmarks/roofline_check.py [--rounds 2]

The table's roofline column is decode tok/s x weight bytes per token / the read bandwidth that
mindbench.measure.bandwidth measures (a torch.sum over 256 MiB, best of 5). Issue 17 asks for it to
be within 10 % of the same ratio computed with a bandwidth measured independently. Here, in a
separate process and interleaved with the cells (bandwidth, cell, bandwidth, cell, ...):
  - sum 1 GiB: torch.sum over a 1 GiB float32 buffer (4x the size mindbench uses), median of 11;
  - gemv: torch.mv of a float32 matrix as large as the model's weights by a vector, median of 11:
    the very access pattern of a decode step, so the fraction it gives is "how close decode comes
    to a bare matrix-vector product over the same bytes".
A measurement, not a test: the cell's own contention verdict is printed, since a shared machine
makes any ratio meaningless. Note the CPU features beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

INDEPENDENT = r'''
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[2]))
weight_bytes = int(sys.argv[1])
def median_gb_s(fn, nbytes, runs=11):
    fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return nbytes / sorted(times)[len(times) // 2] / 1e9
buf = torch.ones(1024 * 1024 * 1024 // 4)
s = median_gb_s(lambda: buf.sum(), buf.numel() * 4)
del buf
cols = 576   # SmolLM2's hidden size: a decode step multiplies (rows x hidden) weights by one vector
mat = torch.ones(weight_bytes // 4 // cols, cols)
vec = torch.ones(cols)
g = median_gb_s(lambda: torch.mv(mat, vec), mat.numel() * 4)
print(json.dumps({"sum_1gib": s, "gemv": g}))
'''


def cell() -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cell.jsonl")
        p = subprocess.run([sys.executable, "-m", "mindbench.cli", "run", "--suite", "none", "--no-fidelity",
                            "--precisions", "fp32", "--out", out], capture_output=True, text=True)
        if p.returncode:
            raise SystemExit(f"mindbench run failed: {p.stderr.strip()[-500:]}")
        rec = [json.loads(line) for line in open(out)][-1]
    if rec.get("status") != "ok":
        raise SystemExit(f"the fp32 cell is {rec.get('status')}: {rec.get('error')}")
    return {"decode": rec["speed"]["decode_tok_s"]["mean"], "verdict": rec["speed"].get("verdict"),
            "roof": rec["roofline"], "threads": (rec["speed"].get("runtime_settings") or {}).get("threads")}


def independent(weight_bytes: int, threads: int) -> dict:
    p = subprocess.run([sys.executable, "-c", INDEPENDENT, str(weight_bytes), str(threads)],
                       capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"bandwidth script failed: {p.stderr.strip()[-500:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


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
    print(f"packaged SmolLM2 fp32 decode, {a.rounds} interleaved rounds; cell verdicts: "
          f"{[c['verdict'] for c in cells]}")
    print(f"decode {decode:.2f} tok/s x {bpt / 1e6:.0f} MB/token; mindbench bandwidth "
          f"{[c['roof']['bandwidth_gb_s'] for c in cells]} GB/s ({cells[-1]['roof']['bandwidth_method']})")
    print(f"roofline column                       {100 * column:5.1f} %")
    for key, label in (("sum_1gib", "torch.sum 1 GiB, median of 11"), ("gemv", "torch.mv weight-sized, median of 11")):
        bw = statistics.mean(b[key] for b in bws)
        frac = decode * bpt / (bw * 1e9)
        print(f"recomputed with {label:36s} {100 * frac:5.1f} %  (bandwidth {bw:.1f} GB/s; "
              f"column / recomputed = {column / frac:.2f})")


if __name__ == "__main__":
    main()
