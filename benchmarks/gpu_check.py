"""Perf-only GPU check: TinyLlama-1.1B and Mistral-7B architectures (random weights, nothing to
download) at fp16, int8 and int4 on CUDA; prints the memory/speed/roofline table and writes it,
with the JSONL records, into --out.

    python benchmarks/gpu_check.py --out /tmp/gpu-check

Meant to finish within 5 minutes on one H200 (../shared/gpu-check.sh runs it under `timeout 300`),
so it watches a wall-clock budget: each cell gets at most what is left, and cells that no longer
fit are listed as not run instead of being cut off silently. Cells run smallest first so a tight
budget still yields the most rows. On a machine without CUDA it says so and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout, no install

MODELS = ("tinyllama-1.1b-chat", "mistral-7b-instruct")
PRECISIONS = ("fp16", "int4", "int8")  # int8 (bitsandbytes LLM.int8) decodes slowest: last


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="folder for gpu_check.jsonl and gpu_check.md")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--precisions", default=",".join(PRECISIONS))
    ap.add_argument("--budget-s", type=float, default=270, help="wall-clock budget for the whole sweep")
    ap.add_argument("--cell-timeout-s", type=float, default=150)
    ap.add_argument("--prompt-tokens", type=int, default=512)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args(argv)

    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    if not cuda:
        print(
            "gpu_check: no CUDA device here (torch.cuda.is_available() is False); this check needs an "
            "NVIDIA GPU and a CUDA build of torch - run it on a GPU machine",
            file=sys.stderr,
        )
        return 2

    from mindbench.sweep import harness

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "gpu_check.jsonl"
    t0 = time.perf_counter()
    records, not_run = [], []
    cells = [(m, p) for m in args.models.split(",") for p in args.precisions.split(",")]
    for model, precision in cells:
        left = args.budget_s - (time.perf_counter() - t0)
        if left < 30:  # not even a worker start and a load: don't start what can't finish
            not_run.append(f"{model} {precision}")
            continue
        print(
            f"[{time.perf_counter() - t0:5.0f} s] {model} {precision} (limit {min(left, args.cell_timeout_s):.0f} s)",
            file=sys.stderr,
            flush=True,
        )
        recs = harness.sweep(
            [model],
            [precision],
            suites=[],
            out=store,
            device="cuda:0",
            no_weights=True,
            repeats=args.repeats,
            prompt_tokens=args.prompt_tokens,
            new_tokens=args.new_tokens,
            timeout_s=min(left, args.cell_timeout_s),
            progress=False,
        )
        records.extend(recs)
        r = recs[0]
        print(f"    {r.status} in {r.duration_s} s {r.error or ''}", file=sys.stderr, flush=True)

    wall = time.perf_counter() - t0
    from mindbench.present.table import text as table_text  # the table `mindbench run` prints

    text = table_text(records, "simple")
    mem = "\n".join(
        f"{r.config.model} {r.config.precision}: " + ", ".join(f"{k}={v}" for k, v in r.memory.to_json().items())
        for r in records
    )
    summary = f"{len(records)} cells in {wall:.0f} s" + (f"; not run (budget): {', '.join(not_run)}" if not_run else "")
    print(text)
    print(mem)
    print(summary)
    (out / "gpu_check.md").write_text(f"```\n{text}\n\n{mem}\n\n{summary}\n```\n")
    (out / "gpu_check.json").write_text(json.dumps({"wall_s": round(wall, 1), "not_run": not_run}, indent=2))
    return 0 if all(r.status == "ok" for r in records) and not not_run else 1


if __name__ == "__main__":
    sys.exit(main())
