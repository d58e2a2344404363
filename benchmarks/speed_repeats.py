"""How long must the speed stage run? Would shorter timed repeats reach its CI sooner?

The speed stage of `mindbench run` (measure/speed.py) times repeats of `prompt + new` tokens until
the 95 % CI of the mean decode tok/s is within CI_TARGET (5 %) of it. On a 2-core host it is a
large share of the default command (a fifth to a third of a cell), so the question is whether the
same precision could be had in less time. This benchmark times `--repeats` repeats of one cell's
shape with every decode step kept, then replays the stage's stopping rule on the same steps cut
into repeats of the full length, half and a quarter (each cut repeat pays the prompt again, as a
real one would), so noise hits every variant alike. The replay starts at each recorded repeat in
turn (wrapping round), so one run gives as many stopping times per variant as it has repeats, and
each stopped figure is set against the mean of every recorded step: a rule whose figures land
further from it than its CI says only looks precise. It also prints the lag-1 autocorrelation of
the decode steps and of the repeats' means: near 0 the noise is fast and shorter repeats average
it as well; well above 0 it drifts over seconds, and only time spent measuring narrows it.

    python benchmarks/speed_repeats.py [--model qwen2.5-coder-0.5b-instruct] [--repeats 10]

Measured 2026-12-06 16:20-16:33 UTC, 2 cores AMD EPYC, AVX2 + AVX-512F + AVX512_BF16/VNNI (no
AMX), quiet (load 0.4-1.8, the runs themselves), Qwen2.5-Coder-0.5B fp32, 2 threads, two runs of
10 repeats of 256 + 64 (decode 10.4-12.1 and 9.2-11.2 tok/s; steps' lag-1 autocorrelation 0.70
and 0.72: the noise drifts over seconds). Median seconds to the 5 % CI over the 10 starts / how
far the stopped figure lands from the whole run's at most:

| repeat length | run 1 | run 2 |
| --- | --- | --- |
| 63 steps (the stage's) | 31.1 s / 7.3 % | 31.1 s / 5.0 % |
| 31 steps | 17.8 s / 7.8 % | 20.2 s / 6.0 % |
| 15 steps | 12.5 s / 11.1 % | 12.0 s / 13.5 % |

Shorter repeats stop sooner only because neighbouring short repeats share the same slow noise, so
their spread understates it: their figure lands up to 11-14 % off while its CI says 5 %. The
stage keeps its length (docs/time_to_score.md, "What is left").
"""

from __future__ import annotations

import argparse
import json
import statistics


def replay(repeats: list[list[float]], prefill_s: float, pieces: int, target: float, min_repeats: int):
    """The stage's stopping rule on the recorded steps, each repeat cut into `pieces` repeats:
    (repeats taken, seconds they cost, CI reached or None when the target never was, the mean
    decode tok/s it would have reported)."""
    from mindbench.measure.speed import ci_rel

    cut = [r[i * len(r) // pieces : (i + 1) * len(r) // pieces] for r in repeats for i in range(pieces)]
    rates, spent = [], 0.0
    for steps in cut:
        rates.append(len(steps) / sum(steps))
        spent += prefill_s + sum(steps)
        ci = ci_rel(rates)
        if len(rates) >= min_repeats and ci <= target:
            return len(rates), spent, ci, statistics.mean(rates)
    return len(rates), spent, None, statistics.mean(rates)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--prompt-tokens", type=int, default=256)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--min-repeats", type=int, default=3, help="the stage's minimum (CellSpec.repeats)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--json", default=None, help="also write every repeat's steps here")
    args = ap.parse_args()
    if args.repeats < args.min_repeats or args.new_tokens < 9:
        raise SystemExit("need --repeats >= --min-repeats and --new-tokens >= 9 (a quarter must have 2 steps)")

    import torch

    from mindbench.measure.speed import CI_TARGET, WARMUP_NEW_TOKENS
    from mindbench.measure.stats import lag1_autocorrelation
    from mindbench.models.hardware import cpu_info
    from mindbench.runtimes import get_engine

    if args.threads:
        torch.set_num_threads(args.threads)
    eng = get_engine(args.model, args.precision, device="cpu")
    print(
        f"{args.model} {args.precision}, {torch.get_num_threads()} threads, "
        f"CPU features: {' '.join(cpu_info().get('features') or ['?'])}"
    )
    eng.timed_run(args.prompt_tokens, WARMUP_NEW_TOKENS)  # the stage's warm-up
    runs = []
    for i in range(args.repeats):
        t = eng.timed_run(args.prompt_tokens, args.new_tokens)
        runs.append({"prefill_s": t.prefill_s, "steps": list(t.step_s)})
        print(f"  repeat {i + 1}: decode {t.decode_tok_s:.2f} tok/s, prefill {t.prefill_s:.2f} s", flush=True)
    eng.unload()

    steps = [s for r in runs for s in r["steps"]]
    means = [statistics.mean(r["steps"]) for r in runs]
    prefill = statistics.mean(r["prefill_s"] for r in runs)
    print(
        f"\nlag-1 autocorrelation: decode steps {lag1_autocorrelation(steps):.2f}, "
        f"repeats' mean steps {lag1_autocorrelation(means):.2f}"
    )
    print(f"stopping rule (CI <= {CI_TARGET:.0%}, at least {args.min_repeats} repeats) on the same steps:")
    recorded = [r["steps"] for r in runs]
    whole = len(steps) / sum(steps)  # decode tok/s over every recorded step
    print(f"decode over every recorded step: {whole:.2f} tok/s")
    for pieces in (1, 2, 4):
        starts = [
            replay(recorded[i:] + recorded[:i], prefill, pieces, CI_TARGET, args.min_repeats) for i in range(len(runs))
        ]
        reached = [(n, spent, abs(est / whole - 1)) for n, spent, ci, est in starts if ci is not None]
        size = len(recorded[0]) // pieces
        if not reached:
            print(f"  repeats of ~{size} decode steps: CI never reached")
            continue
        secs = sorted(spent for _, spent, _ in reached)
        off = sorted(err for _, _, err in reached)
        print(
            f"  repeats of ~{size} decode steps: CI reached from {len(reached)}/{len(starts)} starts after a median "
            f"{statistics.median(secs):.1f} s (range {secs[0]:.1f}-{secs[-1]:.1f}), "
            f"{statistics.median(n for n, _, _ in reached):.0f} repeats; its figure off the whole run's by a median "
            f"{statistics.median(off):.1%}, at most {off[-1]:.1%}"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f)


if __name__ == "__main__":
    main()
