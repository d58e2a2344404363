"""mindbench serve-bench's own load generator against GuideLLM, on the same server, side by side.

    python benchmarks/serving_client_vs_guidellm.py --guidellm /path/to/venv/bin/guidellm \
        [--concurrency 1,2] [--shape 128/32] [--requests 12]

Starts llama-cpp-python's server on the packaged SmolLM2 GGUF (runtimes/llamacpp_server), then
runs the same concurrency levels and request shape with: mindbench's client, GuideLLM, and
mindbench's client again (A B A, so drift of a shared host shows as the gap between the two A
runs). Prints, per level: requests/s, output tok/s, TTFT p50/p99, ITL p50, and each client's own
CPU seconds (what the load generator itself costs on the machine it measures from).

GuideLLM is not a mindbench dependency (a fresh venv with it is 6 GB: it pulls transformers,
torch with CUDA wheels, datasets, pyarrow, sanic); install it into its own venv and pass its
`guidellm` executable. It needs a Hugging Face tokenizer for synthetic prompts: the packaged
model's converted folder in the mindbench cache serves (no download).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODEL = "smollm2-135m-instruct"


def mindbench_client(engine, levels, shape, requests):
    from mindbench.measure.serving import summarize_level
    from mindbench.runtimes.openai.loadgen import run_concurrency
    from mindbench.sweep.serve_bench import default_trim

    rows = []
    for c in levels:
        t0 = time.process_time()
        res = run_concurrency(engine, ("bench", *shape), c, requests)
        cpu = time.process_time() - t0
        w, cd = default_trim("concurrency", c, requests)
        s = summarize_level(res, warmup=w, cooldown=cd)
        rows.append(
            {
                "c": c,
                "req_s": s.get("req_s"),
                "out_tok_s": s.get("output_tok_s"),
                "ttft_p50": s["ttft_ms"]["p50"]["value"],
                "ttft_p99": s["ttft_ms"]["p99"]["value"],
                "itl_p50": (s.get("itl_ms") or {}).get("p50", {}).get("value"),
                "client_cpu_s": cpu,
                "failed": s["failed"],
            }
        )
    return rows


def guidellm_client(guidellm, url, tokenizer_dir, levels, shape, requests):
    out = Path(tempfile.mkdtemp(prefix="mb-guidellm-"))
    scenario = {
        "spec": {
            "backend": {
                "kind": "openai_http",
                "target": url.removesuffix("/v1"),
                "request_format": "/v1/completions",
                "model": MODEL,
                "validate_backend": False,
            },  # llama-cpp-python has no /health
            "profile": {"kind": "concurrent", "streams": levels},
            "data": [{"kind": "synthetic_text", "prompt_tokens": shape[0], "output_tokens": shape[1]}],
            "tokenizer": {"kind": "hf_auto", "model": str(tokenizer_dir)},
            "constraints": [{"kind": "max_requests", "count": requests}],
        }
    }
    cfg = out / "scenario.json"
    cfg.write_text(json.dumps(scenario))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(
        [
            guidellm,
            "run",
            "--scenario",
            str(cfg),
            "--disable-console-interactive",
            "--output",
            f"kind=json,path={out / 'report.json'}",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0 or not (out / "report.json").exists():
        print(proc.stdout[-3000:], proc.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"guidellm failed (exit {proc.returncode}); its scenario: {cfg}")
    return parse_guidellm(json.loads((out / "report.json").read_text()), levels, cpu)


def parse_guidellm(report: dict, levels, cpu: float):
    rows = []
    for c, b in zip(levels, report["benchmarks"]):
        m = b["metrics"]

        def get(name, stat="median", part="successful"):
            d = m.get(name) or {}
            d = d.get(part, d)
            if stat.startswith("p"):
                return (d.get("percentiles") or {}).get(stat)
            return d.get(stat)

        rows.append(
            {
                "c": c,
                "req_s": get("requests_per_second", "mean"),
                "out_tok_s": get("output_tokens_per_second", "mean"),
                "ttft_p50": get("time_to_first_token_ms", "median"),
                "ttft_p99": get("time_to_first_token_ms", "p99"),
                "itl_p50": get("inter_token_latency_ms", "median"),
                "client_cpu_s": cpu / len(levels),
                "failed": None,
            }
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--guidellm", required=True, help="the guidellm executable (its own venv)")
    ap.add_argument("--concurrency", default="1,2")
    ap.add_argument("--shape", default="128/32", help="prompt/output tokens")
    ap.add_argument("--requests", type=int, default=12)
    ap.add_argument("--threads", type=int, default=None)
    a = ap.parse_args()
    levels = [int(x) for x in a.concurrency.split(",")]
    shape = tuple(int(x) for x in a.shape.split("/"))
    from mindbench.models.catalog import resolve
    from mindbench.runtimes import get_engine
    from mindbench.runtimes.transformers.loading import source_folder

    tok_dir, _ = source_folder(resolve(MODEL))
    engine = get_engine(
        MODEL, None, device="cpu", runtime="llamacpp-server", **({"n_threads": a.threads} if a.threads else {})
    )
    try:
        runs = [
            ("mindbench A", mindbench_client(engine, levels, shape, a.requests)),
            ("guidellm", guidellm_client(a.guidellm, engine.client.base_url, tok_dir, levels, shape, a.requests)),
            ("mindbench A'", mindbench_client(engine, levels, shape, a.requests)),
        ]
    finally:
        engine.unload()
    print(f"llama-cpp-python server, SmolLM2 Q4_1, shape {shape[0]}/{shape[1]}, {a.requests} requests per level")
    print(
        f"{'client':<14}{'c':>3}{'req/s':>8}{'out tok/s':>11}{'TTFT p50':>10}{'TTFT p99':>10}{'ITL p50':>9}{'client CPU s':>14}"
    )
    for name, rows in runs:
        for r in rows:
            f = lambda v, d=1: "-" if v is None else f"{v:.{d}f}"  # noqa: E731
            print(
                f"{name:<14}{r['c']:>3}{f(r['req_s'], 3):>8}{f(r['out_tok_s']):>11}{f(r['ttft_p50'], 0):>10}"
                f"{f(r['ttft_p99'], 0):>10}{f(r['itl_p50']):>9}{f(r['client_cpu_s'], 2):>14}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
