"""How often does the A/B speed gate cry wolf, and how often does it miss a real slowdown?

    python benchmarks/gate_power.py record --rounds 20     # interleaved rounds, every repeat kept
    python benchmarks/gate_power.py analyse [--json]       # the table: rule x effect -> detection rate

`record` times what the gate's A/B step times (scripts/ci_gate.sh: the packaged model at fp32
and int4, 128 prompt tokens, 32 new tokens, through the engines' own timed_run) in interleaved
rounds, and keeps every timed repeat once. A round holds an A side and a B side of the same code
(an A/A pair: any difference is noise) in alternating order, and every third round also an F side
under MINDBENCH_FAULT=slow_decode:0.05 (a real 5 % slower decode, inside the decode loop). Beside
each side: the load average and the CPU share that other processes and the hypervisor took during
it (/proc/stat), since the host this was written on is shared.

One process, each cell loaded once: on the shared 2-core host this was built on, one gate-style
side per process (import, load both cells, warm up, time) took over 11 minutes at load 13, so a
process per side could not record enough rounds. The cost: the rounds here share one process,
so any variation between processes (weights placed elsewhere in memory, another thread layout)
is missing from the A/A noise, and the real gate, one process per side, sees more. docs/gate.md
says how the chosen rule guards against that.

`analyse` resamples the recorded rounds to estimate, for each candidate decision rule, its
false-alarm rate (A/A: how often an honest change fails CI) and its power at 3, 5, 10 and 20 %
(a decode that takes that much longer per token): a simulated gate run draws its rounds without
replacement from the recorded ones, and the B side's decode is slowed by exactly the effect (every
repeat's tok/s / (1 + f): what the fault does per step). The F sides check that this synthetic
slowdown behaves like the injected one. Rates carry Wilson 95 % intervals over the simulated runs;
those runs share recorded rounds, so the intervals are a floor on the uncertainty (the table says
how many rounds each rate rests on).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

OUT = ROOT / "results" / "gate" / "power" / "rounds.jsonl"
PRECISIONS = ("fp32", "int4")
PROMPT, NEW = 128, 32  # the gate's --prompt-tokens and --new-tokens
EFFECTS = (0.0, 0.03, 0.05, 0.10, 0.20)
FAULT = "slow_decode:0.05"


# --- recording ------------------------------------------------------------------------------------


def _cpu_times() -> tuple[float, float]:
    """(busy, steal) seconds over all CPUs since boot, from /proc/stat."""
    v = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    return (v[0] + v[1] + v[2] + v[5] + v[6]) / hz, (v[7] if len(v) > 7 else 0) / hz


def _own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def run_side(engines: dict, repeats: int, fault: str | None) -> dict:
    from mindbench.measure.speed import _samples

    if fault:
        os.environ["MINDBENCH_FAULT"] = fault
    else:
        os.environ.pop("MINDBENCH_FAULT", None)
    load0, (b0, s0), w0, own0 = os.getloadavg(), _cpu_times(), time.time(), _own_cpu()
    try:
        cells = {key: _samples([e.timed_run(PROMPT, NEW) for _ in range(repeats)]) for key, e in engines.items()}
    finally:
        os.environ.pop("MINDBENCH_FAULT", None)
    wall, (b1, s1), own = time.time() - w0, _cpu_times(), _own_cpu() - own0
    cpus = os.cpu_count() or 1
    return {
        "wall_s": round(wall, 2),
        "load_before": [round(x, 2) for x in load0],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        # others' CPU time (all busy time less ours) and steal, per CPU-second of the side
        "host_other_frac": round(max(0.0, (b1 - b0) - own) / (wall * cpus), 4),
        "steal_frac": round((s1 - s0) / (wall * cpus), 4),
        "cells": cells,
    }


def record(
    rounds: int, repeats: int, out: Path, fault_every: int, precisions=PRECISIONS, threads: int | None = None
) -> None:
    from mindbench.models.catalog import DEFAULT_MODEL
    from mindbench.runtimes import get_engine

    if threads:
        import torch

        torch.set_num_threads(threads)
    out.parent.mkdir(parents=True, exist_ok=True)
    batch = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    engines = {}
    for precision in precisions:
        e = get_engine(DEFAULT_MODEL, precision, device="cpu")
        e.timed_run(PROMPT, NEW)  # warm-up, as measure_speed does
        engines[f"{DEFAULT_MODEL}/{e.runtime}/{precision}/cpu"] = e
    for i in range(rounds):
        order = ["A", "B"] if i % 2 == 0 else ["B", "A"]  # as the gate: A B, then B A
        if fault_every and i % fault_every == fault_every - 1:
            order.insert(1 + (i // fault_every) % 2, "F")
        for pos, name in enumerate(order):
            fault = FAULT if name == "F" else None
            row = run_side(engines, repeats, fault)
            row.update(
                batch=batch,
                round=i,
                side=name,
                pos=pos,
                fault=fault,
                repeats=repeats,
                threads=threads,
                t=time.strftime("%H:%M:%S", time.gmtime()),
            )
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(
                f"[{row['t']}] round {i + 1}/{rounds} {name}: {row['wall_s']:.0f} s, load {row['load_before'][0]:.1f}, "
                f"others took {row['host_other_frac']:.0%} of the CPUs; "
                + ", ".join(
                    f"{k.split('/')[2]} {sum(v['decode_tok_s']) / len(v['decode_tok_s']):.1f} tok/s"
                    for k, v in row["cells"].items()
                ),
                file=sys.stderr,
                flush=True,
            )


LIVE_OUT = ROOT / "results" / "gate" / "power" / "live.jsonl"


def record_live(runs: int, pairs: int, out: Path, fault_every: int, threads: int | None) -> None:
    """Whole interleaved runs as the gate makes them (scripts/ab_interleave.py: two live processes,
    A and B timed repeat by repeat), each from a fresh pair of processes, with no early stop, so
    every prefix of a run is a gate run of that many pairs. A is a git worktree of this tree's
    commit, B this tree: an A/A pair of processes (any difference is noise, the processes' own
    included); every `fault_every`-th run B decodes under MINDBENCH_FAULT=slow_decode:0.05."""
    import subprocess
    import tempfile
    from types import SimpleNamespace

    sys.path.insert(0, str(ROOT / "scripts"))
    import ab_interleave

    out.parent.mkdir(parents=True, exist_ok=True)
    batch = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "a"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--quiet", "--detach", str(tree), "HEAD"], check=True
        )
        try:
            for i in range(runs):
                fault = FAULT if fault_every and i % fault_every == fault_every - 1 else None
                ns = SimpleNamespace(
                    a=tree,
                    b=ROOT,
                    out=Path(tmp) / "run.json",
                    precisions=",".join(PRECISIONS),
                    prompt_tokens=PROMPT,
                    new_tokens=NEW,
                    threads=threads,
                    max_pairs=pairs,
                    min_pairs=pairs,
                    looks=1,
                    budget_s=1e9,
                )
                if fault:
                    os.environ["MINDBENCH_FAULT"] = fault
                try:
                    data = ab_interleave.measure(ns, progress=lambda _: None)
                finally:
                    os.environ.pop("MINDBENCH_FAULT", None)
                data.update(batch=batch, run=i, t=time.strftime("%H:%M:%S", time.gmtime()))
                with out.open("a") as f:
                    f.write(json.dumps(data) + "\n")
                print(
                    f"[{data['t']}] run {i + 1}/{runs}{' (fault)' if fault else ''}: {data['pairs']} pairs in "
                    f"{data['timing_s']:.0f} s (+{data['load_s']:.0f} s to load), load {data['load_average']}",
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)


def _rate_cells(rates: dict) -> list[str]:
    """Each effect's detection rate with its Wilson 95 % interval, as the tables print them."""
    from mindbench.measure import stats

    out = []
    for f in EFFECTS:
        h, n = rates[f]
        lo, hi = stats.wilson(h, n)
        out.append(f"{100 * h / n:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}]")
    return out


