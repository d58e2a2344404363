"""The regression gate for serving records (`mindbench serve-bench`): tail latency and goodput of the
same model, runtime, request shape and load level, measured on a machine with the same speed
fingerprint.

Serving records carry no repeats to pool: each figure comes with its own 95 % interval (order
statistics for a percentile, Wilson's for the share of requests within the SLO). A figure
regresses when the two intervals are apart in the bad direction AND the change exceeds the
tolerance (`--speed-tol` of the baseline, the same knob as tok/s), the rule compare applies to the
fidelity KLD: noise alone never fails the gate, and a change inside the tolerance is not worth a
red build. Levels pair by their concurrency (or request rate); a level only one run measured is
listed as unmatched.
"""

from __future__ import annotations

from mindbench.store.record import Record

# (figure in a level, label, higher is better)
LATENCY = (("ttft_ms", "TTFT ms"), ("itl_ms", "ITL ms"), ("e2e_ms", "E2E ms"))
# The tail percentile gated: p99, or the highest one both runs can bound. An order-statistic
# interval for p99 needs a few hundred requests; with fewer its upper bound does not exist, and a
# gate on it could never fire, so the gate says which percentile it used.
TAILS = (99, 90, 50)


def _tail(b: dict, n: dict) -> tuple:
    """(q, baseline's pq, new pq) for the highest percentile with an interval on both sides."""
    for q in TAILS:
        pb, pn = b.get(f"p{q}") or {}, n.get(f"p{q}") or {}
        if all(x.get(k) is not None for x in (pb, pn) for k in ("value", "ci_lo", "ci_hi")):
            return q, pb, pn
    return None, None, None


def serving_key(record: Record, hw_key) -> tuple:
    """What two serving records must share to be compared: the cell without the run, plus the
    request shape and how the load was applied."""
    c = record.config
    shape = (c.shape or {}).get("name")
    return (c.model, c.runtime, c.precision, c.device, shape, c.mode, hw_key)


def _level_id(level: dict, mode: str | None):
    return level.get(mode or "concurrency", level.get("concurrency", level.get("rate")))


def _apart(b_lo, b_hi, n_lo, n_hi, higher_is_better: bool) -> bool:
    """Are the new interval and the baseline's apart, the new one on the bad side?"""
    if None in (b_lo, b_hi, n_lo, n_hi):
        return False
    return n_hi < b_lo if higher_is_better else n_lo > b_hi


def _better_apart(b_lo, b_hi, n_lo, n_hi, higher_is_better: bool) -> bool:
    return _apart(n_lo, n_hi, b_lo, b_hi, higher_is_better)


def _verdict(base: float, new: float, ci_b, ci_n, tol: float, higher_is_better: bool) -> tuple[str, float]:
    allowed = tol * abs(base)
    worse = (base - new) if higher_is_better else (new - base)
    if worse > allowed and _apart(*ci_b, *ci_n, higher_is_better):
        return "regression", allowed
    if -worse > allowed and _better_apart(*ci_b, *ci_n, higher_is_better):
        return "improvement", allowed
    return "ok", allowed


def checks(base: Record, new: Record, *, cell: str, tol: float, check) -> tuple[list[dict], list[str]]:
    """(checks, unmatched levels) of one pair of serving records; `check` is compare's _check.
    A level is the serving section's own JSON (measure/serving.py's summary), read as such."""
    mode = base.config.mode
    b_levels = {_level_id(lv, mode): lv for lv in (base.serving or {}).get("levels") or []}
    n_levels = {_level_id(lv, mode): lv for lv in (new.serving or {}).get("levels") or []}
    out, unmatched = [], [f"{cell} {mode} {k}" for k in b_levels if k not in n_levels]
    for level, b in b_levels.items():
        n = n_levels.get(level)
        if n is None:
            continue
        where = f"{cell} {mode}={level}"
        for fig, label in LATENCY:
            q, pb, pn = _tail(b.get(fig) or {}, n.get(fig) or {})
            if q is None:
                continue
            ci_b, ci_n = (pb["ci_lo"], pb["ci_hi"]), (pn["ci_lo"], pn["ci_hi"])
            verdict, allowed = _verdict(pb["value"], pn["value"], ci_b, ci_n, tol, higher_is_better=False)
            out.append(
                check(
                    where,
                    f"p{q} {label}",
                    pb["value"],
                    pn["value"],
                    pn["value"] - pb["value"],
                    allowed,
                    verdict,
                    base_ci=list(ci_b),
                    new_ci=list(ci_n),
                    **({"note": f"p99 has no 95 % interval at n = {(b.get(fig) or {}).get('n')}"} if q != 99 else {}),
                )
            )
        gb, gn = b.get("good_frac") or {}, n.get("good_frac") or {}
        if gb.get("value") is not None and gn.get("value") is not None and b.get("slo") == n.get("slo"):
            ci_b, ci_n = (gb.get("ci_lo"), gb.get("ci_hi")), (gn.get("ci_lo"), gn.get("ci_hi"))
            verdict, allowed = _verdict(gb["value"], gn["value"], ci_b, ci_n, tol, higher_is_better=True)
            out.append(
                check(
                    where,
                    "goodput share within SLO",
                    gb["value"],
                    gn["value"],
                    gn["value"] - gb["value"],
                    allowed,
                    verdict,
                    base_ci=list(ci_b),
                    new_ci=list(ci_n),
                    slo_ms=b.get("slo"),
                )
            )
    return out, unmatched
