"""llama.cpp vs transformers on the default model, side by side in one run.

    python benchmarks/llamacpp_vs_transformers.py [--prompt-tokens 128] [--new-tokens 64] [--repeats 3]

Both engines load the same packaged model (llama.cpp runs its Q4_1 GGUF file as is; transformers
runs the de-quantized fp32 weights). After one warm-up each, the timed runs alternate between the
two engines, so background load on a shared machine hits both alike. Prints decode/prefill tok/s
(mean ± std) and the ratio llama.cpp / transformers. A measurement, not a test: no threshold.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import time

# One OpenMP wait policy for both runtimes (they share libgomp). Passive: with spinning workers,
# on a machine whose cores were busy, llama.cpp ran 12x and transformers 5x slower here.
# Set OMP_WAIT_POLICY=ACTIVE to compare on an idle machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from mindbench.catalog import DEFAULT_MODEL  # noqa: E402
from mindbench.measure.speed import stat  # noqa: E402
from mindbench.runtimes import Timing, get_engine  # noqa: E402


class _LoadedTimer:
    """Fallback while mindbench.runtimes.hf is not there: the same timed prefill/decode over
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
    if importlib.util.find_spec("mindbench.runtimes.hf") is not None:
        return get_engine(DEFAULT_MODEL, "fp32", "cpu", runtime="transformers")
    from mindbench import loading
    return _LoadedTimer(loading.load(DEFAULT_MODEL, "fp32", "cpu"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()

    engines = {"llamacpp": get_engine(DEFAULT_MODEL, None, "cpu", runtime="llamacpp", n_ctx=2048),
               "transformers": load_transformers()}
    for e in engines.values():                       # warm-up, discarded
        e.timed_run(a.prompt_tokens, a.new_tokens)
    runs = {name: [] for name in engines}
    for _ in range(a.repeats):                       # alternate: A B A B ...
        for name, e in engines.items():
            runs[name].append(e.timed_run(a.prompt_tokens, a.new_tokens))

    label = {"llamacpp": f"llama.cpp {engines['llamacpp'].precision}", "transformers": "transformers fp32"}
    print(f"{DEFAULT_MODEL}, prompt {a.prompt_tokens} tokens, {a.new_tokens} new tokens, "
          f"{a.repeats} repeats after 1 warm-up, batch 1, greedy, CPU, OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}")
    print(f"{'runtime':<20} {'decode tok/s':>18} {'prefill tok/s':>18} {'ttft ms':>14}")
    decode = {}
    for name, ts in runs.items():
        d = stat(t.decode_tok_s for t in ts)
        p = stat(t.prefill_tok_s for t in ts)
        f = stat(t.ttft_s * 1000 for t in ts)
        decode[name] = d.mean
        print(f"{label[name]:<20} {d.mean:>10.1f} ± {d.std:<5.1f} {p.mean:>10.1f} ± {p.std:<5.1f} "
              f"{f.mean:>8.1f} ± {f.std:<4.1f}")
    print(f"decode ratio llama.cpp / transformers: {decode['llamacpp'] / decode['transformers']:.2f}x")


if __name__ == "__main__":
    main()
