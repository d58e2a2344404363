"""Time A and B repeat by repeat in two live processes: the A/B speed gate's measurement.

    python scripts/ab_interleave.py --a BASE_DIR --b HEAD_DIR --out ab.json
    mindbench compare ab.json --ab            # the verdict (mindbench.decide.compare.compare_interleaved)

Each side is one process started from its own tree (its package on PYTHONPATH, the same
interpreter and libraries): it loads the packaged model at each precision once, warms up with a
whole timed-length run, then waits. This script then asks for one timed repeat at a time,
alternating the sides - A B for one pair, B A for the next - so the two repeats of a pair are
seconds apart and share the host's load, and the order cancels any drift within a pair.

Why not whole sides one after the other (the gate's earlier rounds: a process per side, a few
repeats each): on a quiet 2-core host two sides of the same code a few seconds apart differed by
3-6 % while their own repeats agreed within 2 %, so a 5 % slowdown needed ~7 rounds, twice the
gate's time budget (docs/gate.md). Neighbouring repeats in two live processes differ far less,
and every pair is one paired observation.

Stops when the paired rule can decide every decode check (a regression, or the target slowdown
ruled out) at one of `--looks` evenly spaced looks (each tested at Pocock's level, so looking
does not raise the false-alarm rate), at `--max-pairs`, or when another pair would pass
`--budget-s` seconds of timing. MINDBENCH_FAULT in the environment reaches B only (the code under
test; slow_decode:0.05 is a 5 % slower decode).

The worker uses only the engine interface every mindbench commit since the gate began has:
runtimes.get_engine and Engine.timed_run, as scripts/decode_work.py does.
Exit status: 0 measured (the verdict is compare's), 2 a side failed to start or to time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m-instruct"  # the packaged model, as the gate's runs
KIND = "mindbench-ab-interleaved"
READY_TIMEOUT_S = 900  # import + load two cells + warm-up, on a busy 2-core host


# --- the worker: one side, in its own process ------------------------------------------------------


def _sample(t) -> dict:
    steps = sorted(getattr(t, "step_s", None) or ())
    med = (steps[(len(steps) - 1) // 2] + steps[len(steps) // 2]) / 2 if steps else None
    return {
        "decode_tok_s": t.decode_tok_s,
        "prefill_tok_s": t.prefill_tok_s,
        "ttft_ms": t.ttft_s * 1000,
        "itl_p50_ms": None if med is None else med * 1000,
    }


def worker(ns) -> int:
    # The protocol has stdout to itself: whatever the libraries print goes to stderr.
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def send(obj) -> None:
        proto.write(json.dumps(obj) + "\n")

    if ns.threads:
        import torch

        torch.set_num_threads(ns.threads)
    from mindbench.runtimes import get_engine

    engines = {}
    for p in ns.precisions.split(","):
        e = get_engine(MODEL, p, device="cpu")
        e.timed_run(ns.prompt_tokens, ns.new_tokens)  # warm-up: lazy imports, caches, kernels chosen
        engines[f"{MODEL}/{e.runtime}/{p}/cpu"] = e
    import mindbench

    send({"ready": sorted(engines), "pid": os.getpid(), "package": str(Path(mindbench.__file__).resolve().parent)})
    while line := sys.stdin.readline():
        cell = json.loads(line).get("cell")
        if cell is None:
            break
        send(_sample(engines[cell].timed_run(ns.prompt_tokens, ns.new_tokens)))
    return 0


# --- the driver ------------------------------------------------------------------------------------


class SideFailed(Exception):
    pass


class Side:
    def __init__(self, name: str, tree: Path, ns, log: Path, fault: str | None):
        env = dict(os.environ)
        env.pop("MINDBENCH_FAULT", None)
        if fault:
            env["MINDBENCH_FAULT"] = fault
        env["PYTHONPATH"] = str(tree)
        self.name, self.log = name, log
        args = [sys.executable, str(Path(__file__).resolve()), "--worker", "--precisions", ns.precisions]
        args += ["--prompt-tokens", str(ns.prompt_tokens), "--new-tokens", str(ns.new_tokens)]
        if ns.threads:
            args += ["--threads", str(ns.threads)]
        self.proc = subprocess.Popen(
            args,
            cwd=tree,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            text=True,
            bufsize=1,
        )

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            tail = self.log.read_text(errors="replace").strip().splitlines()[-5:]
            raise SideFailed(f"side {self.name} stopped (exit {self.proc.returncode}): " + " | ".join(tail))
        return json.loads(line)

    def time(self, cell: str) -> dict:
        self.proc.stdin.write(json.dumps({"cell": cell}) + "\n")
        return self.read()

    def close(self) -> None:
        try:
            self.proc.stdin.write("{}\n")
            self.proc.stdin.close()
            self.proc.wait(timeout=30)
        except (OSError, subprocess.TimeoutExpired, ValueError):
            self.proc.kill()


def _machine() -> dict:
    from mindbench.models.hardware import detect

    hw = detect()
    return {
        "cpu": hw.cpu,
        "cores": hw.cores,
        "cpu_features": hw.cpu_features,
        "fingerprint": hw.fingerprint,
        "speed_fingerprint": hw.speed_fingerprint,
    }


def _commit(tree: Path) -> str | None:
    r = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True)
    return r.stdout.strip() or None


def look_points(max_pairs: int, looks: int, min_pairs: int) -> list[int]:
    """Evenly spaced looks at accumulating pairs, the last at max_pairs; none before min_pairs."""
    pts = sorted({max(min_pairs, round(max_pairs * j / looks)) for j in range(1, looks + 1)})
    return [p for p in pts if p <= max_pairs]


def measure(ns, progress=print) -> dict:
    """Run the interleaved pairs; the result is what `mindbench compare FILE --ab` reads."""
    from mindbench.decide.compare import compare_interleaved

    logs = Path(ns.out).parent
    fault = os.environ.get("MINDBENCH_FAULT") or None
    started = time.time()
    sides = {
        "a": Side("A", Path(ns.a), ns, logs / "ab_a.log", None),
        "b": Side("B", Path(ns.b), ns, logs / "ab_b.log", fault),
    }
    try:
        ready = {k: s.read() for k, s in sides.items()}  # both load at once: loading is not timed
        for k, s in sides.items():
            # an installed mindbench found before the side's tree would make every run an A/A run
            tree = (Path(ns.a) if k == "a" else Path(ns.b)).resolve()
            if not Path(ready[k]["package"]).is_relative_to(tree):
                raise SideFailed(f"side {s.name} imported mindbench from {ready[k]['package']}, not from {tree}")
        cells = ready["a"]["ready"]
        if cells != ready["b"]["ready"]:
            raise SideFailed(f"the sides load different cells: A {cells}, B {ready['b']['ready']}")
        data = {
            "kind": KIND,
            "version": 1,
            "a": {"tree": str(ns.a), "commit": _commit(Path(ns.a))},
            "b": {"tree": str(ns.b), "commit": _commit(Path(ns.b)), "fault": fault},
            "machine": _machine(),
            "settings": {
                "prompt_tokens": ns.prompt_tokens,
                "new_tokens": ns.new_tokens,
                "threads": ns.threads,
                "max_pairs": ns.max_pairs,
                "budget_s": ns.budget_s,
                "looks": ns.looks,
            },
            "load_s": round(time.time() - started, 1),
            "cells": {c: {"a": [], "b": [], "first": [], "t": []} for c in cells},
        }
        points = look_points(ns.max_pairs, ns.looks, ns.min_pairs)
        t0 = time.monotonic()
        load0 = os.getloadavg()[0]
        pairs, stop = 0, "max pairs"
        while pairs < ns.max_pairs:
            for i, cell in enumerate(cells):
                order = ("a", "b") if (pairs + i) % 2 == 0 else ("b", "a")
                row = data["cells"][cell]
                row["t"].append(round(time.monotonic() - t0, 3))
                for side in order:
                    row[side].append(sides[side].time(cell))
                row["first"].append(order[0].upper())
            pairs += 1
            elapsed = time.monotonic() - t0
            progress(f"pair {pairs}/{ns.max_pairs}: {elapsed:.0f} s")
            if pairs in points and pairs < ns.max_pairs and ns.looks > 1:
                r = compare_interleaved(data, looks=len(points))
                if r["regressions"] or not r["undecided"]:
                    stop = f"decided at look {points.index(pairs) + 1} of {len(points)}"
                    break
            if elapsed + elapsed / pairs > ns.budget_s:
                stop = f"time budget ({ns.budget_s:g} s)"
                break
        data.update(
            pairs=pairs,
            looks=len(points),
            stopped=stop,
            timing_s=round(time.monotonic() - t0, 1),
            load_average=[round(load0, 2), round(os.getloadavg()[0], 2)],
        )
        return data
    finally:
        for s in sides.values():
            s.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--a", type=Path, help="the baseline's tree (its package is imported from here)")
    ap.add_argument("--b", type=Path, default=ROOT, help="the tree under test (default: this one)")
    ap.add_argument("--out", type=Path, help="where the pairs go (JSON)")
    ap.add_argument("--precisions", default="fp32,int4")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=None, help="torch threads per side (default: every core)")
    ap.add_argument("--max-pairs", type=int, default=40, help="pairs per cell at most")
    ap.add_argument("--min-pairs", type=int, default=12, help="no look before this many pairs")
    ap.add_argument("--looks", type=int, default=3, help="looks at the accumulating pairs (Pocock's level each)")
    ap.add_argument("--budget-s", type=float, default=300.0, help="no new pair once another would pass this")
    ns = ap.parse_args(argv)
    if ns.worker:
        return worker(ns)
    if not ns.a or not ns.out:
        ap.error("--a and --out are required")
    for flag, v in (("--max-pairs", ns.max_pairs), ("--looks", ns.looks), ("--new-tokens", ns.new_tokens - 1)):
        if v < 1:
            ap.error(f"{flag} is too small")
    sys.path.insert(0, str(ROOT))
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = measure(ns, progress=lambda s: print(s, file=sys.stderr, flush=True))
    except SideFailed as e:
        print(f"Error: {e}", file=sys.stderr)
        return 2
    ns.out.write_text(json.dumps(data) + "\n")
    print(
        f"{data['pairs']} pairs a cell in {data['timing_s']:.0f} s ({data['stopped']}); wrote {ns.out}", file=sys.stderr
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