def load_live(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _live_pairs(run: dict, figure: str) -> dict[str, list[tuple[float, float]]]:
    """Each cell's (A, B) pairs as tok/s (the median step turned into tok/s, so one rule judges both)."""
    out = {}
    for cell, row in run["cells"].items():
        if figure == "itl_p50_ms":
            out[cell] = [(1000 / a["itl_p50_ms"], 1000 / b["itl_p50_ms"]) for a, b in zip(row["a"], row["b"])]
        else:
            out[cell] = [(a[figure], b[figure]) for a, b in zip(row["a"], row["b"])]
    return out


def live_rule(
    pairs: dict[str, list[tuple[float, float]]],
    f: float,
    n: int,
    looks: list[int],
    paired: bool,
    serial: bool,
    floor: float | None = None,
) -> tuple[str, int]:
    """One simulated gate run on the first n pairs: B's decode slowed by exactly f; looks at the
    given pair counts (Pocock's level for their number); unpaired = the same repeats judged by the
    Mann-Whitney interval of the two sides' pools (the rule for rounds)."""
    from mindbench.decide.compare import (
        AB_FLOOR,
        AB_PAIRED_FLOOR,
        AB_TARGET,
        ab_alpha,
        paired_shift_check,
        shift_check,
        shift_verdict,
    )

    alpha2 = ab_alpha(max(GATE_CELLS, len(pairs)), len(looks))
    for at in looks:
        out = []
        for cell, ps in pairs.items():
            a = [x for x, _ in ps[:at]]
            b = [y / (1 + f) for _, y in ps[:at]]
            if paired:
                r = paired_shift_check(a, b, True, alpha2)
                if not serial and r["serial"] > 0:  # the interval before widening for neighbours
                    r["ci"] = _unwidened(a, b, alpha2)
            else:
                r = shift_check(a, b, True, alpha2)
            out.append(
                shift_verdict(r["ci"], (AB_PAIRED_FLOOR if paired else AB_FLOOR) if floor is None else floor, AB_TARGET)
            )
        v = _combine(out)
        if v != "not decided":
            return v, at
    return v, looks[-1]


def _unwidened(a, b, alpha2):
    from mindbench.measure import stats

    d = [math.log(x) - math.log(y) for x, y in zip(a, b)]
    ci = stats.paired_shift_ci(d, alpha2)
    return None if ci is None else [math.expm1(ci[0]), math.expm1(ci[1])]


def _draw(pairs: dict, n_rec: int, n: int, rng, flip: bool | None = None) -> dict:
    """n pairs a cell drawn with replacement from one recorded run (its processes' own offset
    kept); which honest side plays B is arbitrary (flip=None: a coin decides)."""
    if flip is None:
        flip = rng.random() < 0.5
    idx = [rng.randrange(n_rec) for _ in range(n)]
    return {c: [(ps[i][1], ps[i][0]) if flip else ps[i] for i in idx] for c, ps in pairs.items()}


def _confirmed_run(runs: list[dict], i: int, f: float, n_rec: int, looks: list[int], rng, flip=None):
    """One simulated CI gate run on recorded run i (B slowed by f) and, when it flags a
    regression, its confirmation drawn from another recorded run (fresh processes). Returns
    (verdict, pairs used, the confirmation's verdict or None, its pairs)."""
    v, at = live_rule(_draw(runs[i], n_rec, looks[-1], rng, flip), f, looks[-1], looks, True, True)
    if v != "regression" or len(runs) < 2:
        return v, at, None, 0
    j = rng.choice([k for k in range(len(runs)) if k != i])
    v2, at2 = live_rule(_draw(runs[j], n_rec, looks[-1], rng, flip), f, looks[-1], looks, True, True)
    return v, at, v2, at2


def analyse_live(ns) -> int:
    from statistics import median, stdev

    from mindbench.measure import stats

    runs = load_live(ns.live_file)
    if ns.runs:
        keep = {int(x) for x in ns.runs.split(",")}
        runs = [r for r in runs if r["run"] in keep]
    honest = [r for r in runs if not (r.get("b") or {}).get("fault")]
    faulty = [r for r in runs if (r.get("b") or {}).get("fault")]
    if len(honest) < 2:
        raise SystemExit(f"{ns.live_file}: {len(honest)} A/A runs; record at least 2 (record-live)")
    n_rec = min(len(row["a"]) for r in runs for row in r["cells"].values())
    per_pair = median(r["timing_s"] / r["pairs"] for r in runs)
    load_s = median(r["load_s"] for r in runs)
    thirds = [round(n_rec * j / 3) for j in (1, 2, 3)]
    # (name, figure, paired, widen for neighbours, looks, floor); every rule at the same 1 % floor
    # but the last, so the rows differ in one thing each
    seq = "/".join(map(str, thirds))
    rules = [(f"paired signed-rank, {n} pairs", "decode_tok_s", True, True, [n], 0.01) for n in (16, 24, 32, n_rec)]
    rules += [
        (f"paired, {n_rec} pairs, each repeat's median step", "itl_p50_ms", True, True, [n_rec], 0.01),
        (f"paired, {n_rec} pairs, no widening for neighbours", "decode_tok_s", True, False, [n_rec], 0.01),
        (f"unpaired Mann-Whitney on the same {n_rec} pairs", "decode_tok_s", False, True, [n_rec], 0.01),
        (f"sequential paired, looks at {seq} pairs, beyond 1 % (CI)", "decode_tok_s", True, True, thirds, 0.01),
        (f"sequential paired, looks at {seq} pairs, beyond 2 %", "decode_tok_s", True, True, thirds, 0.02),
    ]
    rng = random.Random(0)
    sims = max(1, ns.sims // len(honest))
    table = []
    for name, fig, paired, serial, looks, floor in rules:
        row = {"rule": name, "rates": {}, "undecided": {}, "pairs": {}}
        for f in EFFECTS:
            hits = undecided = used = total = 0
            for run in honest:
                base = _live_pairs(run, fig)
                for _ in range(sims):
                    v, at = live_rule(_draw(base, n_rec, looks[-1], rng), f, looks[-1], looks, paired, serial, floor)
                    hits += v == "regression"
                    undecided += v == "not decided"
                    used += at
                    total += 1
            row["rates"][f] = (hits, total)
            row["undecided"][f] = undecided / total
            row["pairs"][f] = used / total
        row["wall_s"] = load_s + per_pair * max(row["pairs"].values())
        row["worst_s"] = load_s + per_pair * looks[-1]
        table.append(row)
    # The CI rule with a confirmation: a flagged regression is timed again by a fresh pair of
    # processes (drawn from another recorded run, so its processes and its stretch of the host's
    # load are new) before the gate fails. Two ways to read the second run: "both" fails only
    # when it flags again; "cleared by ok" fails unless it rules the 5 % target out.
    all_pairs = [_live_pairs(r, "decode_tok_s") for r in honest]
    for mode in ("both flag", "cleared only by ok"):
        row = {"rule": f"sequential paired (CI rule), a flag confirmed by fresh processes: {mode}"}
        row.update(rates={}, undecided={}, pairs={})
        for f in EFFECTS:
            fails = undecided = used = total = 0
            for i in range(len(honest)):
                for _ in range(sims):
                    v, at, v2, at2 = _confirmed_run(all_pairs, i, f, n_rec, thirds, rng)
                    used += at + at2
                    if v2 is not None:
                        fails += v2 == "regression" if mode == "both flag" else v2 != "ok"
                    undecided += v == "not decided"
                    total += 1
            row["rates"][f] = (fails, total)
            row["undecided"][f] = undecided / total
            row["pairs"][f] = used / total
        row["wall_s"] = load_s + per_pair * max(row["pairs"].values())
        row["worst_s"] = 2 * (load_s + per_pair * thirds[-1])
        table.append(row)
    # the processes' own offset: each A/A run's estimate against what its pairs' spread explains
    offsets = {}
    for cell in honest[0]["cells"]:
        est, within = [], []
        for run in honest:
            d = [math.log(a) - math.log(b) for a, b in _live_pairs(run, "decode_tok_s")[cell]]
            est.append(stats.paired_hodges_lehmann(d))
            within.append(stdev(d) ** 2 / len(d))
        between = max(0.0, stdev(est) ** 2 - sum(within) / len(within)) if len(est) > 1 else 0.0
        offsets[cell.split("/")[2]] = {
            "runs": [round(100 * x, 2) for x in est],
            "sd_pct": round(100 * stdev(est), 2),
            "explained_sd_pct": round(100 * math.sqrt(sum(within) / len(within)), 2),
            "process_sd_pct": round(100 * math.sqrt(between), 2),
        }
    real = {}
    for run in faulty:
        for cell, ps in _live_pairs(run, "decode_tok_s").items():
            d = [math.log(a) - math.log(b) for a, b in ps]
            real.setdefault(cell.split("/")[2], []).append(round(100 * math.expm1(stats.paired_hodges_lehmann(d)), 2))
    detect = confirmed = None
    if faulty:
        hits = total = both = cleared = 0
        fault_pairs = [_live_pairs(run, "decode_tok_s") for run in faulty]
        for i in range(len(fault_pairs)):
            for _ in range(sims):
                # the confirmation, when there is one, comes from another faulty run's processes
                v, _, v2, _ = _confirmed_run(fault_pairs, i, 0.0, n_rec, thirds, rng, flip=False)
                hits += v == "regression"
                total += 1
                if v2 is not None:
                    both += v2 == "regression"
                    cleared += v2 != "ok"
        detect = (hits, total)
        if len(faulty) > 1:  # a confirmation needs a second faulty run's processes
            confirmed = {"both flag": (both, total), "cleared only by ok": (cleared, total)}
    loads = sorted(x for r in runs for x in r["load_average"])
    if ns.json:
        print(
            json.dumps(
                {
                    "runs": len(runs),
                    "honest": len(honest),
                    "faulty": len(faulty),
                    "table": table,
                    "offsets": offsets,
                    "real_fault": real,
                    "real_detect": detect,
                    "real_detect_confirmed": confirmed,
                },
                indent=1,
                default=str,
            )
        )
        return 0
    m = honest[0]["machine"]
    print(
        f"{len(honest)} A/A runs and {len(faulty)} with B under {FAULT}, each a fresh pair of live processes, "
        f"{n_rec} pairs a cell (fp32, int4), {PROMPT} + {NEW} tokens, threads {honest[0]['settings']['threads'] or 'all'}; "
        f"{m['cpu']}, {m['cores']} cores, {', '.join(f for f in (m['cpu_features'] or []) if f in ('avx2', 'avx512f', 'amx_tile'))}; "
        f"load average {loads[0]:.1f}-{loads[-1]:.1f}; {per_pair:.1f} s a pair (both cells), {load_s:.0f} s to start both sides"
    )
    head = "| rule | pairs (A/A / +5 %) | " + " | ".join(
        "A/A false alarm" if f == 0 else f"+{100 * f:g} %" for f in EFFECTS
    )
    print(head + " | not decided at +5 % | timing wall at this recording's pace (est.) |")
    print("|" + "---|" * (len(EFFECTS) + 4))
    for r in table:
        cells = _rate_cells(r["rates"])
        worst = f" (at most {r['worst_s'] / 60:.1f})" if r["worst_s"] > r["wall_s"] + 1 else ""
        print(
            f"| {r['rule']} | {r['pairs'][0.0]:.0f} / {r['pairs'][0.05]:.0f} | "
            + " | ".join(cells)
            + f" | {100 * r['undecided'][0.05]:.0f} % | {r['wall_s'] / 60:.1f} min{worst} |"
        )
    print(
        f"rates: share of {sims} simulated gate runs per recorded run that failed (a regression in either "
        "decode check), pairs drawn with replacement within each run; Wilson 95 %, a floor on the uncertainty"
    )
    for r in runs:
        spreads = []
        for cell, ps in _live_pairs(r, "decode_tok_s").items():
            d = [math.log(a) - math.log(b) for a, b in ps]
            spreads.append(f"{cell.split('/')[2]} {100 * stdev(d):.1f} %")
        print(
            f"run {r['run']} ({r['t']} UTC{', B slowed 5 %' if (r.get('b') or {}).get('fault') else ''}): "
            f"sd of the pairs' decode differences {', '.join(spreads)}; fp32 A decode "
            f"{median(a for a, _ in _live_pairs(r, 'decode_tok_s')[next(iter(r['cells']))]):.1f} tok/s"
        )
    for prec, o in offsets.items():
        print(
            f"{prec}: A/A runs' decode estimates {o['runs']} %: sd {o['sd_pct']} % across runs, "
            f"{o['explained_sd_pct']} % expected from their pairs alone -> the processes' own offset sd ~{o['process_sd_pct']} %"
        )
    for prec, v in real.items():
        print(f"real fault {FAULT}, {prec}: measured {v} % slower (paired HL per run)")
    if detect:
        lo, hi = stats.wilson(*detect)
        print(
            f"real fault detected by the CI rule: {100 * detect[0] / detect[1]:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}] of {detect[1]} draws"
        )
    for mode, (k, n) in (confirmed or {}).items():
        lo, hi = stats.wilson(k, n)
        print(
            f"real fault detected with a confirmation ({mode}): {100 * k / n:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}] of {n} draws"
        )
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record", help="run interleaved rounds (A, B, sometimes F) and keep every timed repeat")
    r.add_argument("--rounds", type=int, default=20)
    r.add_argument("--repeats", type=int, default=4, help="timed runs per cell per side")
    r.add_argument("--fault-every", type=int, default=3, help="an F side (slow_decode:0.05) every N rounds; 0: never")
    r.add_argument(
        "--precisions",
        default=",".join(PRECISIONS),
        help="cells to time (fp32 alone halves a round's cost on a starved host)",
    )
    r.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: every core, as the gate); 1 on a starved host, where two "
        "threads spend most of their CPU waiting for each other at barriers",
    )
    r.add_argument("--out", type=Path, default=OUT)
    rl = sub.add_parser("record-live", help="whole interleaved runs in two live processes (the gate's way)")
    rl.add_argument("--runs", type=int, default=12)
    rl.add_argument("--pairs", type=int, default=48, help="pairs a cell per run (no early stop)")
    rl.add_argument("--fault-every", type=int, default=4, help="every N-th run B is slowed 5 %%; 0: never")
    rl.add_argument("--threads", type=int, default=None, help="torch threads per side (default: every core)")
    rl.add_argument("--out", type=Path, default=LIVE_OUT)
    al = sub.add_parser("analyse-live", help="resample the live runs: rule x effect -> detection rate")
    al.add_argument("--live-file", type=Path, default=LIVE_OUT)
    al.add_argument("--sims", type=int, default=2000)
    al.add_argument("--json", action="store_true")
    al.add_argument(
        "--runs", default="", help="only these recorded runs (their numbers, e.g. 0,1,2), for a table by condition"
    )
    a = sub.add_parser("analyse", help="resample the recorded rounds: rule x effect -> detection rate")
    a.add_argument("--rounds-file", type=Path, default=OUT)
    a.add_argument("--sims", type=int, default=1000)
    a.add_argument("--json", action="store_true")
    a.add_argument(
        "--project-cv",
        type=float,
        default=None,
        help="instead of the recorded rounds, synthetic ones with this per-repeat spread (a projection)",
    )
    a.add_argument("--project-side-sd", type=float, default=0.01)
    a.add_argument("--project-repeats", type=int, default=4)
    ns = ap.parse_args(argv)
    if ns.cmd == "analyse-live":
        return analyse_live(ns)
    if ns.cmd == "record-live":
        record_live(ns.runs, ns.pairs, ns.out, ns.fault_every, ns.threads)
        return 0
    if ns.cmd == "record":
        record(
            ns.rounds, ns.repeats, ns.out, ns.fault_every, tuple(p for p in ns.precisions.split(",") if p), ns.threads
        )
        return 0
    return analyse(ns)


