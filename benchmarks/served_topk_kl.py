"""Fidelity through an endpoint, against the in-process figures for the same GGUF file.

    python benchmarks/served_topk_kl.py [--tokens 4096] [--k 20] [--threads N]

Starts llama-cpp-python's server on the packaged SmolLM2 GGUF with logits_all (which echo +
logprobs need), measures the served cell's top-k KL through /v1/completions exactly as
`mindbench run --runtimes openai --fidelity` does (suites/fidelity.measure_topk), then loads the
same file in process (llama.cpp) and computes, against the same cached transformers fp32
reference: the fidelity track's full KL, and the top-k KL from the in-process rows' k largest
entries on exactly the positions the served figure scored. The served and in-process top-k
figures must agree (same file, same arithmetic); the full KL is what the top-k form misses.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODEL = "smollm2-135m-instruct"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    a = ap.parse_args()
    import numpy as np
    import torch

    from mindbench.models.catalog import packaged_gguf, resolve
    from mindbench.runtimes import get_engine
    from mindbench.runtimes.llamacpp_server.launcher import LlamaCppServer
    from mindbench.suites import fidelity as F

    ref, _ = F.ensure_reference(MODEL, "cpu", a.tokens)
    extra = {"logits_all": True}
    server = LlamaCppServer(packaged_gguf(resolve(MODEL)), alias=MODEL, threads=a.threads, extra=extra).start()
    try:
        eng = get_engine(MODEL, None, device="cpu", runtime="openai", endpoint=server.base_url)
        t0 = time.perf_counter()
        conv = eng.logprob_convention(a.k)
        q_ids, q_lp, have, doc, skipped, unidentified = F.served_topk(eng, ref, a.k, conv["convention"])
        served_s = time.perf_counter() - t0
        served, counts = F.topk_figures(ref, q_ids, q_lp, have, doc)
        scored = have.clone()
        # the positions the served figure scored, for the in-process figures below
        ti = torch.from_numpy(np.asarray(ref.top_ids)).long()
        tl = torch.from_numpy(np.asarray(ref.top_lp))
        ok = F.topk_support_kl(q_ids, q_lp, ti, tl)[3]
        scored = have & ok & (q_ids[:, 0] >= 0)
        eng.unload()
    finally:
        server.stop(copy_log=False)
    kw = {"n_threads": a.threads} if a.threads else {}
    local = get_engine(MODEL, None, device="cpu", runtime="llamacpp", **kw)
    try:
        full, l_ids, l_lp = [], [], []
        pos = 0
        targets_all = [t for ids in ref.docs for t in ids[1:]]
        for _, lp in F._rows(local, ref.docs):
            n = lp.shape[0]
            rows = [torch.from_numpy(np.asarray(getattr(ref, k)[pos : pos + n])) for k in F.ARRAYS]
            t_ids, t_lp, s_ids, s_lp, rest, _ = rows
            targets = torch.tensor(targets_all[pos : pos + n], dtype=torch.long)
            full.append(F._token_figures(lp, t_ids.long(), t_lp, s_ids.long(), s_lp, rest, targets)[0])
            v, i = lp.double().topk(a.k, dim=1)  # what a server sends: the cell's k largest entries
            l_lp.append(v)
            l_ids.append(i)
            pos += n
        precision = local.precision
    finally:
        local.unload()
    full = torch.cat(full)
    inproc, _ = F.topk_figures(ref, torch.cat(l_ids), torch.cat(l_lp), scored, doc)
    out = {
        "model": MODEL,
        "precision": precision,
        "k": a.k,
        "form": F.TOPK_FORM,
        "convention": conv,
        "predictions": ref.tokens,
        **{f"served_{k}": v for k, v in counts.items()},
        "unidentified_entries": unidentified,
        "skipped_windows": skipped,
        "served_topk_kld": float(served["kl"].mean()),
        "served_top1": float(served["same"].mean()),
        "inprocess_topk_kld_same_positions": float(inproc["kl"].mean()),
        "inprocess_full_kld_same_positions": float(full[scored].mean()),
        "inprocess_full_kld_all": float(full.mean()),
        "served_s": round(served_s, 1),
    }
    out["served_over_full"] = out["served_topk_kld"] / out["inprocess_full_kld_same_positions"]
    print(json.dumps(out, indent=1))
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
