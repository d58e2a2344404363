"""mindbench's pick next to llmfit's (PyPI `llmfit`, a separate install) for the same hardware and
task: 8/16/24/48/80 GB NVIDIA, an M-series Mac and this CPU, for code and chat. Prints one
Markdown table (docs/estimator.md keeps the latest one).

    python -m venv /tmp/llmfit-venv && /tmp/llmfit-venv/bin/pip install llmfit
    python benchmarks/vs_llmfit.py --llmfit /tmp/llmfit-venv/bin/llmfit [--json]

Each row gives each tool's first pick: model, format and runtime, memory, decode tok/s, and
where each figure comes from (mindbench's evidence tiers: quality / memory / speed). Both are
estimates on hardware that is not here; only "this CPU" has measurements (mindbench's results
store), and llmfit does not read them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

# (label, mindbench --gpu or None for this machine, llmfit hardware flags)
CASES = [
    ("8 GB NVIDIA (RTX 4060)", "RTX 4060", ["--memory", "8G"]),
    ("16 GB NVIDIA (RTX 4060 Ti 16GB)", "RTX 4060 Ti 16GB", ["--memory", "16G"]),
    ("24 GB NVIDIA (RTX 4090)", "RTX 4090", ["--profile", "nvidia-rtx-4090"]),
    ("48 GB NVIDIA (RTX A6000)", "RTX A6000", ["--memory", "48G"]),
    ("80 GB NVIDIA (H100 SXM)", "H100 SXM", ["--memory", "80G"]),
    ("Mac M3 Max 128 GB", "M3 Max 128GB", ["--profile", "apple-m3-max-128gb"]),
    ("this CPU (2 cores, 24 GB)", None, []),
]
TASKS = {"code": "coding", "chat": "chat"}


def _mindbench(gpu: str | None, task: str, context: int) -> dict:
    from mindbench.decide.recommend import load_records, recommend, with_cpu_bandwidth
    from mindbench.models.hardware import detect, from_options
    from mindbench.present.recommendation import _tiers

    records, _ = load_records(None)
    hw = from_options(gpu=gpu) if gpu else with_cpu_bandwidth(detect(), records)
    r = recommend(hw, records, task, context=context)
    c = r.chosen
    if c is None:
        return {"pick": "nothing fits"}
    q = (c.quality or {}).get("score")
    qual = (
        f"{c.quality.get('metric') or 'score'} {q:.1f} ± {c.quality['stderr']:.1f} here"
        if q is not None
        else f"{c.published['benchmark']} {c.published['score']:g} published"
        if c.published
        else "—"
    )
    return {
        "pick": f"{c.model} {c.precision} ({c.runtime})",
        "quality": qual,
        "memory_gib": round(c.memory_mb / 1024, 1),
        "tok_s": round(c.decode_tok_s or 0, 1),
        "tiers": _tiers(c),
        "note": (r.if_installed or {}).get("message") or c.install_note() or "",
    }


def _llmfit(exe: str, flags: list[str], use_case: str) -> dict:
    out = subprocess.run(
        [exe, *flags, "recommend", "-n", "1", "--use-case", use_case], capture_output=True, text=True, timeout=120
    )
    try:
        m = json.loads(out.stdout)["models"][0]
    except (ValueError, KeyError, IndexError):
        return {"pick": f"error: {out.stderr.strip()[-200:]}"}
    return {
        "pick": f"{m['name']} {m.get('best_quant')} ({m.get('runtime')})",
        "memory_gib": m.get("memory_required_gb"),
        "tok_s": m.get("estimated_tps"),
        "fit": m.get("fit_level"),
        "mode": m.get("run_mode"),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--llmfit", default="/tmp/llmfit-venv/bin/llmfit")
    ap.add_argument("--context", type=int, default=8192, help="mindbench's planned context (code default >= 8k)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    for label, gpu, flags in CASES:
        for task, use_case in TASKS.items():
            rows.append(
                {
                    "hardware": label,
                    "task": task,
                    "mindbench": _mindbench(gpu, task, args.context),
                    "llmfit": _llmfit(args.llmfit, flags, use_case),
                }
            )
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(
        "| hardware | task | mindbench pick | quality | GiB | tok/s | evidence q/m/s | llmfit pick | GB | tok/s | fit |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    notes = []
    for r in rows:
        m, l = r["mindbench"], r["llmfit"]
        print(
            f"| {r['hardware']} | {r['task']} | {m['pick']} | {m.get('quality', '')} | {m.get('memory_gib', '')} | "
            f"{m.get('tok_s', '')} | {m.get('tiers', '')} | {l['pick']} | {l.get('memory_gib', '')} | "
            f"{l.get('tok_s', '')} | {l.get('fit', '')} |"
        )
        if r["hardware"].startswith("this") and m.get("note"):
            notes.append(f"- {r['hardware']}, {r['task']}: {m['note']}")
    print("\n".join([""] + notes) if notes else "")


if __name__ == "__main__":
    sys.exit(main())
