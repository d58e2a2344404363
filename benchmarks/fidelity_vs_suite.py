"""What the fidelity track buys: per cell, the seconds it took and its CI half-width / mean, next to
the suite's standard error / score at the default --limit.

    python benchmarks/fidelity_vs_suite.py                      # sweep the embedded model now
    python benchmarks/fidelity_vs_suite.py results/runs.jsonl   # or read records already made
    python benchmarks/fidelity_vs_suite.py --precisions fp32,bf16,int8,int4 --runtimes transformers,llamacpp

Target: the fidelity verdict, half-width <= 10 % of the mean KLD, in under 60 s per cell
on 2 CPU cores for the 135M model, the reference included once (it is charged to the cell that
computed it: `reference s`). A sweep of this kind reads the suite's figures from the same records,
so both columns come from one run. Times on a shared machine are upper bounds.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mindbench.store.record import Fidelity, Interval  # noqa: E402


def rows(records: list) -> list[dict]:
    out = []
    for r in records:
        c, f = r.config, r.fidelity or Fidelity()
        row = {"model": c.model, "runtime": c.runtime, "precision": c.precision, "status": r.status}
        if r.load.extra.get("requantized_from"):  # made from the shipped file: cannot beat it
            row["precision"] += f" (from {r.load.extra['requantized_from']})"
        k = f.kld
        if f.error:
            row["fidelity"] = "error: " + f.error[:60]
        elif f.is_reference:
            row["fidelity"] = "reference"
        elif k:
            rel = (k.ci_hi - k.ci_lo) / 2 / k.mean if k.mean else float("inf")
            row.update(
                {
                    "KLD": f"{k.mean:.4f}",
                    "KLD half-width/mean": f"{100 * rel:.1f}%",
                    "top-1": f"{100 * f.top1.mean:.1f}%",
                    "verdict <=10%": "yes" if rel <= 0.10 else "no",
                }
            )
        row["fidelity s"] = f.seconds
        row["reference s"] = f.extra.get("reference_s")
        row["tokens"] = f.tokens
        for suite, q in r.quality.items():
            if q.points:
                row[f"{suite} stderr/score"] = f"{100 * (q.stderr_points or 0) / q.points:.0f}% (n={q.n})"
            else:
                row[f"{suite} stderr/score"] = f"score 0 (n={q.n}): undefined"
        out.append(row)
    keys = list(dict.fromkeys(k for row in out for k in row))
    return [{k: row.get(k, "") for k in keys} for row in out]


def separation(records: list) -> list[str]:
    """Per model, the cells in order of mean KLD (the reference at 0) and, for each adjacent pair,
    whether their 95 % CIs are apart (the lower one's upper bound below the next one's lower)."""
    by_model: dict[str, list] = {}
    for r in records:
        c, f = r.config, r.fidelity or Fidelity()
        k = f.kld or (Interval(0.0, 0.0, 0.0) if f.is_reference else None)
        if k:
            by_model.setdefault(c.model, []).append((k.mean, k.ci_lo, k.ci_hi, f"{c.runtime} {c.precision}"))
    lines = []
    for model, cells in by_model.items():
        cells.sort()
        pairs = [(a, b, a[2] < b[1]) for a, b in zip(cells, cells[1:])]
        lines.append(
            f"{model}: {sum(ok for *_, ok in pairs)} of {len(pairs)} adjacent pairs apart: "
            + "  <  ".join(f"{c[3]} {c[0]:.4g} [{c[1]:.4g}, {c[2]:.4g}]" for c in cells)
        )
        lines += [f"  NOT apart: {a[3]} and {b[3]}" for a, b, ok in pairs if not ok]
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="?", help="a results JSONL file; default: run a sweep now")
    ap.add_argument("--models", default=None)
    ap.add_argument("--precisions", default="fp32,int8,int4")
    ap.add_argument("--runtimes", default="transformers")
    ap.add_argument("--suite", default="code")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fidelity-tokens", type=int, default=None)
    args = ap.parse_args(argv)
    from tabulate import tabulate

    from mindbench.store import results

    if args.results:
        records = results.read(args.results)
    else:
        from mindbench.models.catalog import DEFAULT_MODEL
        from mindbench.sweep.harness import DEFAULT_LIMIT, sweep

        out = Path(tempfile.mkdtemp(prefix="mindbench-fid-")) / "runs.jsonl"
        split = lambda s: [x for x in s.split(",") if x]  # noqa: E731
        records = sweep(
            split(args.models or DEFAULT_MODEL),
            split(args.precisions),
            split(args.runtimes),
            split(args.suite),
            out=out,
            device="cpu",
            limit=DEFAULT_LIMIT,
            threads=args.threads,
            fidelity=True,
            fidelity_tokens=args.fidelity_tokens,
            progress=False,
        )
        print(f"records: {out}", file=sys.stderr)
    print(tabulate(rows(records), headers="keys", tablefmt="github", missingval=""))
    print()
    for line in separation(records):
        print(line)
    print(
        f"\nload average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end: times are upper bounds "
        f"when other work shares the machine"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
