"""The regression gate: compare a NEW results store against a BASELINE, noise-aware.

A benchmark gate that cries wolf gets switched off, so a change counts only when it is larger
than both a tolerance and what the measurements' own spread allows:

- quality (score 0-100 per suite), paired: when both runs kept per-task verdicts
  (quality[suite].items) for the same tasks, a drop counts when the exact McNemar test on the
  tasks that flipped gives p < alpha (alpha = the two-sided tail of z: 0.0455 at z = 2) AND the
  drop exceeds `--quality-tol` points. Only flips carry information, so this sees a loss of a
  handful of tasks that the unpaired rule calls noise, and never flags a rerun that flipped
  nothing (mindbench.measure.stats);
- quality, unpaired (records without items, e.g. schema 1, or different tasks): a drop counts
  when it exceeds `z * sqrt(se1^2 + se2^2)` (z = 2, ~95% for independent estimates) AND
  `--quality-tol` points; scores over different numbers of tasks are not compared;
- fidelity (the record's fidelity section, KL divergence from the model's reference precision): a rise
  counts when the new 95% CI lies wholly above the baseline's (new ci_lo > baseline ci_hi) AND
  the rise exceeds `--kld-tol` x the baseline's mean (at least KLD_FLOOR nats); only when both
  runs measured against the same reference precision on the same text;
- speed (decode and prefill tok/s, TTFT ms): a change counts when it exceeds `--speed-tol` as a
  fraction of the baseline AND `z * sqrt(std1^2 + std2^2)` of the repeats' spread;
- memory (weights and peak MB): a rise counts when it exceeds `--memory-tol` as a fraction;
- status: a cell that was ok and now fails (oom, crashed, timeout, skipped, error) regressed.

Rows match by model, runtime, precision, device, weights and suite, on the same hardware memory
class (default). Speed and memory depend on the exact machine, so they are compared only when
the hardware fingerprints match too; quality is compared across machines of the same class.
Speed also needs the same *speed* fingerprint (CPU ISA features, GPU compute capability and
driver) and measurements that did not call themselves noisy or contended; `--ab`
gates speed between the two sides of one interleaved same-machine run (scripts/ci_gate.sh).
Rows that find no partner are listed, not silently dropped.

Exit status: 0 nothing regressed, 1 a regression, 2 bad input (missing file, schema mismatch,
nothing to compare).
"""

from __future__ import annotations

import math
from statistics import NormalDist

from mindbench.decide import serving_gate
from mindbench.errors import MindbenchError
from mindbench.store.record import Fidelity, Quality, Record, num
from mindbench.store.results import latest
from mindbench.store.results import read_all as load_records

# Why 0.25: on a shared 2-core CPU (CI runners, this project's machines) two honest reruns of the
# same cell differ by 10-20% in decode/prefill tok/s when other jobs run beside them; a quarter
# is beyond that and still catches the regressions that matter (a lost fast path is 2x, not 20%).
# A dedicated GPU box can pass --speed-tol 0.1.
SPEED_TOL = 0.25
# One point: finer than any suite's standard error at the sizes we run, so the stderr test
# decides; it only stops a flag on a sub-point wobble of a huge suite.
QUALITY_TOL = 1.0
# Peak RSS moves with allocator behaviour and what else the worker imported; weights do not move.
MEMORY_TOL = 0.2
Z = 2.0
# Why 0.1: fidelity's bootstrap CIs are about +-10 % of the mean, so CIs that do not overlap
# already mean a ~20 % rise; the tolerance only keeps a tight, real but harmless shift (a new BLAS
# kernel) from failing CI. The floor: below 0.001 nats per token the distributions differ far
# less than anything a suite can see (bitsandbytes int8 on SmolLM2 is 0.023, NF4 0.29).
KLD_TOL = 0.1
KLD_FLOOR = 0.001
# Oldest record layout compare still reads: schema 2 only added sections (quality items,
# fidelity, speed verdict), which the gate treats as absent in schema-1 records.
MIN_SCHEMA = 1

# (figure, label, higher is better)
SPEED = (
    ("decode_tok_s", "decode tok/s", True),
    ("prefill_tok_s", "prefill tok/s", True),
    ("ttft_ms", "TTFT ms", False),
)
# (label, the figure of a record)
MEMORY = (("weights MB", lambda r: num(r.memory.weights_mb)), ("peak MB", lambda r: r.peak_mb))


class BadInput(MindbenchError):
    """Nothing sensible to compare: exit 2, so CI can tell "broken gate" from "regression"."""

    exit_code = 2


def _hardware_key(rec: Record, hardware: str) -> str | None:
    return {"class": rec.hardware.memory_class, "fingerprint": rec.hardware.fingerprint, "any": None}[hardware]


def _match_key(rec: Record, hardware: str) -> tuple:
    c = rec.config
    return (c.model, c.runtime, c.precision, c.device, rec.weights, _hardware_key(rec, hardware))


def _label(key: tuple) -> str:
    return "/".join(str(k) for k in key[:4]) + ("" if key[4] in (None, "pretrained") else f" ({key[4]})")


def _judge(delta_bad: float, allowed: float) -> str:
    """delta_bad > 0 means worse. Both the tolerance and the noise must be exceeded."""
    if delta_bad > allowed:
        return "regression"
    if -delta_bad > allowed:
        return "improvement"
    return "ok"


def _check(cell, what, base, new, change, allowed, verdict, **extra) -> dict:
    return {
        "cell": cell,
        "what": what,
        "baseline": base,
        "new": new,
        "change": change,
        "allowed": allowed,
        "verdict": verdict,
        **extra,
    }


