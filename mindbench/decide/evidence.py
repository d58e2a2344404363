"""Where each figure in a recommendation comes from, and the rules that weigh one against another.

Evidence tiers, strongest first (every figure `recommend` shows is labelled with one):
  measured here              a record from this machine's hardware fingerprint
  measured, same speed fingerprint   another machine whose CPU/GPU speed fingerprint matches
  measured, similar hardware a record from the same memory class
  published                  a model card or paper's figure (catalog ModelSpec.published, with its
                             source URL and protocol); never shown as comparable with a suite
                             score measured here, since the protocols differ
  estimated                  mindbench.models.estimate's arithmetic

Between precisions of one model, the store's fidelity figures decide where the suite
cannot: a suite tie (per-item verdicts: exact McNemar test; otherwise within the combined standard
error) is broken by the mean KL divergence against the reference precision, never by noise. A
quality-loss budget (--max-kld, or a named level) keeps only configurations whose KLD upper 95 %
bound is within it, and the cheapest of those wins.

Pure functions over records, candidates and the catalog; no torch. They are the inputs of the one
ranking, which is recommend.py's `_decide`: nothing here ranks or chooses.
"""

from __future__ import annotations

import math

from mindbench.errors import MindbenchError
from mindbench.measure.stats import mcnemar
from mindbench.models import catalog
from mindbench.runtimes import DEFAULT_RUNTIME
from mindbench.store.record import Fidelity, Interval, Record

TIERS = ("measured here", "measured, same speed fingerprint", "measured, similar hardware", "published", "estimated")

# Named quality-loss budgets: mean KL divergence (nats/token) against the reference precision,
# judged on the upper end of its 95 % CI. "lossless" is the size of fp16/bf16 rounding and of
# llama.cpp's Q8_0 on small models (~1e-3); "near" admits int8 (SmolLM2-135M: 0.023) and the usual
# Q5_K_M/Q4_K_M of larger models (a few 1e-2), not NF4 on a 135M model (0.29).
KLD_LEVELS = {"lossless": 0.002, "near": 0.05, "any": math.inf}

# Which published benchmarks speak for which task. Published and measured scores never share a
# column: the protocols differ (mindbench's suites are small, own prompts; cards report the full
# benchmark with the maker's harness).
# For code, benchmarks that still separate models first: HumanEval is saturated (the 7B and 14B
# Qwen coders are 1.2 points apart there, 5.2 on LiveCodeBench).
LCB_QWEN = "LiveCodeBench (2407-2409)"
TASK_BENCHMARKS = {
    "code": (LCB_QWEN, "HumanEval+", "HumanEval", "MBPP+", "MBPP"),
    "reasoning": ("GSM8K", "MATH"),
    "chat": ("IFEval", "MMLU"),
    "data": (),
}
# Tasks whose unmeasured candidates are *ranked* on published figures, and on which benchmarks, in
# order: a benchmark ranks the candidates that publish it when at least two models do (one figure
# separates nothing), before those ranked on the next; the why says which benchmark decided.
# Elsewhere published figures are shown and compared, never used to rank: a 4B model's GSM8K must
# not outrank an unpublished 14B by default.
RANKING_BENCHMARKS = {"code": (LCB_QWEN, "HumanEval+", "HumanEval")}
# How far ahead (points, same benchmark and protocol) a published figure must be to call a model
# "clearly stronger" than the measured choice.
CLEARLY_STRONGER = 10.0


def tier(source: str | None) -> str:
    """Map a figure's source text to its tier name."""
    s = source or ""
    if s.startswith("measured") and "here" in s:
        return TIERS[0]
    if "speed fingerprint" in s:
        return TIERS[1]
    if s.startswith("measured"):
        return TIERS[2]
    if s.startswith("published"):
        return TIERS[3]
    return TIERS[4]


