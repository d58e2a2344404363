"""Every non-reference cell of a results store against its model's reference: the widest precision
scored on that suite (the runtime registry's order). The statistics themselves are pure and live
in mindbench/measure/stats.py; this module decides which cells are compared with which."""

from __future__ import annotations

from mindbench.measure.stats import ALPHA, paired, unpaired
from mindbench.runtimes import DEFAULT_RUNTIME, precision_key
from mindbench.store.record import Record


# Widest first; GGUF types after these, wider bits first (F32, F16/BF16, Q8_0, Q6_K, ..., IQ2).
def precision_rank(precision: str | None) -> tuple:
    """Widest first, as the runtime registry orders precisions (runtimes.precision_key)."""
    return precision_key(precision)


def _cell_name(rec: Record, runtimes: set) -> str:
    c = rec.config
    return f"{c.runtime}/{c.precision}" if len(runtimes) > 1 else str(c.precision)


def against_reference(records: list[Record], alpha: float = ALPHA) -> dict[int, dict]:
    """{index in records: {suite: comparison}} for every ok cell that is not its model's reference.

    The reference of a model (and weights) for a suite is its widest-precision ok cell scored on
    that suite; the comparison is paired when both cells kept per-task verdicts (on the tasks they
    share), else unpaired when both scored the same number of tasks (a deterministic subset), else
    left out. `comparison["reference"]` names the reference cell."""
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(records):
        if r.status == "ok" and r.quality:
            groups.setdefault((r.config.model, r.weights), []).append(i)
    out: dict[int, dict] = {}
    for idx in groups.values():
        runtimes = {records[i].config.runtime for i in idx}
        order = sorted(
            idx,
            key=lambda i: (
                precision_rank(records[i].config.precision),
                records[i].config.runtime != DEFAULT_RUNTIME,
            ),
        )
        for suite in dict.fromkeys(s for i in order for s in records[i].quality):
            scored = [i for i in order if suite in records[i].quality and records[i].quality[suite].score is not None]
            if len(scored) < 2:
                continue
            ref, qa = scored[0], records[scored[0]].quality[suite]
            a = _cell_name(records[ref], runtimes)
            for i in scored[1:]:
                qb, b = records[i].quality[suite], _cell_name(records[i], runtimes)
                direction = dict(scale=qa.unit_scale, higher_is_better=qa.better_higher)
                if qa.items and qb.items:
                    res = paired(qa.items, qb.items, alpha=alpha, a=a, b=b, **direction)  # None: no shared task
                elif qa.n == qb.n and direction["scale"] == 100.0:  # proportions only
                    res = unpaired(qa.score, qa.n, qb.score, qb.n, alpha=alpha, a=a, b=b)
                else:  # different task subsets: different experiments
                    res = None
                if res is not None:
                    out.setdefault(i, {})[suite] = {"reference": a, **res}
    return out


def _pts(x: float) -> str:
    return f"{x:+.1f}"


def rows(records: list[Record], alpha: float = ALPHA) -> list[dict]:
    """Display rows for the report's paired section, one per (non-reference cell, suite)."""
    out = []
    runtimes = {r.config.runtime for r in records}
    for i, suites in against_reference(records, alpha).items():
        for suite, c in suites.items():
            flips = "—" if c["right_to_wrong"] is None else f"{c['right_to_wrong']} / {c['wrong_to_right']}"
            out.append(
                {
                    "model": records[i].config.model,
                    "suite": suite,
                    "reference": c["reference"],
                    "cell": _cell_name(records[i], runtimes),
                    "n": c["n"],
                    "right→wrong / wrong→right": flips,
                    "Δ score": _pts(c["diff"]),
                    "95% CI": f"[{_pts(c['ci'][0])}, {_pts(c['ci'][1])}]",
                    "p": f"{c['p']:.3g}",
                    "test": c["test"],
                    "MDE pts": "—" if c["mde"] is None else f"{c['mde']:.1f}",
                    "verdict": c["verdict"],
                }
            )
    return out


def notes(records: list[Record], alpha: float = ALPHA) -> list[str]:
    """One compact line per (non-reference cell, suite), for `mindbench run`'s output."""
    lines = []
    for r in rows(records, alpha):
        flips = (
            ""
            if r["right→wrong / wrong→right"] == "—"
            else ", right→wrong / wrong→right " + r["right→wrong / wrong→right"]
        )
        lines.append(
            f"{r['model']} {r['cell']} vs {r['reference']} on {r['suite']}: Δ {r['Δ score']} pts "
            f"{r['95% CI']}{flips}, p = {r['p']} ({r['test']}), MDE {r['MDE pts']} pts: {r['verdict']}"
        )
    if lines:
        lines.insert(
            0,
            "Paired with each model's widest precision (right→wrong / wrong→right tasks; "
            "95% CI of the score difference; MDE = smallest difference this n detects):",
        )
    return lines