# --- analysis -------------------------------------------------------------------------------------

# The real gate's cost per side beyond the timed runs (process start, imports, loading both cells,
# the harness's probes), from the committed quiet A/B run (results/gate/ab_rerun.md: 179 s for 4
# sides with 3-7 repeats a cell), and one timed run of each cell on that quiet host (fp32 15 tok/s,
# int4 26 tok/s at 128 + 32 tokens: 2.4 s + 1.4 s).
QUIET_SIDE_OVERHEAD_S = 30.0
QUIET_REPEAT_S = 3.8
BUDGET_S = 8 * 60
# The gate's decode checks (fp32 and int4) share its false-alarm budget (compare.ab_alpha); rounds
# recorded for fewer cells are judged at the gate's per-check level, and its rate over all checks
# is at most this many times the per-check rate (Bonferroni).
GATE_CELLS = 2


def load_rounds(path: Path) -> list[dict]:
    """{round: {side: cells}} for rounds with both A and B (F where it was recorded)."""
    rounds: dict[tuple, dict] = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        rounds.setdefault((r["batch"], r["round"]), {})[r["side"]] = r
    return [v for _, v in sorted(rounds.items()) if "A" in v and "B" in v]


FIGURE = "decode_tok_s"  # or "itl_p50_ms" (each repeat's median step), set per rule below


