"""Does a sweep separate its models? Ranks the cells of a results store on one suite and tests each
adjacent pair on the tasks both scored (exact McNemar on the flipped tasks, paired bootstrap 95% CI
of the difference, and the smallest difference this n detects), via mindbench.measure.stats.paired.
`mindbench compare` pairs a cell with the same cell of a baseline; this pairs different models.

    python benchmarks/model_pairs.py results/packaged-sweep.jsonl            # suite: code
    python benchmarks/model_pairs.py results/packaged-sweep.jsonl --suite code --json
"""

import argparse
import json
import math

from mindbench.measure import stats
from mindbench.store import results


def ranked(records: list[results.Record], suite: str) -> list[dict]:
    cells = []
    for r in records:
        q = r.quality.get(suite)
        if r.status == "ok" and q is not None and q.items:
            c = r.config
            n, p = q.n, q.value
            # Wilson 95% interval: the normal one collapses to a point at 0 or n passes
            z, centre = 1.96, (p + 1.96**2 / (2 * n)) / (1 + 1.96**2 / n)
            half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
            cells.append(
                {
                    "cell": f"{c.model} {c.runtime} {c.precision}",
                    "score": q.points,
                    "stderr": q.stderr_points,
                    "n": n,
                    "ci95": [100 * (centre - half), 100 * (centre + half)],
                    "items": q.items,
                }
            )
    return sorted(cells, key=lambda x: -x["score"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+")
    ap.add_argument("--suite", default="code")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    records = [r for f in a.files for r in results.read(f)]
    cells = ranked(records, a.suite)
    pairs = [
        dict(stats.paired(lo["items"], hi["items"], a=lo["cell"], b=hi["cell"]), better=hi["cell"], worse=lo["cell"])
        for hi, lo in zip(cells, cells[1:])
    ]
    if a.json:
        print(
            json.dumps(
                {"cells": [{k: v for k, v in c.items() if k != "items"} for c in cells], "pairs": pairs}, indent=2
            )
        )
        return
    for c in cells:
        print(
            f"{c['cell']:45s} {a.suite} {c['score']:5.1f} ± {c['stderr']:.1f} (95% CI {c['ci95'][0]:.1f}-{c['ci95'][1]:.1f}, n={c['n']})"
        )
    for p in pairs:
        print(
            f"{p['better']} vs {p['worse']}: Δ {p['diff']:+.1f} pts [{p['ci'][0]:+.1f}, {p['ci'][1]:+.1f}], "
            f"passed by only the better / only the worse {p['wrong_to_right']} / {p['right_to_wrong']}, p = {p['p']:.3g} ({p['test']}), "
            f"MDE {p['mde']:.1f} pts: {p['verdict']}"
        )


if __name__ == "__main__":
    main()