def alpha_of(z: float) -> float:
    """The two-sided significance level of z standard errors (z = 2 -> 0.0455): one knob for both
    the unpaired rule and the paired test."""
    return 2 * NormalDist().cdf(-z)


def _paired_quality(cell: str, suite: str, qb: Quality, qn: Quality, quality_tol: float, alpha: float) -> dict | None:
    """The paired (McNemar) check of one suite, or None when the runs did not keep verdicts
    for the same tasks (then the unpaired rule decides)."""
    from mindbench.measure import stats

    ib, inew = qb.items, qn.items
    if not ib or not inew or set(ib) != set(inew):
        return None
    r = stats.paired(
        ib,
        inew,
        alpha=alpha,
        a="baseline",
        b="new",
        scale=qb.unit_scale,
        higher_is_better=qb.better_higher,
    )
    delta, significant = r["diff"], r["p"] < alpha
    gain = delta if r["higher_is_better"] else -delta  # a lower-is-better metric regresses upward
    verdict = (
        "regression"
        if significant and -gain > quality_tol
        else "improvement"
        if significant and gain > quality_tol
        else "ok"
    )
    # What the gate allows, in points: the net loss the exact test needs given how many tasks
    # flipped (for 0/1 verdicts p < alpha exactly when the change reaches it), or the tolerance.
    # (A continuous metric's flips say nothing of the size of a change: the tolerance alone.)
    flips = 100 * stats.critical_flips(r["right_to_wrong"] + r["wrong_to_right"], alpha) / r["n"]
    allowed = max(quality_tol, flips if r["test"] == "mcnemar" else 0.0)
    return _check(
        cell,
        f"{suite} score",
        qb.points,
        qn.points,
        delta,
        allowed,
        verdict,
        test=r["test"],
        p=r["p"],
        alpha=alpha,
        right_to_wrong=r["right_to_wrong"],
        wrong_to_right=r["wrong_to_right"],
        ci=r["ci"],
        mde=r["mde"],
        n=r["n"],
        display={
            "allowed": f"±{allowed:.1f}: {'McNemar' if r['test'] == 'mcnemar' else r['test']} p={r['p']:.2g} ({r['right_to_wrong']} lost, "
            f"{r['wrong_to_right']} gained)"
        },
    )


def _fidelity_check(cell: str, fb: Fidelity | None, fn: Fidelity | None, kld_tol: float, notes: list) -> dict | None:
    """KLD against the same reference on the same text: a rise beyond both CIs and the tolerance
    is a quality regression."""
    if fb is None or fn is None or fb.is_reference or fn.is_reference:
        return None
    # A served cell's KL on the top-k support reads low by a cell-dependent factor: it is gated
    # only against a top-k figure of the same k and form, never against a full KL.
    tb, tn = fb.topk_label(), fn.topk_label()
    if tb != tn or (tb and (fb.topk or {}).get("form") != (fn.topk or {}).get("form")):
        if (fb.kld or fb.kld_topk) and (fn.kld or fn.kld_topk):
            notes.append(f"{cell}: fidelity not compared ({tb or 'full'} KL vs {tn or 'full'} KL: different metrics)")
        return None
    kb, kn = (fb.kld_topk, fn.kld_topk) if tb else (fb.kld, fn.kld)
    if kb is None:
        return None
    if kn is None:
        notes.append(f"{cell}: fidelity not compared (new run: {fn.error or 'not measured'})")
        return None
    if fb.reference != fn.reference or fb.text_sha != fn.text_sha:
        notes.append(f"{cell}: fidelity not compared (different reference or evaluation text)")
        return None
    allowed = max(kld_tol * kb.mean, KLD_FLOOR)
    delta = kn.mean - kb.mean
    verdict = (
        "regression"
        if kn.ci_lo > kb.ci_hi and delta > allowed
        else "improvement"
        if kn.ci_hi < kb.ci_lo and -delta > allowed
        else "ok"
    )
    ci = lambda k: f"{k.mean:.4f} [{k.ci_lo:.4f}, {k.ci_hi:.4f}]"  # noqa: E731
    return _check(
        cell,
        f"fidelity KLD ({tb})" if tb else "fidelity KLD",
        kb.mean,
        kn.mean,
        delta,
        allowed,
        verdict,
        base_ci=[kb.ci_lo, kb.ci_hi],
        new_ci=[kn.ci_lo, kn.ci_hi],
        rel=delta / kb.mean if kb.mean > 0 else None,
        display={"baseline": ci(kb), "new": ci(kn), "change": f"{delta:+.4f}", "allowed": f"CIs apart, >{allowed:.4f}"},
    )


