"""Paired statistics for suites: is cell B better or worse than cell A on the same tasks?

Two cells of one model scored on the same tasks are paired data: most tasks get the same verdict
in both, and only the tasks that flipped carry information. An unpaired test (two independent
proportions) throws that away and, at the 10-50 tasks a quick run scores, calls nearly every
difference noise; the paired test sees a drop of a few flipped tasks when none flipped back.

- McNemar's exact test: the tasks right in A and wrong in B (b) against the reverse (c); under
  "no difference" each flip goes either way with probability 1/2, so the two-sided p-value is the
  binomial tail 2 * P(X <= min(b, c)), X ~ Binomial(b + c, 1/2), capped at 1. With sampled
  scores (fractions per task, n_samples > 1) the same test on "fraction fell / rose" is the sign
  test; identical to McNemar when every verdict is 0 or 1.
- Paired bootstrap: the tasks are resampled with replacement (the same draw for both cells), the
  score difference recomputed; a seeded generator makes the interval the same on every run.
- Minimum detectable effect (MDE): the smallest true difference the test finds with 80 % power at
  alpha 0.05 at this n, by Connor's sample-size formula for the paired-sample design (R. J.
  Connor, "Sample size for testing differences in proportions for the paired-sample design",
  Biometrics 43(1), 1987, 207-211):  n = (z_{1-a/2} sqrt(psi) + z_{1-b} sqrt(psi - d^2))^2 / d^2,
  with psi the discordant fraction (observed, and at least d, since d = p10 - p01 <= p10 + p01),
  solved for d. It is floored at the exact test's own limit: fewer than k discordant tasks can
  never reach p < alpha (k = 6 at alpha 0.05, as 2 * 0.5^5 = 0.0625), so nothing below k/n
  is detectable at all.
- Unpaired fallback (records without per-task verdicts, or different tasks): the two-proportion
  z-test with the pooled proportion, and its MDE (z_{1-a/2} + z_{1-b}) sqrt(p(1-p)(1/n1 + 1/n2))
  (the normal approximation without continuity correction; Fleiss, Levin and Paik, "Statistical
  Methods for Rates and Proportions", 3rd ed., 2003, ch. 4).

Differences are B - A in score points (0-100). Pure Python: no numpy, scipy or torch.
"""

from __future__ import annotations

import math
import random
from statistics import NormalDist

ALPHA = 0.05
POWER = 0.8
# 2000 resamples: the 2.5 % and 97.5 % quantiles move by well under a point between seeds at the
# suite sizes here, and a report over dozens of cells stays under a second in pure Python.
RESAMPLES = 2000
SEED = 0


# --- the tests ------------------------------------------------------------------------------

def binom_two_sided(k: int, n: int) -> float:
    """Two-sided exact binomial p-value of k successes in n trials at p = 1/2 (scipy's binomtest
    gives the same: at p = 1/2 the distribution is symmetric)."""
    if n == 0:
        return 1.0
    k = min(k, n - k)
    tail = sum(math.comb(n, i) for i in range(k + 1))
    return min(1.0, 2 * tail / 2 ** n)      # exact integers: 2.0 ** n overflows past n = 1023


def mcnemar(b: int, c: int) -> float:
    """Exact McNemar p-value from the two discordant counts."""
    return binom_two_sided(min(b, c), b + c)


