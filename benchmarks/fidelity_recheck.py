"""What does reusing the cached fidelity reference save the reference cell?

The reference precision's cell (fp32 on a CPU: the only cell of the default `mindbench run
--precisions fp32`) used to re-run the whole cached text to check its engine still gives the
cached distributions; it now re-runs the first document (mindbench/suites/fidelity.for_cell).
Side by side in one process, one loaded model, alternating (full, first, first, full, ...) so
noise hits both alike: seconds of each pass, tokens fed, the largest KL seen (both ~0), and the
ratio first-document / full.

    python benchmarks/fidelity_recheck.py [--model smollm2-135m-instruct] [--tokens 4096] [--rounds 2] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--tokens", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    import torch

    from mindbench.runtimes import get_engine
    from mindbench.suites import fidelity

    if args.threads:
        torch.set_num_threads(args.threads)
    engine = get_engine(args.model, "fp32", device="cpu")
    with tempfile.TemporaryDirectory() as cache:
        ref, built_s, _ = fidelity.reference_for(engine, args.tokens, cache, model=args.model)
        first = fidelity.head(ref, 1)
        times: dict[str, list[float]] = {"full": [], "first": []}
        worst: dict[str, float] = {}
        order = [k for r in range(args.rounds) for k in (("full", "first") if r % 2 == 0 else ("first", "full"))]
        for kind in order:
            r = ref if kind == "full" else first
            t = time.perf_counter()
            per_token, _ = fidelity.run_pass(engine, r.docs, r)
            times[kind].append(time.perf_counter() - t)
            worst[kind] = max(worst.get(kind, 0.0), float(per_token["kl"].max()))
    engine.unload()
    feats = sorted({f for f in open("/proc/cpuinfo").read().split() if f in ("avx2", "avx512f", "amx_tile")})
    print(
        f"{args.model} fp32, {ref.tokens} reference tokens in {len(ref.docs)} documents "
        f"(built in {built_s:.1f} s), torch threads {torch.get_num_threads()}, CPU {' '.join(feats)}"
    )
    for kind, r in (("full", ref), ("first", first)):
        print(
            f"  re-check {kind:5s}: {r.tokens:5d} tokens, median {statistics.median(times[kind]):6.2f} s "
            f"({', '.join(f'{x:.2f}' for x in times[kind])}), max KL {worst[kind]:.2e}"
        )
    print(f"  first / full: {statistics.median(times['first']) / statistics.median(times['full']):.2f}")


if __name__ == "__main__":
    main()