def compare(
    baseline: list[Record],
    new: list[Record],
    *,
    quality_tol: float = QUALITY_TOL,
    speed_tol: float = SPEED_TOL,
    memory_tol: float = MEMORY_TOL,
    z: float = Z,
    hardware: str = "class",
    gate_speed: bool = True,
    kld_tol: float = KLD_TOL,
) -> dict:
    """Compare two lists of records. Returns checks, regressions, improvements and unmatched rows."""
    if hardware not in ("class", "fingerprint", "any"):
        raise BadInput(f"--hardware must be class, fingerprint or any, not {hardware!r}")
    # serve-bench's records gate p99 latency and goodput per load level (decide/serving_gate.py)
    base_serving = [r for r in latest(baseline) if r.is_serving]
    new_serving = [r for r in latest(new) if r.is_serving]
    base_r = {_match_key(r, hardware): r for r in latest([r for r in baseline if not r.is_serving])}
    new_r = {_match_key(r, hardware): r for r in latest([r for r in new if not r.is_serving])}
    alpha = alpha_of(z)
    checks: list[dict] = []
    unmatched = {
        "baseline": [_label(k) for k in base_r if k not in new_r],
        "new": [_label(k) for k in new_r if k not in base_r],
    }
    notes: list[str] = []
    compared = 0
    for key, b in base_r.items():
        n = new_r.get(key)
        if n is None:
            continue
        cell = _label(key)
        compared += 1
        if b.status != "ok" or n.status != "ok":
            verdict = (
                "ok"
                if b.status == n.status
                else "regression"
                if b.status == "ok"
                else "improvement"
                if n.status == "ok"
                else "ok"
            )
            msg = f": {n.error}" if n.status != "ok" and n.error else ""
            checks.append(_check(cell, "status", b.status, n.status + msg, None, None, verdict))
            continue
        # Quality, per suite both runs scored.
        for suite, qb in b.quality.items():
            qn = n.quality.get(suite)
            if qn is None or qb.points is None or qn.points is None:
                unmatched["baseline"].append(f"{cell} {suite}")
                continue
            if qb.protocol != qn.protocol:
                # A chat model asked for the body vs the whole function: different prompts.
                unmatched["baseline"].append(f"{cell} {suite} (code protocol {qb.protocol} vs {qn.protocol})")
                continue
            paired = _paired_quality(cell, suite, qb, qn, quality_tol, alpha)
            if paired is not None:
                checks.append(paired)
                continue
            if qb.n != qn.n:
                # Different task subsets are different experiments: the stderr test assumes both
                # scores estimate the same quantity, which a deterministic subset does not.
                unmatched["baseline"].append(f"{cell} {suite} (n={qb.n} vs n={qn.n})")
                continue
            se_b, se_n = qb.stderr_points, qn.stderr_points
            noise = z * math.hypot(se_b or 0.0, se_n or 0.0)
            allowed = max(noise, quality_tol)
            delta = qn.points - qb.points
            loss = -delta if qb.better_higher else delta
            checks.append(
                _check(
                    cell,
                    f"{suite} score",
                    qb.points,
                    qn.points,
                    delta,
                    allowed,
                    _judge(loss, allowed),
                    base_spread=se_b,
                    new_spread=se_n,
                    noise=noise,
                    n=qn.n,
                )
            )
        unmatched["new"].extend(f"{cell} {s}" for s in n.quality if s not in b.quality)
        fid = _fidelity_check(cell, b.fidelity, n.fidelity, kld_tol, notes)
        if fid is not None:
            checks.append(fid)
        if b.hardware.fingerprint != n.hardware.fingerprint and hardware != "any":
            notes.append(f"{cell}: speed and memory not compared (different machine, same memory class)")
            continue
        if not gate_speed or speed_skipped(b, n, cell, notes):
            speed = ()
        elif b.speed_config != n.speed_config:
            notes.append(
                f"{cell}: speed not compared (prompt/new tokens/threads differ: "
                f"{list(b.speed_config)} vs {list(n.speed_config)})"
            )
            speed = ()
        else:
            speed = SPEED
        for fig, label, higher_better in speed:
            fb, fn = b.speed.figure(fig), n.speed.figure(fig)
            vb, vn = fb.value, fn.value
            if vb is None or vn is None or vb <= 0:
                continue
            noise = z * math.hypot(fb.spread or 0.0, fn.spread or 0.0)
            allowed = max(noise, speed_tol * vb)
            worse = (vb - vn) if higher_better else (vn - vb)
            checks.append(
                _check(
                    cell,
                    label,
                    vb,
                    vn,
                    vn - vb,
                    allowed,
                    _judge(worse, allowed),
                    base_spread=fb.spread,
                    new_spread=fn.spread,
                    noise=noise,
                    rel=(vn - vb) / vb,
                )
            )
        for label, figure in MEMORY:
            vb, vn = figure(b), figure(n)
            if vb is None or vn is None or vb <= 0:
                continue
            allowed = memory_tol * vb
            checks.append(_check(cell, label, vb, vn, vn - vb, allowed, _judge(vn - vb, allowed), rel=(vn - vb) / vb))
    compared += _serving(base_serving, new_serving, hardware, gate_speed, speed_tol, checks, unmatched, notes)
    if not gate_speed:
        notes.append("speed not gated (--no-speed)")
    if compared == 0:
        raise BadInput(
            "nothing to compare: no row of NEW matches a row of BASELINE by model, runtime, "
            "precision, device and hardware; check the files (or pass --hardware any)"
        )
    if not checks:
        raise BadInput("nothing to compare: the matched rows share no figure (quality suite, speed or memory)")
    regressions = sum(c["verdict"] == "regression" for c in checks)
    return {
        "regressions": regressions,
        "improvements": sum(c["verdict"] == "improvement" for c in checks),
        "compared_cells": compared,
        "checks": checks,
        "unmatched": unmatched,
        "notes": notes,
        "settings": {
            "quality_tol": quality_tol,
            "speed_tol": speed_tol,
            "memory_tol": memory_tol,
            "z": z,
            "alpha": alpha,
            "kld_tol": kld_tol,
            "hardware": hardware,
            "speed": gate_speed,
        },
        "exit_code": 1 if regressions else 0,
    }


# --- speed: like with like -------------------------------------------------------


