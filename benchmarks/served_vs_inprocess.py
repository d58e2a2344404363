"""Decode and prefill speed of the same GGUF file in process (llamacpp) and behind the server the
llamacpp-server runtime starts (llama.cpp's llama-server where one is found, else llama-cpp-python's),
timed alternately in one process, so a shared host's load falls on both.

    python benchmarks/served_vs_inprocess.py [--rounds 8] [--prompt-tokens 256] [--new-tokens 64] [--threads 1] [--slots 8]

Each round times one run of each (the order alternates: A B, then B A) with the engines' own
`timed_run` (the served one is a streamed request: TTFT includes HTTP). Prints each runtime's mean
decode and prefill tok/s and the paired ratio served / in-process with a 95 % t interval over
rounds, and the CPU time other processes took meanwhile (the host is shared; say so beside any
figure). The target: decode at concurrency 1 within 10 % of the in-process cell.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODEL = "smollm2-135m-instruct"


def ratio_ci(ratios):
    from mindbench.measure.speed import t975

    n = len(ratios)
    m = sum(ratios) / n
    sd = math.sqrt(sum((r - m) ** 2 for r in ratios) / (n - 1)) if n > 1 else 0.0
    half = t975(n - 1) * sd / math.sqrt(n) if n > 1 else math.inf
    return m, m - half, m + half


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--prompt-tokens", type=int, default=256)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--slots", type=int, default=8, help="the server's slots (run's default --batch-size: 8)")
    a = ap.parse_args()
    from mindbench.measure.speed import ContentionProbe
    from mindbench.runtimes import get_engine

    local = get_engine(MODEL, None, device="cpu", runtime="llamacpp", n_threads=a.threads)
    served = get_engine(MODEL, None, device="cpu", runtime="llamacpp-server", n_threads=a.threads, slots=a.slots)
    engines = {"in-process": local, "served": served}
    probes = {"in-process": ContentionProbe("cpu"), "served": served.contention_probe()}
    figs = {k: {"decode": [], "prefill": [], "stolen": []} for k in engines}
    try:
        for e in engines.values():  # warm-up, discarded
            e.timed_run(a.prompt_tokens, a.new_tokens)
        for i in range(a.rounds):
            order = list(engines) if i % 2 == 0 else list(reversed(engines))
            for k in order:
                s = probes[k].start()
                t = engines[k].timed_run(a.prompt_tokens, a.new_tokens)
                c = probes[k].stop(s)
                figs[k]["decode"].append(t.decode_tok_s)
                figs[k]["prefill"].append(t.prefill_tok_s)
                figs[k]["stolen"].append(c.get("stolen_frac"))
            print(
                f"round {i + 1}/{a.rounds}: in-process {figs['in-process']['decode'][-1]:.1f}, "
                f"served {figs['served']['decode'][-1]:.1f} decode tok/s",
                file=sys.stderr,
                flush=True,
            )
    finally:
        served.unload()
        local.unload()
    print(
        f"SmolLM2-135M Q4_1, prompt {a.prompt_tokens}, {a.new_tokens} new tokens, {a.threads} thread(s), "
        f"{a.rounds} alternating rounds; served by {served.info['server_settings']['server']}, {served.info['slots']}"
    )
    for k, f in figs.items():
        st = [x for x in f["stolen"] if x is not None]
        print(
            f"{k:<11} decode {sum(f['decode']) / len(f['decode']):6.1f} tok/s   prefill "
            f"{sum(f['prefill']) / len(f['prefill']):6.1f} tok/s   others took {100 * max(st) if st else float('nan'):.0f} % "
            f"of the CPUs at worst"
        )
    for what in ("decode", "prefill"):
        m, lo, hi = ratio_ci([s / p for s, p in zip(figs["served"][what], figs["in-process"][what])])
        print(f"served / in-process {what}: {m:.3f} (95% CI {lo:.3f} - {hi:.3f}, paired over rounds)")
    print("prefill of the served cell is derived: prompt tokens / TTFT, HTTP and queueing included")
    return 0


if __name__ == "__main__":
    sys.exit(main())