def _decode(side: dict, k: int, f: float = 0.0) -> dict[str, list[float]]:
    """Each cell's first k repeats, as tok/s: the median-step figure is turned into tok/s too
    (1000 / ms), so one rule judges both."""
    if FIGURE == "itl_p50_ms":
        return {cell: [1000.0 / (x * (1 + f)) for x in smp["itl_p50_ms"][:k]] for cell, smp in side["cells"].items()}
    return {cell: [x / (1 + f) for x in smp["decode_tok_s"][:k]] for cell, smp in side["cells"].items()}


def rule_pooled(rounds_ab: list[tuple[dict, dict]]) -> str:
    """The gate's rule before this benchmark: pooled mean +-, SPEED_TOL 0.25, z 2 (decode only)."""
    from mindbench.decide.compare import SPEED_TOL, Z, _pooled
    from mindbench.measure.speed import stat

    worst = "ok"
    for cell in rounds_ab[0][0]:
        pa = _pooled([(lambda s: (s.mean, s.std, s.n))(stat(a[cell])) for a, _ in rounds_ab])
        pb = _pooled([(lambda s: (s.mean, s.std, s.n))(stat(b[cell])) for _, b in rounds_ab])
        allowed = max(Z * (pa[1] ** 2 + pb[1] ** 2) ** 0.5, SPEED_TOL * pa[0])
        if pa[0] - pb[0] > allowed:
            return "regression"
    return worst