def speed_not_comparable(b: Record, n: Record) -> str | None:
    """Why the speeds of two records can't be compared, or None when they can.

    Speed depends on what the kernels dispatch on, not on the memory class: an AVX-512 host runs
    bitsandbytes int4 4x faster than an AVX2 host with the same CPU name, cores and RAM, so two
    records are compared only on the same speed fingerprint, and only when neither measurement
    called itself noisy or contended."""
    for side, r in (("baseline", b), ("new", n)):
        if r.speed.verdict in ("noisy", "contended"):
            return f"speed not compared: the {side} measurement was {r.speed.verdict}"
    sb, sn = b.hardware.speed_fingerprint, n.hardware.speed_fingerprint
    if not sb or not sn:
        return "speed not compared: unknown CPU features (a record made before speed fingerprints)"
    if sb == sn:
        return None
    return "speed not compared: " + _speed_difference(b, n)


def _gpu_ids(rec: Record) -> list:
    return [[g.get("name"), g.get("compute_capability")] for g in rec.hardware.gpus or []]


def _speed_difference(b: Record, n: Record) -> str:
    from mindbench.models.hardware import top_feature

    hb, hn = b.hardware, n.hardware
    fb, fn = set(hb.cpu_features or []), set(hn.cpu_features or [])
    if fb != fn:
        tb, tn = top_feature(fb), top_feature(fn)
        if tb == tn:  # same class, different extras: name them
            tb, tn = ",".join(sorted(fb - fn)) or "-", ",".join(sorted(fn - fb)) or "-"
        return f"different CPU ({tb} vs {tn})"
    if hb.cpu_model_id != hn.cpu_model_id:
        return f"different CPU model ({hb.cpu_model_id} vs {hn.cpu_model_id})"
    if _gpu_ids(b) != _gpu_ids(n):
        return f"different GPU ({_gpu_ids(b)} vs {_gpu_ids(n)})"
    return "different machine (cores, GPU driver or CUDA version differ)"


def _serving(
    base: list[Record], new: list[Record], hardware: str, gate_speed: bool, tol: float, checks, unmatched, notes
) -> int:
    """Serving records compared pairwise (same model, runtime, shape, load mode, machine class):
    status, then p99 TTFT/ITL/E2E and goodput per level on the same speed fingerprint. Returns
    how many pairs were compared."""

    def label(key):
        return "/".join(str(k) for k in key[:4]) + f" serve {key[4]}"

    bs = {serving_gate.serving_key(r, _hardware_key(r, hardware)): r for r in base}
    ns = {serving_gate.serving_key(r, _hardware_key(r, hardware)): r for r in new}
    unmatched["baseline"].extend(label(k) for k in bs if k not in ns)
    unmatched["new"].extend(label(k) for k in ns if k not in bs)
    compared = 0
    for key, b in bs.items():
        n = ns.get(key)
        if n is None:
            continue
        compared += 1
        cell = label(key)
        if b.status != "ok" or n.status != "ok":
            verdict = "regression" if b.status == "ok" else "improvement" if n.status == "ok" else "ok"
            checks.append(_check(cell, "status", b.status, n.status, None, None, verdict))
            continue
        if not gate_speed or speed_skipped(b, n, cell, notes):
            continue
        found, levels = serving_gate.checks(b, n, cell=cell, tol=tol, check=_check)
        checks.extend(found)
        unmatched["baseline"].extend(levels)
    return compared


def speed_skipped(b: Record, n: Record, cell: str, notes: list[str]) -> bool:
    why = speed_not_comparable(b, n)
    if why:
        notes.append(f"{cell}: {why}")
    return why is not None


def _pooled(stats: list[tuple[float, float, int]]) -> tuple[float, float, int]:
    """Mean, sample std and n of the union of several groups given as (mean, std, n)."""
    total = sum(k for _, _, k in stats)
    mean = sum(m * k for m, _, k in stats) / total
    ss = sum((k - 1) * sd * sd + k * (m - mean) ** 2 for m, sd, k in stats)
    return mean, math.sqrt(ss / (total - 1)) if total > 1 else 0.0, total


# The A/B gate's rule, chosen by benchmarks/gate_power.py (docs/gate.md has its table):
# every timed repeat of every round counts, the shift is the Hodges-Lehmann estimate on log time
# per token with its Mann-Whitney interval, and decode regresses when that whole interval is a
# slowdown. AB_ALPHA is the one-sided false-alarm rate of the whole gate, split over its decode
# checks (Bonferroni) and over its looks when rounds are added until it can decide (Pocock).
AB_ALPHA = 0.05
# "ok" means the interval rules out a decode slowdown this large; between the two, not decided.
AB_TARGET = 0.05
AB_POWER = 0.9  # the promise: the slowdown caught 9 times in 10 at this run's spread
# Decode regresses only when the whole interval lies beyond a 2 % slowdown, not beyond 0: on a
# quiet 2-core host two sides of the same code differ by 3-6 % (the process, the stretch of time)
# while their repeats agree within 2 %, and with 2-4 rounds the design effect cannot see that
# spread; judged against 0 the gate failed 13 % of honest A/A runs there (24 recorded rounds,
# benchmarks/gate_power.py), against 2 % 4 % (docs/gate.md has the table).
AB_FLOOR = 0.02
# The interleaved run's floor (compare_interleaved): two live processes timed repeat by repeat showed
# no offset of their own - over 9 A/A runs, each a fresh pair of processes, the runs' estimates
# spread less than their pairs alone explain - so the floor only keeps a sub-percent difference from
# failing CI. At 1 % the gate, sequential over 3 looks, failed 1.9 % of honest runs and caught 97 %
# of 5 % slowdowns; at 2 % it caught 87 % (benchmarks/gate_power.py analyse-live; docs/gate.md).
AB_PAIRED_FLOOR = 0.01


