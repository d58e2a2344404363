"""llama.cpp vs transformers on the default model, side by side in one run, under each OpenMP
wait policy.

    python benchmarks/llamacpp_vs_transformers.py [--prompt-tokens 128] [--new-tokens 64] [--repeats 3]
                                                  [--policies default,PASSIVE,ACTIVE]

Both engines load the same packaged model (llama.cpp runs its Q4_1 GGUF file as is; transformers
runs the de-quantized fp32 weights). After one warm-up each, the timed runs alternate between the
two engines, so background load on a shared machine hits both alike. Prints decode/prefill tok/s
(mean ± std) and the ratio llama.cpp / transformers, once per OMP_WAIT_POLICY: libgomp (shared by
both runtimes) reads it once per process, so each policy runs in its own child process
("default" = unset, what a user's script gets). A measurement, not a test: no threshold.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

from mindbench.measure.speed import stat  # noqa: E402
from mindbench.models.catalog import DEFAULT_MODEL  # noqa: E402
from mindbench.runtimes import Timing, get_engine  # noqa: E402


class _LoadedTimer:
    """Fallback while mindbench.runtimes.transformers.engine is not there: the same timed prefill/decode over
    loading.load's model (greedy, KV cache, no tokenization in the timed region)."""

    def __init__(self, loaded):
        self.loaded = loaded

    def timed_run(self, prompt_tokens: int, new_tokens: int) -> Timing:
        import torch

        model = self.loaded.model
        ids = torch.arange(100, 100 + prompt_tokens).unsqueeze(0)
        with torch.inference_mode():
            t0 = time.perf_counter()
            out = model(ids, use_cache=True)
            t1 = time.perf_counter()
            tok = out.logits[:, -1:].argmax(-1)
            t2 = time.perf_counter()
            past = out.past_key_values
            for _ in range(new_tokens - 1):
                out = model(tok, past_key_values=past, use_cache=True)
                past, tok = out.past_key_values, out.logits[:, -1:].argmax(-1)
            t3 = time.perf_counter()
        return Timing(prompt_tokens, new_tokens, t1 - t0, t2 - t0, t3 - t2)


def load_transformers():
    if importlib.util.find_spec("mindbench.runtimes.transformers.engine") is not None:
        return get_engine(DEFAULT_MODEL, "fp32", "cpu", runtime="transformers")
    from mindbench.runtimes.transformers import loading

    return _LoadedTimer(loading.load(DEFAULT_MODEL, "fp32", "cpu"))


def measure(a) -> dict:
    """This process's run (one wait policy): alternating timed runs of both engines."""
    engines = {
        "llamacpp": get_engine(DEFAULT_MODEL, None, "cpu", runtime="llamacpp", n_ctx=2048),
        "transformers": load_transformers(),
    }
    for e in engines.values():  # warm-up, discarded
        e.timed_run(a.prompt_tokens, a.new_tokens)
    runs = {name: [] for name in engines}
    for _ in range(a.repeats):  # alternate: A B A B ...
        for name, e in engines.items():
            runs[name].append(e.timed_run(a.prompt_tokens, a.new_tokens))
    out = {"label": {"llamacpp": f"llama.cpp {engines['llamacpp'].precision}", "transformers": "transformers fp32"}}
    for name, ts in runs.items():
        out[name] = {
            k: stat(f(t) for t in ts).to_dict()
            for k, f in (
                ("decode", lambda t: t.decode_tok_s),
                ("prefill", lambda t: t.prefill_tok_s),
                ("ttft_ms", lambda t: t.ttft_s * 1000),
            )
        }
    out["threads"] = engines["llamacpp"].info.get("n_threads")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument(
        "--policies",
        default="default,PASSIVE,ACTIVE",
        help="OMP_WAIT_POLICY values to run, each in its own process (default = unset)",
    )
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(measure(a)))
        return
    print(
        f"{DEFAULT_MODEL}, prompt {a.prompt_tokens} tokens, {a.new_tokens} new tokens, {a.repeats} alternating "
        f"repeats after 1 warm-up, batch 1, greedy, CPU"
    )
    print(f"{'OMP_WAIT_POLICY':<16} {'runtime':<20} {'decode tok/s':>18} {'prefill tok/s':>18} {'ttft ms':>16}")
    for policy in [p.strip() for p in a.policies.split(",") if p.strip()]:
        env = dict(os.environ)
        env.pop("OMP_WAIT_POLICY", None)
        if policy != "default":
            env["OMP_WAIT_POLICY"] = policy
        args = [
            sys.executable,
            __file__,
            "--child",
            "--prompt-tokens",
            str(a.prompt_tokens),
            "--new-tokens",
            str(a.new_tokens),
            "--repeats",
            str(a.repeats),
        ]
        p = subprocess.run(args, env=env, capture_output=True, text=True)
        if p.returncode != 0:
            print(f"{policy:<16} failed: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}")
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        for name in ("llamacpp", "transformers"):
            d, pf, f = r[name]["decode"], r[name]["prefill"], r[name]["ttft_ms"]
            print(
                f"{policy:<16} {r['label'][name]:<20} {d['mean']:>10.1f} ± {d['std']:<5.1f} "
                f"{pf['mean']:>10.1f} ± {pf['std']:<5.1f} {f['mean']:>8.1f} ± {f['std']:<5.1f}"
            )
        print(
            f"{policy:<16} decode ratio llama.cpp / transformers: "
            f"{r['llamacpp']['decode']['mean'] / r['transformers']['decode']['mean']:.2f}x "
            f"(llama.cpp threads {r['threads']})"
        )


if __name__ == "__main__":
    main()