def critical_flips(discordant: int, alpha: float = ALPHA) -> int:
    """Smallest net count |b - c| that the exact test calls significant when `discordant` = b + c
    tasks flipped (p falls as the split gets more lopsided); with too few flips even all one way,
    the fewest one-way flips that ever could be."""
    for k in range(discordant % 2, discordant + 1, 2):
        if mcnemar((discordant + k) // 2, (discordant - k) // 2) < alpha:
            return k
    return max(discordant + 1, _min_discordant(alpha))


def z_of(alpha: float) -> float:
    return NormalDist().inv_cdf(1.0 - alpha / 2.0)


def _min_discordant(alpha: float) -> int:
    """Fewest discordant pairs, all one way, that the exact test can call significant."""
    k = 1
    while 2.0 * 0.5 ** k > alpha:
        k += 1
    return k


def mde_paired(n: int, discordant: int, alpha: float = ALPHA, power: float = POWER) -> float | None:
    """Smallest detectable |p_B - p_A| (a fraction, 0-1) at this n; see the module docstring."""
    if n <= 0:
        return None
    za, zb = z_of(alpha), NormalDist().inv_cdf(power)
    psi_hat = discordant / n

    def short(d: float) -> float:          # < 0 while d is too small to detect
        psi = max(psi_hat, d)
        return d * math.sqrt(n) - za * math.sqrt(psi) - zb * math.sqrt(max(psi - d * d, 0.0))

    lo, hi = 0.0, None
    for i in range(1, 1001):                # the first grid step that is detectable, then bisect
        if short(i / 1000) >= 0:
            lo, hi = (i - 1) / 1000, i / 1000
            break
    if hi is None:
        return 1.0
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if short(mid) >= 0 else (mid, hi)
    return min(1.0, max(hi, _min_discordant(alpha) / n))


def two_proportion(p1: float, n1: int, p2: float, n2: int) -> float:
    """Two-sided p-value of the pooled two-proportion z-test (p in 0-1)."""
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    var = pooled * (1 - pooled) * (1 / n1 + 1 / n2)
    if var <= 0:
        return 1.0
    z = (p2 - p1) / math.sqrt(var)
    return 2.0 * NormalDist().cdf(-abs(z))


def mde_unpaired(p: float, n1: int, n2: int, alpha: float = ALPHA, power: float = POWER) -> float:
    # p clipped off 0 and 1: a suite that scored 0 % has not shown that its variance is zero.
    eps = 1.0 / (n1 + n2)
    p = min(max(p, eps), 1 - eps)
    return min(1.0, (z_of(alpha) + NormalDist().inv_cdf(power)) * math.sqrt(p * (1 - p) * (1 / n1 + 1 / n2)))


def bootstrap_ci(diffs: list[float], level: float = 0.95, resamples: int = RESAMPLES,
                 seed: int = SEED) -> tuple[float, float]:
    """Percentile CI of mean(diffs) by resampling the tasks (paired: one draw serves both cells)."""
    n = len(diffs)
    if n == 0:
        return (0.0, 0.0)
    if min(diffs) == max(diffs):
        return (diffs[0], diffs[0])
    rng = random.Random(seed)
    means = sorted(sum(rng.choices(diffs, k=n)) / n for _ in range(resamples))
    tail = (1 - level) / 2
    return means[int(math.floor(tail * resamples))], means[int(math.ceil((1 - tail) * resamples)) - 1]


def verdict(p: float | None, diff: float, n: int, alpha: float = ALPHA, a: str = "A", b: str = "B") -> str:
    """"A better", "B better", or "not distinguishable at n = ..." (never a ranking of noise)."""
    if p is not None and p < alpha and diff != 0:
        return f"{b} better" if diff > 0 else f"{a} better"
    return f"not distinguishable at n = {n}"


# --- two cells ------------------------------------------------------------------------------

def paired(items_a: dict, items_b: dict, *, alpha: float = ALPHA, a: str = "A", b: str = "B",
           resamples: int = RESAMPLES, seed: int = SEED) -> dict | None:
    """Compare two {task_id: fraction correct} maps on the tasks they share; None if none."""
    ids = sorted(set(items_a) & set(items_b))
    if not ids:
        return None
    va, vb = [float(items_a[i]) for i in ids], [float(items_b[i]) for i in ids]
    n = len(ids)
    r2w = sum(x > y for x, y in zip(va, vb))
    w2r = sum(x < y for x, y in zip(va, vb))
    binary = all(x in (0.0, 1.0) for x in va + vb)
    diffs = [100.0 * (y - x) for x, y in zip(va, vb)]
    diff = sum(diffs) / n
    p = mcnemar(r2w, w2r)
    lo, hi = bootstrap_ci(diffs, resamples=resamples, seed=seed)
    mde = mde_paired(n, r2w + w2r, alpha)
    return {"test": "mcnemar" if binary else "sign test", "n": n, "score_a": 100 * sum(va) / n,
            "score_b": 100 * sum(vb) / n, "diff": diff, "ci": [lo, hi], "right_to_wrong": r2w,
            "wrong_to_right": w2r, "p": p, "mde": 100 * mde, "alpha": alpha,
            "verdict": verdict(p, diff, n, alpha, a, b)}


def unpaired(score_a: float, n_a: int, score_b: float, n_b: int, *, alpha: float = ALPHA,
             a: str = "A", b: str = "B") -> dict | None:
    """The fallback on two scores (0-100) without per-task verdicts."""
    if not n_a or not n_b or score_a is None or score_b is None:
        return None
    pa, pb = score_a / 100, score_b / 100
    p = two_proportion(pa, n_a, pb, n_b)
    half = z_of(0.05) * math.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
    diff = score_b - score_a
    pooled = (pa * n_a + pb * n_b) / (n_a + n_b)
    return {"test": "two-proportion z (unpaired)", "n": min(n_a, n_b), "score_a": score_a,
            "score_b": score_b, "diff": diff, "ci": [diff - 100 * half, diff + 100 * half],
            "right_to_wrong": None, "wrong_to_right": None, "p": p,
            "mde": 100 * mde_unpaired(pooled, n_a, n_b, alpha), "alpha": alpha,
            "verdict": verdict(p, diff, min(n_a, n_b), alpha, a, b)}