def _log_time(values: list[float], higher_better: bool) -> list[float]:
    """Figures as log time (per token, or TTFT): a shift of log(1 + s) is a slowdown s, whatever
    the figure's unit or size, and a repeat's skew is tamed."""
    return [(-math.log(v) if higher_better else math.log(v)) for v in values if v and v > 0]


def shift_check(
    a_vals: list[float],
    b_vals: list[float],
    higher_better: bool,
    alpha2: float,
    a_groups: list[list[float]] | None = None,
    b_groups: list[list[float]] | None = None,
) -> dict:
    """B's slowdown against A: the Hodges-Lehmann shift of log time, its two-sided 1 - alpha2
    Mann-Whitney interval, and the smallest slowdown a one-sided alpha2/2 test at this spread
    catches with AB_POWER (the interval's half-width x (z_{1-a} + z_{power}) / z_{1-a}); all as
    fractions of time (0.05: 5 % longer per token).

    With the repeats' groups (each side of each round: one process, one stretch of the host's
    load), the interval is widened around the estimate by the square root of their design effect
    (stats.design_effect): repeats of one side share its load and are not independent, and on a
    busy host the sides of one round differed 1.7x more than their repeats implied."""
    from mindbench.measure import stats

    x, y = _log_time(a_vals, higher_better), _log_time(b_vals, higher_better)
    d = stats.hodges_lehmann(x, y)
    ci = stats.shift_ci(x, y, alpha2)
    deff = 1.0
    if ci is not None and a_groups and b_groups:
        deff = stats.design_effect(
            [_log_time(g, higher_better) for g in a_groups], [_log_time(g, higher_better) for g in b_groups]
        )
        w = math.sqrt(deff)
        ci = (d - w * (d - ci[0]), d + w * (ci[1] - d))
    return {
        "shift": math.expm1(d),
        "ci": None if ci is None else [math.expm1(ci[0]), math.expm1(ci[1])],
        "promise": _promise(ci, alpha2, AB_FLOOR),
        "n": [len(x), len(y)],
        "design_effect": deff,
    }


def _promise(ci: tuple[float, float] | None, alpha2: float, floor: float) -> float | None:
    """The smallest slowdown caught AB_POWER of the time at this interval's width: caught when the
    interval's low end clears the floor, so the floor plus its half-width, plus z_power standard
    errors (ci in log time; the result a fraction of time)."""
    from mindbench.measure import stats

    if ci is None or ci[1] <= ci[0]:
        return None
    za, zb = stats.z_of(alpha2), NormalDist().inv_cdf(AB_POWER)
    return math.expm1(math.log1p(floor) + (ci[1] - ci[0]) / 2 * (za + zb) / za)


def shift_verdict(ci: list[float] | None, floor: float, target: float | None) -> str:
    """regression: the whole interval is a slowdown beyond `floor`; improvement: the whole interval
    a speed-up beyond it; ok: it rules out a slowdown of `target` (or, without a target, is not a
    regression); else not decided (too few or too noisy repeats to say either)."""
    if ci is None:
        return "not decided" if target is not None else "ok"
    lo, hi = ci
    if lo > floor:
        return "regression"
    if hi < -floor:
        return "improvement"
    if target is None or hi < target:
        return "ok"
    return "not decided"


def ab_alpha(decode_checks: int, looks: int = 1, alpha: float = AB_ALPHA) -> float:
    """Two-sided level of each decode check's interval: the gate's one-sided `alpha` split over
    its decode checks, then over its looks by Pocock's constant."""
    from mindbench.measure import stats

    return stats.pocock_alpha(looks, 2 * alpha / max(1, decode_checks))