def _combine(verdicts: list[str]) -> str:
    if "regression" in verdicts:
        return "regression"
    return "not decided" if "not decided" in verdicts else "ok"


def rule_hl(rounds_ab, looks: int = 1, clustered: bool = False, floor: float | None = None) -> str:
    """The rule compare --ab uses (mindbench.decide.compare): HL shift, Mann-Whitney interval,
    widened by the rounds' design effect when `clustered` (compare_ab's default); a regression
    when the interval lies beyond `floor` (None: compare's AB_FLOOR)."""
    from mindbench.decide.compare import AB_FLOOR, AB_TARGET, ab_alpha, shift_check, shift_verdict

    cells = list(rounds_ab[0][0])
    alpha2 = ab_alpha(max(GATE_CELLS, len(cells)), looks)
    out = []
    for c in cells:
        ga, gb = [a[c] for a, _ in rounds_ab], [b[c] for _, b in rounds_ab]
        groups = (ga, gb) if clustered else (None, None)
        r = shift_check([x for g in ga for x in g], [x for g in gb for x in g], True, alpha2, *groups)
        out.append(shift_verdict(r["ci"], AB_FLOOR if floor is None else floor, AB_TARGET))
    return _combine(out)


def rule_bootstrap(rounds_ab, resamples: int = 200) -> str:
    """Paired over interleaved rounds: the two-level bootstrap of the mean within-round shift."""
    import math

    from mindbench.decide.compare import AB_TARGET, ab_alpha, shift_verdict
    from mindbench.measure import stats

    cells = list(rounds_ab[0][0])
    alpha2 = ab_alpha(max(GATE_CELLS, len(cells)))
    out = []
    for c in cells:
        ci = stats.round_bootstrap_ci(
            [([-math.log(x) for x in a[c]], [-math.log(x) for x in b[c]]) for a, b in rounds_ab],
            alpha2,
            resamples=resamples,
        )
        out.append(shift_verdict(None if ci is None else [math.expm1(ci[0]), math.expm1(ci[1])], 0.0, AB_TARGET))
    return _combine(out)


