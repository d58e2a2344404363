"""Work per decoded token that does not depend on the machine's load: Python-level calls.

    python scripts/decode_work.py [--precisions fp32,int4] [--out work.json]
    python scripts/decode_work.py --compare A.json B.json [--tol 0.01]

Wall time on a shared 2-core host moves 10-20 % with the neighbours; the number of Python function
calls the engine makes per decoded token does not move at all for the same code, inputs and
libraries, so a change that adds Python work to the decode loop (an extra hook, a per-token
re-tokenization, a logits copy through Python) shows up exactly, on any host. It is counted with
sys.setprofile ("call": Python functions, "c_call": C functions called from Python) around two
timed runs of different lengths, and differenced, so the prompt, the set-up and the first token
cancel out: calls per token = (calls(long) - calls(short)) / (long - short).

What it cannot see: work inside C/C++ kernels (a slower matmul, a lost SIMD path); that is the
wall-time gate's job. Hardware counters (perf stat -e instructions) would see it too, but they are
not exposed in the containers and VMs this runs on (perf: "instructions:u <not supported>").

scripts/ci_gate.sh runs this file against both sides of the A/B run (each side's own package on
PYTHONPATH), so it uses only the engine interface both have: runtimes.get_engine and timed_run.
Exit status of --compare: 0 equal or less work, 1 more work per token than --tol allows, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys

MODEL = "smollm2-135m-instruct"
PROMPT, SHORT, LONG = 16, 4, 12


def count_calls(fn) -> dict:
    counts = {"call": 0, "c_call": 0}

    def profile(frame, event, arg):
        if event in counts:
            counts[event] += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return counts


def per_token(engine) -> dict:
    engine.timed_run(PROMPT, LONG)  # warm-up: lazy imports and caches are not per token
    short = count_calls(lambda: engine.timed_run(PROMPT, SHORT))
    long = count_calls(lambda: engine.timed_run(PROMPT, LONG))
    return {k: (long[k] - short[k]) / (LONG - SHORT) for k in short}


def measure(precisions: list[str]) -> dict:
    from mindbench.runtimes import get_engine

    out = {}
    for p in precisions:
        e = get_engine(MODEL, p, device="cpu")
        try:
            out[f"{MODEL}/{e.runtime}/{p}/cpu"] = per_token(e)
        finally:
            e.unload()
    return out


def compare(a: dict, b: dict, tol: float) -> tuple[list[str], int]:
    """Lines for people, and the exit status: 1 when B makes more calls per token than A x (1 + tol)."""
    lines, worse = [], 0
    for cell in sorted(a.keys() & b.keys()):
        for kind in ("call", "c_call"):
            x, y = a[cell][kind], b[cell][kind]
            more = y > x * (1 + tol) + 1e-9
            worse += more
            lines.append(
                f"{cell} {kind}s per decoded token: {x:.1f} -> {y:.1f} "
                f"({'+' if y >= x else ''}{y - x:.1f}){'  MORE WORK' if more else ''}"
            )
    if not lines:
        return ["decode work not compared: no cell on both sides"], 2
    return lines, 1 if worse else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--precisions", default="fp32,int4")
    ap.add_argument("--out")
    ap.add_argument("--compare", nargs=2, metavar=("A", "B"))
    ap.add_argument(
        "--tol",
        type=float,
        default=0.0,
        help="allowed rise as a fraction (default 0: the count is exact, any rise is more work)",
    )
    ns = ap.parse_args(argv)
    if ns.compare:
        try:
            a, b = (json.load(open(p)) for p in ns.compare)
        except (OSError, ValueError) as e:
            print(f"Error: {e}", file=sys.stderr)
            return 2
        lines, rc = compare(a, b, ns.tol)
        print("\n".join(lines))
        return rc
    result = measure([p for p in ns.precisions.split(",") if p])
    text = json.dumps(result, indent=1)
    if ns.out:
        with open(ns.out, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