def compare_ab(
    a_records: list[Record],
    b_records: list[Record],
    *,
    speed_tol: float = SPEED_TOL,
    z: float = Z,
    rule: str = "hl",
    alpha: float = AB_ALPHA,
    target: float = AB_TARGET,
    looks: int = 1,
    clustered: bool = True,
) -> dict:
    """Speed of B (HEAD) against A (the baseline's commit), both measured on this machine in one
    interleaved run (A, B, B, A...: asv continuous). Drift and background load during the run hit
    both sides alike; that is why, unlike `compare`, rounds marked contended still count here
    (they are listed in the notes). Only speed is judged.

    rule "hl" (default, when every round kept its repeats): decode by the Hodges-Lehmann shift
    with its Mann-Whitney interval (regression when it lies wholly above 0, ok when wholly below
    `target`, else not decided); prefill and TTFT by the same interval against `speed_tol`
    (a lost fast path, not a few percent: a 128-token prefill is too short to gate finer).
    `clustered`: widen each interval by the rounds' design effect (shift_check), because the
    repeats of one side of one round share its process and its stretch of the host's load.
    rule "pooled" (the older rule, and the fallback for records without per-repeat samples): a
    change beyond max(speed_tol, z * sqrt(std1^2 + std2^2)) of the pooled rounds."""
    if rule not in ("hl", "pooled"):
        raise BadInput(f"rule must be hl or pooled, not {rule!r}")

    def pool(records: list[Record]) -> dict[tuple, list[Record]]:
        cells: dict[tuple, list[Record]] = {}
        for r in records:
            if r.status == "ok":
                c = r.config
                cells.setdefault((c.model, c.runtime, c.precision, c.device, r.weights), []).append(r)
        return cells

    pa, pb = pool(a_records), pool(b_records)
    keys = sorted(pa.keys() & pb.keys(), key=str)
    checks, notes = [], []
    with_samples = {k for k in keys if all(r.speed.samples for r in pa[k] + pb[k])}
    if rule == "hl" and len(with_samples) < len(keys):
        notes.append(
            "pooled rule (older records keep no per-repeat samples) for: "
            + "; ".join(_label(k) for k in keys if k not in with_samples)
        )
    alpha2 = ab_alpha(len(with_samples), looks, alpha) if rule == "hl" else None
    for key in keys:
        va, vb = pa[key], pb[key]
        cell = _label(key)
        if {r.hardware.fingerprint for r in va} != {r.hardware.fingerprint for r in vb}:
            raise BadInput(f"{cell}: A and B were measured on different machines; --ab needs one machine")
        contended = [r for r in va + vb if r.speed.verdict == "contended"]
        if contended:
            notes.append(f"{cell}: {len(contended)} of {len(va) + len(vb)} rounds contended (shared by both sides)")
        if {r.speed_config for r in va + vb} != {va[0].speed_config}:
            notes.append(f"{cell}: speed not compared (prompt/new tokens/threads differ between A and B)")
            continue
        for fig, label, higher_better in SPEED:
            if rule == "hl" and key in with_samples:
                ga = [list(r.speed.samples.get(fig) or ()) for r in va]
                gb = [list(r.speed.samples.get(fig) or ()) for r in vb]
                sa, sb = [x for g in ga for x in g], [x for g in gb for x in g]
                if sa and sb:
                    checks.append(
                        _hl_check(
                            cell,
                            label,
                            sa,
                            sb,
                            higher_better,
                            alpha2,
                            fig == "decode_tok_s",
                            speed_tol,
                            target,
                            [len(va), len(vb)],
                            (ga, gb) if clustered else (None, None),
                        )
                    )
                continue
            c = _pooled_check(cell, label, fig, higher_better, va, vb, speed_tol, z)
            if c:
                checks.append(c)
    if not checks:
        raise BadInput("nothing to compare: no cell has speed figures on both sides of the A/B run")
    unmatched = {
        "baseline": [_label(k) for k in pa.keys() - pb.keys()],
        "new": [_label(k) for k in pb.keys() - pa.keys()],
    }
    return _ab_result(checks, len(keys), unmatched, notes, speed_tol, z, rule, AB_FLOOR, alpha, target, looks, alpha2)


INTERLEAVED = "mindbench-ab-interleaved"  # the kind of file scripts/ab_interleave.py writes


def paired_shift_check(a_vals: list[float], b_vals: list[float], higher_better: bool, alpha2: float) -> dict:
    """B's slowdown against A from interleaved pairs (A's i-th repeat beside B's i-th): the
    Hodges-Lehmann centre of the pairs' differences in log time with its signed-rank interval
    (stats.paired_shift_ci), and the smallest slowdown it catches with AB_POWER beyond
    AB_PAIRED_FLOOR, as shift_check.

    Neighbouring pairs share the host's slower swings; where their differences still move
    together (lag-1 autocorrelation rho > 0), the interval is widened by sqrt((1 + rho) / (1 - rho)),
    the variance of a mean of an AR(1) series over that of independent values (rho capped at 0.8)."""
    from mindbench.measure import stats

    pairs = [(a, b) for a, b in zip(a_vals, b_vals) if a and b and a > 0 and b > 0]
    d = [
        y - x
        for x, y in zip(
            _log_time([a for a, _ in pairs], higher_better), _log_time([b for _, b in pairs], higher_better)
        )
    ]
    if not d:
        return {"shift": None, "ci": None, "promise": None, "n": 0, "serial": 0.0}
    est = stats.paired_hodges_lehmann(d)
    ci = stats.paired_shift_ci(d, alpha2)
    rho = min(0.8, max(0.0, stats.lag1_autocorrelation(d)))
    if ci is not None and rho > 0:
        w = math.sqrt((1 + rho) / (1 - rho))
        ci = (est - w * (est - ci[0]), est + w * (ci[1] - est))
    return {
        "shift": math.expm1(est),
        "ci": None if ci is None else [math.expm1(ci[0]), math.expm1(ci[1])],
        "promise": _promise(ci, alpha2, AB_PAIRED_FLOOR),
        "n": len(d),
        "serial": rho,
    }


def compare_interleaved(
    data: dict,
    *,
    speed_tol: float = SPEED_TOL,
    alpha: float = AB_ALPHA,
    target: float = AB_TARGET,
    looks: int | None = None,
) -> dict:
    """Speed of B against A from one interleaved run in two live processes
    (scripts/ab_interleave.py: A and B timed repeat by repeat, A B then B A). Decode regresses
    when the paired interval lies wholly beyond AB_PAIRED_FLOOR, is ok when it rules out `target`, else
    is not decided; prefill and TTFT regress only beyond `speed_tol`, as in compare_ab. `looks`
    (default: the run's own planned looks) sets Pocock's level per look."""
    if not isinstance(data, dict) or data.get("kind") != INTERLEAVED:
        raise BadInput("not an interleaved A/B run (scripts/ab_interleave.py writes one)")
    cells = data.get("cells") or {}
    looks = looks or int(data.get("looks") or 1)
    alpha2 = ab_alpha(len(cells), looks, alpha)
    checks = []
    for cell, row in cells.items():
        for fig, label, higher_better in SPEED:
            a = [s.get(fig) for s in row["a"]]
            b = [s.get(fig) for s in row["b"]]
            r = paired_shift_check(a, b, higher_better, alpha2)
            if not r["n"]:
                continue
            widened = (
                f"x{math.sqrt((1 + r['serial']) / (1 - r['serial'])):.2f} for neighbouring pairs"
                if r["serial"] > 0
                else None
            )
            checks.append(
                _shift_row(
                    cell,
                    label,
                    a,
                    b,
                    r,
                    alpha2,
                    fig == "decode_tok_s",
                    AB_PAIRED_FLOOR,
                    target,
                    speed_tol,
                    rule="signed-rank",
                    what=f"{r['n']} pairs",
                    widened=widened,
                    n=[r["n"], r["n"]],
                    serial=r["serial"],
                )
            )
    if not checks:
        raise BadInput("nothing to compare: the interleaved run holds no timed pairs")
    notes = []
    if (data.get("b") or {}).get("fault"):
        notes.append(f"B ran under MINDBENCH_FAULT={data['b']['fault']} (an injected slowdown)")
    if data.get("stopped"):
        notes.append(
            f"{data.get('pairs')} interleaved pairs a cell in {data.get('timing_s')} s of timing, "
            f"two live processes (stopped: {data['stopped']}); load average {data.get('load_average')}"
        )
    unmatched = {"baseline": [], "new": []}  # one run: both sides timed the same cells
    return _ab_result(
        checks, len(cells), unmatched, notes, speed_tol, Z, "paired", AB_PAIRED_FLOOR, alpha, target, looks, alpha2
    )