def parse_budget(max_kld: float | None, level: str | None) -> tuple[float | None, str | None]:
    """(KLD budget, its label) from --max-kld or --quality-loss; None when neither was given."""
    if max_kld is not None and level:
        raise MindbenchError("give --max-kld or --quality-loss, not both")
    if max_kld is not None:
        if max_kld < 0:
            raise MindbenchError(f"--max-kld must be >= 0, got {max_kld}")
        return float(max_kld), f"--max-kld {max_kld:g}"
    if level:
        if level not in KLD_LEVELS:
            raise MindbenchError(f"unknown --quality-loss {level!r}: choose one of {', '.join(KLD_LEVELS)}")
        return KLD_LEVELS[level], f"'{level}' (KLD <= {KLD_LEVELS[level]:g})"
    return None, None


# --- published figures ---------------------------------------------------------------------------------


def published_for(model: str, task: str) -> dict | None:
    """The catalog's best-matching published figure for a task: the first benchmark of the task's
    list the card reports."""
    spec = catalog.CATALOG.get(model)
    if spec is None:
        return None
    for bench in TASK_BENCHMARKS.get(task, ()):
        for p in spec.published:
            if p["benchmark"] == bench:
                return dict(p, tier="published")
    return None


def fmt_published(p: dict) -> str:
    return f"{p['benchmark']} {p['score']:.1f} (published; {p['protocol']}; {p['source']})"


def stronger_published(chosen, ok: list, task: str) -> list[tuple]:
    """Unmeasured candidates that fit and whose published figure clearly exceeds the measured
    choice's published figure on the same benchmark; and those that can't be compared because
    the choice has no figure on that benchmark. [(candidate, their figure, chosen's figure|None)]"""
    out, seen = [], set()
    mine = {p["benchmark"]: p for p in getattr(catalog.CATALOG.get(chosen.model), "published", ())}
    for c in ok:
        if c.score is not None or c.model == chosen.model or c.model in seen:
            continue
        p = published_for(c.model, task)
        if p is None:
            continue
        theirs_vs = mine.get(p["benchmark"])
        if theirs_vs is None or p["score"] - theirs_vs["score"] >= CLEARLY_STRONGER:
            out.append((c, p, theirs_vs))
            seen.add(c.model)
    return sorted(out, key=lambda t: -t[1]["score"])


# --- fidelity and paired verdicts from the store ---------------------------------------------------------


def _cell(r: Record) -> tuple:
    c = r.config
    return (c.model, c.runtime or DEFAULT_RUNTIME, c.precision)


def fidelity_map(records: list[Record]) -> dict[tuple, Fidelity]:
    """(model, runtime, precision) -> the latest measured fidelity (records without one, or whose
    fidelity is an error, say nothing)."""
    out = {}
    for r in sorted(records, key=lambda r: str(r.timestamp or "")):
        if r.status != "ok" or r.fidelity is None or r.fidelity.kld is None:
            continue
        out[_cell(r)] = r.fidelity
    return out


def items_map(records: list[Record], task: str) -> dict[tuple, dict]:
    """(model, runtime, precision) -> per-item verdicts {task_id: fraction} for the task's suite."""
    out = {}
    for r in sorted(records, key=lambda r: str(r.timestamp or "")):
        q = r.quality.get(task)
        if r.status == "ok" and q is not None and isinstance(q.items, dict) and q.items:
            out[_cell(r)] = q.items
    return out


def reference_precision(device: str) -> str:
    """The quality reference's precision on `device`: the fidelity track's reference."""
    from mindbench.suites.fidelity import reference_precision

    return reference_precision(device)


def is_reference(c, fid: Fidelity | None) -> bool:
    """The reference cell (or one at least as wide): lossless by definition."""
    if fid is not None and fid.is_reference:
        return True
    from mindbench.runtimes import get_runtime

    try:
        return get_runtime(c.runtime).is_reference(c.precision, c.device)
    except MindbenchError:  # a runtime this process does not know: not the reference
        return False


# The reference's KLD against itself: zero by definition, shown as "0 (reference)" (`_k` tells it
# by identity, so a measured zero still prints its interval).
REFERENCE_KLD = Interval(0.0, 0.0, 0.0)


