"""How far a KL divergence computed from a server's top-k log-probabilities is from the full one.

    python benchmarks/topk_kl.py [--k 5,20] [--tokens 2048] [--precision Q4_0]

An OpenAI-compatible server returns at most the top-k log-probabilities of each position (`echo`
+ `logprobs` on /v1/completions; OpenAI and vLLM cap k at 20 by default). mindbench's fidelity
track needs the full next-token distribution (suites/fidelity.py). This measures, on a packaged
model, what restricting the cell to its top-k costs: the in-process llama.cpp engine gives the full
rows, and the server's answer is emulated exactly by keeping each row's k largest entries (what
the server would send for the same file). Against the cached transformers fp32 reference:

  full        mean KL(ref || cell) per token, as the fidelity track computes it
  top-k renormalized  KL between the two distributions restricted to the cell's top-k tokens
              and renormalized there (a divergence of conditionals, >= 0)
  top-k partial sum   sum over the cell's top-k of p_ref * (log p_ref - log q_cell), the rest of
              the vocabulary ignored (can fall below zero)

Prints each with the ratio to the full KL, and the reference mass the top-k set covers.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODEL = "smollm2-135m-instruct"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--k", default="5,20")
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--precision", default=None, help="GGUF type (default: the packaged file's own)")
    a = ap.parse_args()
    ks = [int(x) for x in a.k.split(",")]
    import numpy as np
    import torch

    from mindbench.runtimes import get_engine
    from mindbench.suites import fidelity as F

    ref, _ = F.ensure_reference(MODEL, "cpu", a.tokens)
    eng = get_engine(MODEL, a.precision, device="cpu", runtime="llamacpp")
    full, covered = [], {k: [] for k in ks}
    renorm, partial = {k: [] for k in ks}, {k: [] for k in ks}
    try:
        pos = 0
        targets_all = [t for ids in ref.docs for t in ids[1:]]
        for d, lp in F._rows(eng, ref.docs):
            n = lp.shape[0]
            rows = [torch.from_numpy(np.asarray(getattr(ref, k)[pos : pos + n])) for k in F.ARRAYS]
            ti, tl, si, sl, rest, _ = rows
            targets = torch.tensor(targets_all[pos : pos + n], dtype=torch.long)
            kl, _, _, _ = F._token_figures(lp, ti.long(), tl, si.long(), sl, rest, targets)
            full.append(kl)
            for k in ks:
                q_lp, idx = lp.double().topk(k, dim=1)  # what a server sends: the cell's top-k
                # the fidelity track's own top-k code (what a served cell computes); positions
                # where the reference did not store every one of the k ids (its top 256) are left out
                r, s, c, ok = F.topk_support_kl(idx, q_lp, ti.long(), tl)
                covered[k].append(c[ok])
                partial[k].append(s[ok])
                renorm[k].append(r[ok])
            pos += n
    finally:
        eng.unload()
    f = torch.cat(full).mean().item()
    print(f"{MODEL} {eng.precision} (llama.cpp) vs transformers fp32, {ref.tokens} tokens of the fidelity text")
    print(f"full KL (the fidelity track's)      {f:.5f} nats/token")
    for k in ks:
        r, s, c = (torch.cat(x).mean().item() for x in (renorm[k], partial[k], covered[k]))
        print(f"top-{k:<3} renormalized KL            {r:.5f}  ({r / f:.2f} x full)")
        print(
            f"top-{k:<3} partial sum                {s:.5f}  ({s / f:.2f} x full); reference mass in the "
            f"top-{k}: {c:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