def _ab_result(checks, compared, unmatched, notes, speed_tol, z, rule, floor, alpha, target, looks, alpha2) -> dict:
    """The result of either A/B form (rounds' record files, or one interleaved run), in the shape
    `compare` returns, so one renderer, --json and --html serve all three."""
    regressions = sum(c["verdict"] == "regression" for c in checks)
    return {
        "regressions": regressions,
        "improvements": sum(c["verdict"] == "improvement" for c in checks),
        "undecided": sum(c["verdict"] == "not decided" for c in checks),
        "compared_cells": compared,
        "checks": checks,
        "unmatched": unmatched,
        "notes": notes,
        "settings": {
            "quality_tol": QUALITY_TOL,
            "speed_tol": speed_tol,
            "memory_tol": MEMORY_TOL,
            "z": z,
            "hardware": "same machine (A/B)",
            "speed": True,
            "ab": True,
            "rule": rule,
            "floor": floor,  # decode regresses only when its whole interval is a slowdown beyond it
            "alpha": alpha,
            "target": target,
            "looks": looks,
            "interval_alpha": alpha2,
        },
        "exit_code": 1 if regressions else 0,
    }


def _hl_check(cell, label, sa, sb, higher_better, alpha2, gated, speed_tol, target, rounds, groups) -> dict:
    r = shift_check(sa, sb, higher_better, alpha2, *groups)
    deff = r["design_effect"]
    return _shift_row(
        cell,
        label,
        sa,
        sb,
        r,
        alpha2,
        gated,
        AB_FLOOR,
        target,
        speed_tol,
        rule="hodges-lehmann",
        what=None,
        widened=f"x{math.sqrt(deff):.2f} for the rounds' spread" if deff > 1.005 else None,
        n=r["n"],
        design_effect=deff,
        rounds=rounds,
    )


def _shift_row(
    cell, label, sa, sb, r, alpha2, gated, floor, target, speed_tol, *, rule, what, widened, **extra
) -> dict:
    """One A/B check from a shift and its interval (shift_check or paired_shift_check): decode is
    judged against `floor` and `target`, prefill and TTFT against `speed_tol` only."""
    from statistics import median

    verdict = shift_verdict(r["ci"], *((floor, target) if gated else (speed_tol, None)))
    ma, mb = median(x for x in sa if x), median(x for x in sb if x)
    ci = "—" if r["ci"] is None else f"[{100 * r['ci'][0]:+.1f}, {100 * r['ci'][1]:+.1f}]"
    level = f"{100 * (1 - alpha2):.1f}".rstrip("0").rstrip(".")
    if not gated:
        allowed = f"CI > {100 * speed_tol:g} %"
    elif r["promise"] is None:
        allowed = "too few repeats for an interval"
    else:
        allowed = f"CI > {100 * floor:g} %; ok < {100 * target:g} %; catches >= {100 * r['promise']:.1f} %"
    n_a, n_b = (r["n"], r["n"]) if isinstance(r["n"], int) else r["n"]
    return _check(
        cell,
        label,
        ma,
        mb,
        mb - ma,
        None,
        verdict,
        rel=(mb - ma) / ma if ma else None,
        slowdown=r["shift"],
        ci=r["ci"],
        ci_level=1 - alpha2,
        promise=r["promise"],
        rule=rule,
        gated=gated,
        **extra,
        display={
            "baseline": f"{ma:.1f} (n={n_a})",
            "new": f"{mb:.1f} (n={n_b})",
            "change": f"{100 * r['shift']:+.1f} % time {ci} ("
            + ", ".join(x for x in (f"{level} % CI", what, widened) if x)
            + ")",
            "allowed": allowed,
        },
    )


def _repeats(records: list[Record], fig: str) -> list[tuple[float, float, int]]:
    """(mean, std, n) of one figure in each round that measured it."""
    figures = [r.speed.figure(fig) for r in records]
    return [(f.value, f.spread or 0.0, f.n or 1) for f in figures if f.value is not None]