def kld_of(c, fids: dict[tuple, Fidelity]) -> Interval | None:
    f = fids.get(c.key)
    if is_reference(c, f):
        return REFERENCE_KLD
    return f.kld if f else None


def paired(a_items: dict, b_items: dict) -> tuple[int, int, int, float] | None:
    """(n shared items, a-right-b-wrong, a-wrong-b-right, exact McNemar p) or None if none shared."""
    shared = sorted(set(a_items) & set(b_items))
    if not shared:
        return None
    ab = sum(1 for t in shared if a_items[t] >= 0.5 > b_items[t])
    ba = sum(1 for t in shared if b_items[t] >= 0.5 > a_items[t])
    return len(shared), ab, ba, mcnemar(ab, ba)


def same_model_decision(a, b, fids: dict, items: dict) -> tuple[int, str, str]:
    """Between two precisions of one model: (-1 if a wins, 1 if b wins, 0 undecided), the kind of
    evidence that decided ("paired test" | "suite" | "fidelity" | ""), and a sentence."""
    pa = items.get(a.key), items.get(b.key)
    if all(pa):
        n, ab, ba, p = paired(*pa) or (0, 0, 0, 1.0)
        if n and p < 0.05:
            w = -1 if ab > ba else 1
            return (
                w,
                "paired test",
                (
                    f"paired test on {n} shared items: {ab} right only at {a.label()}, {ba} only "
                    f"at {b.label()}, exact McNemar p = {p:.3g}"
                ),
            )
        suite = f"not distinguishable at n = {n} (paired: {ab} vs {ba} flips, McNemar p = {p:.2g})" if n else ""
    else:
        if abs(a.score - b.score) > math.hypot(a.quality["stderr"], b.quality["stderr"]):
            return (-1 if a.merit > b.merit else 1), "suite", "suite scores differ beyond their standard errors"
        suite = f"suite scores tie within standard error (n = {a.quality.get('n')})"
    ka, kb = kld_of(a, fids), kld_of(b, fids)
    if ka and kb and ka.ci_hi < kb.ci_lo:
        return -1, "fidelity", f"{suite}; fidelity decides: KLD {_k(ka)} at {a.label()} vs {_k(kb)} at {b.label()}"
    if ka and kb and kb.ci_hi < ka.ci_lo:
        return 1, "fidelity", f"{suite}; fidelity decides: KLD {_k(kb)} at {b.label()} vs {_k(ka)} at {a.label()}"
    why = "fidelity not measured for both" if not (ka and kb) else "their KLD intervals overlap"
    return 0, "", f"{suite}; {why}"


def _k(k: Interval) -> str:
    return "0 (reference)" if k is REFERENCE_KLD else f"{k.mean:.3g} [{k.ci_lo:.3g}, {k.ci_hi:.3g}]"


def apply_budget(cands: list, budget: float, label: str, fids: dict) -> None:
    """Exclude configurations whose quality loss is over the budget, or not measured."""
    for c in cands:
        if c.excluded:
            continue
        k = kld_of(c, fids)
        if k is None:
            ref = reference_precision(c.device)
            c.excluded = (
                f"quality loss not measured (no fidelity figure) under budget {label}: measure it with "
                f"`mindbench run --models {c.model} --precisions {ref},{c.precision}`"
            )
        elif k.ci_hi > budget:
            c.excluded = f"KLD {_k(k)} is over the quality-loss budget {label}"
        else:
            c.fidelity_note = f"KLD {_k(k)} within {label}"


def cheapest_within(chosen, ok: list) -> object:
    """Among fitting configurations of the chosen model (all already within the budget), the one
    using the least memory, then the fastest."""
    same = [c for c in ok if c.model == chosen.model]
    return min(same, key=lambda c: (c.memory_mb, -(c.decode_tok_s or 0)))


# --- published figures, by benchmark ---------------------------------------------------------------


def figure(model: str, benchmark: str) -> dict | None:
    spec = catalog.CATALOG.get(model)
    for p in getattr(spec, "published", ()):
        if p["benchmark"] == benchmark:
            return dict(p, tier="published")
    return None
