"""The estimator's error over a results store: per figure (weights, peak memory, decode tok/s) and
runtime, the mean absolute percentage error and the worst case. Same as
`mindbench recommend --check-estimates`; this script exists for the benchmarks/ folder's habit of
one runnable file per question.

    python benchmarks/estimate_error.py                  # every results/*.jsonl
    python benchmarks/estimate_error.py results/x.jsonl --json
"""

import json
import sys

from mindbench.decide.estimate_check import check, render_check
from mindbench.decide.recommend import load_records


def main(argv: list[str]) -> None:
    as_json = "--json" in argv
    files = [a for a in argv if a != "--json"]
    records, _ = load_records(files or None)
    rep = check(records)
    print(json.dumps(rep, indent=2) if as_json else render_check(rep))


if __name__ == "__main__":
    main(sys.argv[1:])