def rule_sequential(
    rounds_ab, first: int, most: int, clustered: bool = False, floor: float | None = None
) -> tuple[str, int]:
    """Add rounds until every decode check is decided or the budget (`most` rounds) is spent; each
    look at Pocock's level for most - first + 1 looks."""
    looks = most - first + 1
    for r in range(first, most + 1):
        v = rule_hl(rounds_ab[:r], looks, clustered, floor)
        if v != "not decided":
            return v, r
    return v, most


def gate_cost_s(rounds: int, k: int) -> float:
    """Estimated wall time of the real gate's A/B step on a quiet 2-core host (see above)."""
    return rounds * 2 * (QUIET_SIDE_OVERHEAD_S + (k + 1) * QUIET_REPEAT_S)


def synthetic_rounds(n: int, repeats: int, cv: float, side_sd: float, seed: int = 0) -> list[dict]:
    """A projection, not a measurement: rounds whose repeats are lognormal with spread `cv`
    around a level that moves by `side_sd` from side to side (process and load), no true shift."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        r = {}
        for side in ("A", "B"):
            level = 15.0 * math.exp(rng.gauss(0, side_sd))
            v = [level * math.exp(rng.gauss(0, cv)) for _ in range(repeats)]
            r[side] = {
                "cells": {"synthetic/transformers/fp32/cpu": {"decode_tok_s": v, "itl_p50_ms": [1000 / x for x in v]}},
                "load_before": [0.0],
                "host_other_frac": 0.0,
                "steal_frac": 0.0,
                "threads": None,
            }
        out.append(r)
    return out


def analyse(ns) -> int:
    from mindbench.measure import stats

    if ns.project_cv is not None:
        rounds = synthetic_rounds(60, ns.project_repeats, ns.project_cv, ns.project_side_sd)
        print(
            f"PROJECTION (synthetic rounds, not measured): repeats lognormal with {100 * ns.project_cv:g} % spread, "
            f"side level moving {100 * ns.project_side_sd:g} % between sides, {ns.project_repeats} repeats a side"
        )
    else:
        rounds = load_rounds(ns.rounds_file)
    if len(rounds) < 4:
        raise SystemExit(f"{ns.rounds_file}: {len(rounds)} complete rounds; record at least 4")
    k_rec = min(len(x["decode_tok_s"]) for r in rounds for s in ("A", "B") for x in r[s]["cells"].values())
    rules = [
        ("pooled, 25 % (before)", 2, k_rec, "pooled"),
        ("HL, 2 rounds", 2, k_rec, "hl"),
        ("HL, 3 rounds", 3, k_rec, "hl"),
        ("HL, 4 rounds", 4, k_rec, "hl"),
        ("HL, 6 rounds", 6, k_rec, "hl"),
        ("bootstrap, 4 rounds", 4, k_rec, "boot"),
        ("sequential HL, 2-4 rounds", 4, k_rec, "seq"),
        ("sequential HL on each repeat's median step, 2-4 rounds", 4, k_rec, "seq-itl"),
        ("HL clustered, 4 rounds", 4, k_rec, "hlc"),
        ("sequential HL clustered against 0, 2-4 rounds (CI before)", 4, k_rec, "seqc0"),
        ("sequential HL clustered, 2-4 rounds, beyond 2 % (CI)", 4, k_rec, "seqc"),
    ]
    rules = [r for r in rules if r[1] <= len(rounds)]
    rng = random.Random(0)
    table = []
    global FIGURE
    for name, R, k, kind in rules:
        FIGURE = "itl_p50_ms" if kind.endswith("-itl") else "decode_tok_s"
        kind = kind.removesuffix("-itl")
        row = {"rule": name, "rounds": R, "repeats": k, "rates": {}, "undecided": {}, "mean_rounds": {}}
        for f in EFFECTS:
            hits = undecided = used = 0
            sims = ns.sims if kind != "boot" else max(200, ns.sims // 5)
            for _ in range(sims):
                pick = rng.sample(rounds, R)
                pairs = [(_decode(r["A"], k), _decode(r["B"], k, f)) for r in pick]
                if rng.random() < 0.5:  # which of the two honest sides plays B is arbitrary
                    pairs = [(_decode(r["B"], k), _decode(r["A"], k, f)) for r in pick]
                n_used = R
                if kind == "pooled":
                    v = rule_pooled(pairs)
                elif kind in ("hl", "hlc"):
                    v = rule_hl(pairs, clustered=kind == "hlc", floor=0.0)
                elif kind == "boot":
                    v = rule_bootstrap(pairs)
                else:
                    v, n_used = rule_sequential(
                        pairs, 2, R, clustered=kind.startswith("seqc"), floor=0.0 if kind != "seqc" else None
                    )
                hits += v == "regression"
                undecided += v == "not decided"
                used += n_used
            row["rates"][f] = (hits, sims)
            row["undecided"][f] = undecided / sims
            row["mean_rounds"][f] = used / sims
        row["gate_s"] = gate_cost_s(max(row["mean_rounds"].values()), k)
        row["gate_worst_s"] = gate_cost_s(R, k)
        table.append(row)
    FIGURE = "decode_tok_s"
    real = _real_fault(rounds, rules, k_rec, rng, ns.sims)
    load = _load_summary(rounds)
    if ns.json:
        print(
            json.dumps(
                {
                    "rounds": len(rounds),
                    "repeats": k_rec,
                    "load": load,
                    "real_fault": real,
                    "table": [
                        {
                            **r,
                            "rates": {
                                str(f): {"hits": h, "sims": n, "rate": h / n, "wilson95": stats.wilson(h, n)}
                                for f, (h, n) in r["rates"].items()
                            },
                        }
                        for r in table
                    ],
                },
                indent=1,
                default=str,
            )
        )
        return 0
    cells = sorted({c.split("/")[2] for r in rounds for c in r["A"]["cells"]})
    threads = {r["A"].get("threads") for r in rounds}
    print(
        f"{len(rounds)} recorded rounds (A/A pairs, {k_rec} timed repeats per cell per side, cells "
        f"{', '.join(cells)}, torch threads {', '.join(str(t or 'all') for t in threads)}); host: {load}"
    )
    if len(cells) < GATE_CELLS:
        print(
            f"each decode check judged at the gate's level for {GATE_CELLS} checks; the gate's false-alarm "
            f"rate over its {GATE_CELLS} checks is at most {GATE_CELLS}x the per-check rate below"
        )
    head = "| rule | rounds | " + " | ".join("A/A false alarm" if f == 0 else f"+{100 * f:g} %" for f in EFFECTS)
    print(head + " | not decided at +5 % | gate wall, quiet 2 cores (est.) |")
    print("|" + "---|" * (len(EFFECTS) + 4))
    for r in table:
        cells = _rate_cells(r["rates"])
        rounds_txt = (
            f"{r['mean_rounds'][0.05]:.1f} (<= {r['rounds']})" if "sequential" in r["rule"] else str(r["rounds"])
        )
        print(
            f"| {r['rule']} | {rounds_txt} | "
            + " | ".join(cells)
            + f" | {100 * r['undecided'][0.05]:.0f} % | {r['gate_s'] / 60:.1f} min"
            + (f" (at most {r['gate_worst_s'] / 60:.1f})" if r["gate_worst_s"] > r["gate_s"] + 1 else "")
            + " |"
        )
    print(
        "rates: share of simulated gate runs that failed (regression in any decode check), Wilson 95 %; "
        "the simulated runs share recorded rounds, so these intervals are a floor."
    )
    for prec, m in real["measured"].items():
        print(
            f"real fault slow_decode:0.05, {prec}: decode measured {100 * m['slowdown']:+.1f} % slower "
            f"(median over {m['rounds']} rounds of the F side against the same round's A)"
        )
    for name, (h, n) in real["detect"].items():
        lo, hi = stats.wilson(h, n)
        print(
            f"real fault slow_decode:0.05 detected by {name}: {100 * h / n:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}] "
            f"of {n} draws from {len([r for r in load_rounds(ns.rounds_file) if 'F' in r])} F rounds"
        )
    return 0


def _real_fault(rounds, rules, k, rng, sims) -> dict:
    """Detection against the rounds' real injected slowdown (their F sides), where recorded."""
    with_f = [r for r in rounds if "F" in r]
    out: dict = {"detect": {}, "measured": {}}
    for name, R, _, kind in rules:
        if kind not in ("hl", "hlc", "seq", "seqc0", "seqc") or R > len(with_f):
            continue
        hits = 0
        for _ in range(sims):
            pairs = [(_decode(r["A"], k), _decode(r["F"], k)) for r in rng.sample(with_f, R)]
            c, floor = kind.startswith(("hlc", "seqc")), None if kind == "seqc" else 0.0
            v = (
                rule_hl(pairs, clustered=c, floor=floor)
                if kind.startswith("hl")
                else rule_sequential(pairs, 2, R, c, floor)[0]
            )
            hits += v == "regression"
        out["detect"][name] = (hits, sims)
    if with_f:
        import math
        from statistics import median

        for cell in with_f[0]["A"]["cells"]:
            d = [
                math.log(median(r["A"]["cells"][cell]["decode_tok_s"]) / median(r["F"]["cells"][cell]["decode_tok_s"]))
                for r in with_f
            ]
            out["measured"][cell.split("/")[2]] = {"slowdown": round(math.expm1(median(d)), 4), "rounds": len(d)}
    return out


def _load_summary(rounds) -> str:
    sides = [s for r in rounds for s in r.values()]
    load = sorted(s["load_before"][0] for s in sides)
    other = sorted(s["host_other_frac"] for s in sides)
    steal = sorted(s["steal_frac"] for s in sides)
    mid = len(sides) // 2
    return (
        f"load average median {load[mid]:.1f} (range {load[0]:.1f}-{load[-1]:.1f}) on "
        f"{os.cpu_count()} CPUs; other processes took a median {100 * other[mid]:.0f} % of the CPUs "
        f"(max {100 * other[-1]:.0f} %), steal median {100 * steal[mid]:.1f} %"
    )


if __name__ == "__main__":
    sys.exit(main())