def _pooled_check(cell, label, fig, higher_better, va: list[Record], vb: list[Record], speed_tol, z) -> dict | None:
    sa, sb = _repeats(va, fig), _repeats(vb, fig)
    if not sa or not sb:
        return None
    (ma, sda, _), (mb, sdb, nb) = _pooled(sa), _pooled(sb)
    if ma <= 0:
        return None
    noise = z * math.hypot(sda, sdb)
    allowed = max(noise, speed_tol * ma)
    worse = (ma - mb) if higher_better else (mb - ma)
    return _check(
        cell,
        label,
        ma,
        mb,
        mb - ma,
        allowed,
        _judge(worse, allowed),
        base_spread=sda,
        new_spread=sdb,
        noise=noise,
        rel=(mb - ma) / ma,
        rounds=[len(sa), len(sb)],
        n=nb,
        rule="pooled",
    )


def _fmt(x, spread=None) -> str:
    if x is None:
        return "—"
    if isinstance(x, str):
        return x if len(x) <= 60 else x[:57] + "..."
    s = f"{x:.1f}"
    return s + (f" ± {spread:.1f}" if spread is not None else "")


def render_text(result: dict) -> str:
    from tabulate import tabulate

    rows = []
    for c in result["checks"]:
        change = "—"
        if c["change"] is not None:
            change = f"{c['change']:+.1f}" + (f" ({100 * c['rel']:+.0f}%)" if c.get("rel") is not None else "")
        mark = {"regression": "REGRESSION", "improvement": "improved", "ok": "ok", "not decided": "NOT DECIDED"}[
            c["verdict"]
        ]
        rows.append(
            _display(
                c,
                [
                    c["cell"],
                    c["what"],
                    _fmt(c["baseline"], c.get("base_spread")),
                    _fmt(c["new"], c.get("new_spread")),
                    change,
                    "—" if c["allowed"] is None else f"±{c['allowed']:.1f}",
                    mark,
                ],
            )
        )
    out = [
        tabulate(rows, headers=["cell", "figure", "baseline", "new", "change", "allowed", "verdict"], tablefmt="github")
    ]
    for side, items in result["unmatched"].items():
        if items:
            out.append(f"unmatched in {side}: " + "; ".join(items))
    out.extend(result["notes"])
    s = result["settings"]
    if s.get("ab") and any(c.get("rule") in ("hodges-lehmann", "signed-rank") for c in result["checks"]):
        out.append(_ab_rule(result))
        return "\n".join(out)
    out.append(
        f"{result['regressions']} regression(s), {result['improvements']} improvement(s) over "
        f"{result['compared_cells']} matched cell(s) [unpaired quality: drop > max({s['quality_tol']} pts, "
        f"{s['z']:g}*sqrt(se1^2+se2^2)); speed: change > max({s['speed_tol']:.0%}, "
        f"{s['z']:g}*sqrt(std1^2+std2^2)); memory: rise > {s['memory_tol']:.0%}]"
    )
    out.append(_paired_rules(result))
    return "\n".join(out)


def _ab_rule(result: dict) -> str:
    s = result["settings"]
    dec = [c for c in result["checks"] if c.get("gated")]
    promise = [c["promise"] for c in dec if c.get("promise") is not None]
    lines = [
        f"{result['regressions']} regression(s), {result['undecided']} not decided, "
        f"{result['improvements']} improvement(s) over {result['compared_cells']} cell(s)."
    ]
    if result["undecided"]:
        lines.append(
            "NOT DECIDED: the repeats were too few or too noisy to tell a slowdown of "
            f"{100 * s['target']:g} % from none; this is not a pass. Rerun on a quieter machine or with more rounds."
        )
    if promise:
        lines.append(
            f"On this machine, in this run, the gate catches a decode slowdown of {100 * max(promise):.1f} % "
            f"or more {10 * AB_POWER:.0f} times in 10 (the widest cell)."
        )
    how = (
        "A and B timed repeat by repeat in two live processes; slowdown = Hodges-Lehmann centre of the "
        "pairs' differences in log time per token (decode, prefill) or TTFT, with its signed-rank interval"
        if s.get("rule") == "paired"
        else "every timed repeat; slowdown = Hodges-Lehmann shift of log time per "
        "token (decode, prefill) or of TTFT, with its Mann-Whitney interval"
    )
    lines.append(
        f"[A/B rule (docs/gate.md): {how}; decode regresses when the "
        f"whole interval is a slowdown beyond {100 * s['floor']:g} % "
        f"(false alarms <= {100 * s['alpha']:g} % over "
        "the gate's decode checks"
        + (f" and {s['looks']} looks" if s.get("looks", 1) > 1 else "")
        + f"), is ok when it rules out {100 * s['target']:g} %; prefill and TTFT regress beyond "
        f"{100 * s['speed_tol']:g} %]"
    )
    return "\n".join(lines)


def _display(check: dict, row: list, wrap=str) -> list:
    """A paired or fidelity check's own wording for the baseline/new/change/allowed columns
    (`wrap` escapes it for HTML)."""
    d = check.get("display") or {}
    return (
        row[:2]
        + [wrap(d[k]) if k in d else row[i] for i, k in enumerate(("baseline", "new", "change", "allowed"), 2)]
        + row[6:]
    )


def _paired_rules(result: dict) -> str:
    s = result["settings"]
    return (
        f"[paired quality (both runs kept per-task verdicts): exact McNemar p < {s.get('alpha', alpha_of(s['z'])):.3f} "
        f"and drop > {s['quality_tol']} pts; fidelity: KLD CIs apart and rise > max({s.get('kld_tol', KLD_TOL):.0%}, "
        f"{KLD_FLOOR} nats)]"
    )


def _load(path: str, side: str) -> list[Record]:
    try:
        records = load_records([path])
    except MindbenchError as e:  # missing file, newer schema: bad input, not a regression
        raise BadInput(f"{side}: {e.message}") from None
    if not records:
        raise BadInput(f"{side} {path} holds no readable records")
    return records
