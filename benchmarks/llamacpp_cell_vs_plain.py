"""Is a `mindbench run --runtimes llamacpp` cell as fast as llama.cpp is for its users?

    python benchmarks/llamacpp_cell_vs_plain.py [--prompt-tokens 128] [--new-tokens 64] [--rounds 2]

Side by side in one run, interleaved (plain, cell, plain, cell...): the packaged model's Q4_1
GGUF decoded by
  - a plain llama-cpp-python script with the library's defaults (`Llama(model_path)`, greedy
    streaming completion; its default n_threads is half the cores), and the same with
    n_threads = all cores (what mindbench's engine uses);
  - a mindbench cell: `mindbench run --runtimes llamacpp --suite none`, its speed.decode_tok_s.
Each in a fresh process with the caller's environment (no OMP_WAIT_POLICY added). Prints decode
tok/s and the ratio cell / plain; the target is for the cell to be within 10 % of the plain script
on a quiet host. A measurement, not a test: the verdict of the cell's own contention probe is
printed beside it, since a shared machine makes any ratio meaningless.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from mindbench.store import results

PLAIN = r"""
import json, os, sys, time
from llama_cpp import Llama
from mindbench.models import catalog
spec = catalog.resolve(catalog.DEFAULT_MODEL)
kw = {} if sys.argv[3] == "default" else {"n_threads": len(os.sched_getaffinity(0))}
llm = Llama(model_path=str(catalog.packaged_gguf(spec)), n_ctx=2048, verbose=False, **kw)
prompt_tokens, new_tokens = int(sys.argv[1]), int(sys.argv[2])
text = "The quick brown fox jumps over the lazy dog while the river runs past the old mill. "
ids = llm.tokenize(text.encode())
prompt = llm.detokenize((ids * (prompt_tokens // len(ids) + 1))[:prompt_tokens]).decode(errors="ignore")
out = []
for _ in range(2):  # warm-up, then the timed run
    stamps = []
    for _chunk in llm.create_completion(prompt, max_tokens=new_tokens, temperature=0.0, stream=True,
                                        logit_bias={llm.token_eos(): -1e9}):
        stamps.append(time.perf_counter())
    out.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
print(json.dumps({"decode_tok_s": out[-1], "n_threads": llm.n_threads if hasattr(llm, "n_threads") else None}))
"""


def plain(a, threads: str) -> dict:
    p = subprocess.run(
        [sys.executable, "-c", PLAIN, str(a.prompt_tokens), str(a.new_tokens), threads], capture_output=True, text=True
    )
    if p.returncode:
        raise SystemExit(f"plain llama-cpp-python script failed: {p.stderr.strip()[-500:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def cell(a) -> dict:
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cell.jsonl")
        p = subprocess.run(
            [
                sys.executable,
                "-m",
                "mindbench.cli",
                "run",
                "--runtimes",
                "llamacpp",
                "--suite",
                "none",
                "--prompt-tokens",
                str(a.prompt_tokens),
                "--new-tokens",
                str(a.new_tokens),
                "--repeats",
                "3",
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
        raise SystemExit(f"the llamacpp cell is {rec.status}: {rec.error}")
    return {
        "decode_tok_s": rec.speed.figure("decode_tok_s").value,
        "verdict": rec.speed.verdict,
        "settings": rec.speed.runtime_settings,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    rows = {"plain (defaults)": [], "plain (all cores)": [], "mindbench cell": []}
    verdicts, settings = [], None
    for _ in range(a.rounds):
        rows["plain (defaults)"].append(plain(a, "default")["decode_tok_s"])
        rows["plain (all cores)"].append(plain(a, "all")["decode_tok_s"])
        c = cell(a)
        rows["mindbench cell"].append(c["decode_tok_s"])
        verdicts.append(c["verdict"])
        settings = c["settings"]
    mean = {k: sum(v) / len(v) for k, v in rows.items()}
    print(
        f"packaged Q4_1 GGUF, prompt {a.prompt_tokens}, {a.new_tokens} new tokens, {a.rounds} interleaved rounds, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}"
    )
    for k, v in rows.items():
        print(f"{k:<20} decode {mean[k]:7.1f} tok/s   rounds: {', '.join(f'{x:.1f}' for x in v)}")
    print(f"cell settings: {settings}; cell verdicts: {verdicts}")
    for k in ("plain (defaults)", "plain (all cores)"):
        print(f"ratio mindbench cell / {k}: {mean['mindbench cell'] / mean[k]:.2f}")


if __name__ == "__main__":
    main()
