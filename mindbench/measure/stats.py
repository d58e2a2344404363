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

import functools
import math
import random
from statistics import NormalDist, median

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
    return min(1.0, 2 * tail / 2**n)  # exact integers: 2.0 ** n overflows past n = 1023


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
    while 2.0 * 0.5**k > alpha:
        k += 1
    return k


def mde_paired(n: int, discordant: int, alpha: float = ALPHA, power: float = POWER) -> float | None:
    """Smallest detectable |p_B - p_A| (a fraction, 0-1) at this n; see the module docstring."""
    if n <= 0:
        return None
    za, zb = z_of(alpha), NormalDist().inv_cdf(power)
    psi_hat = discordant / n

    def short(d: float) -> float:  # < 0 while d is too small to detect
        psi = max(psi_hat, d)
        return d * math.sqrt(n) - za * math.sqrt(psi) - zb * math.sqrt(max(psi - d * d, 0.0))

    lo, hi = 0.0, None
    for i in range(1, 1001):  # the first grid step that is detectable, then bisect
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


def bootstrap_ci(
    diffs: list[float], level: float = 0.95, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float]:
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
    """ "A better", "B better", or "not distinguishable at n = ..." (never a ranking of noise)."""
    if p is not None and p < alpha and diff != 0:
        return f"{b} better" if diff > 0 else f"{a} better"
    return f"not distinguishable at n = {n}"


# --- two cells ------------------------------------------------------------------------------


def paired(
    items_a: dict,
    items_b: dict,
    *,
    alpha: float = ALPHA,
    a: str = "A",
    b: str = "B",
    resamples: int = RESAMPLES,
    seed: int = SEED,
    scale: float = 100.0,
    higher_is_better: bool = True,
) -> dict | None:
    """Compare two {task_id: per-item value} maps on the tasks they share; None if none.

    Values are fractions correct (scale 100: differences in points) or a continuous metric's
    values (scale 1). "right_to_wrong" counts the items that got worse in the metric's direction,
    "wrong_to_right" those that got better; the test is exact McNemar for 0/1 values and the exact
    sign test on the items that changed otherwise (the same binomial; Conover 1999, sec. 3.4)."""
    ids = sorted(set(items_a) & set(items_b))
    if not ids:
        return None
    va, vb = [float(items_a[i]) for i in ids], [float(items_b[i]) for i in ids]
    n = len(ids)
    worse = (lambda x, y: x > y) if higher_is_better else (lambda x, y: x < y)
    r2w = sum(worse(x, y) for x, y in zip(va, vb))
    w2r = sum(worse(y, x) for x, y in zip(va, vb))
    binary = all(x in (0.0, 1.0) for x in va + vb)
    diffs = [scale * (y - x) for x, y in zip(va, vb)]
    diff = sum(diffs) / n
    p = mcnemar(r2w, w2r)
    lo, hi = bootstrap_ci(diffs, resamples=resamples, seed=seed)
    # The detectable effect of McNemar's design holds for 0/1 verdicts only.
    mde = mde_paired(n, r2w + w2r, alpha) if binary else None
    gain = diff if higher_is_better else -diff
    return {
        "test": "mcnemar" if binary else "sign test",
        "n": n,
        "score_a": scale * sum(va) / n,
        "score_b": scale * sum(vb) / n,
        "diff": diff,
        "ci": [lo, hi],
        "right_to_wrong": r2w,
        "wrong_to_right": w2r,
        "p": p,
        "mde": None if mde is None else scale * mde,
        "alpha": alpha,
        "higher_is_better": higher_is_better,
        "verdict": verdict(p, gain, n, alpha, a, b),
    }


def unpaired(
    score_a: float, n_a: int, score_b: float, n_b: int, *, alpha: float = ALPHA, a: str = "A", b: str = "B"
) -> dict | None:
    """The fallback on two scores (0-100) without per-task verdicts."""
    if not n_a or not n_b or score_a is None or score_b is None:
        return None
    pa, pb = score_a / 100, score_b / 100
    p = two_proportion(pa, n_a, pb, n_b)
    half = z_of(0.05) * math.sqrt(pa * (1 - pa) / n_a + pb * (1 - pb) / n_b)
    diff = score_b - score_a
    pooled = (pa * n_a + pb * n_b) / (n_a + n_b)
    return {
        "test": "two-proportion z (unpaired)",
        "n": min(n_a, n_b),
        "score_a": score_a,
        "score_b": score_b,
        "diff": diff,
        "ci": [diff - 100 * half, diff + 100 * half],
        "right_to_wrong": None,
        "wrong_to_right": None,
        "p": p,
        "mde": 100 * mde_unpaired(pooled, n_a, n_b, alpha),
        "alpha": alpha,
        "verdict": verdict(p, diff, min(n_a, n_b), alpha, a, b),
    }


# --- shifts between two sets of timings (the A/B speed gate) --------------------------------
#
# The gate compares the timed repeats of side A (the baseline's code) and side B (HEAD) measured
# on one machine. Timings are skewed (a preempted repeat is slow, nothing makes one much faster),
# so the shift is estimated without assuming normality:
#
# - Hodges-Lehmann shift: the median of all m*n differences y_j - x_i (Hodges and Lehmann,
#   "Estimates of location based on rank tests", Ann. Math. Statist. 34(2), 1963, 598-611). One
#   outlying repeat moves it by at most one rank among m*n.
# - Its confidence interval by inverting the Mann-Whitney test (Hollander, Wolfe and Chicken,
#   "Nonparametric Statistical Methods", 3rd ed., 2014, section 4.3; Bauer, JASA 67, 1972,
#   687-690): with D(1) <= ... <= D(mn) the ordered differences, [D(k), D(mn + 1 - k)] covers the
#   true shift with probability >= 1 - alpha, where k - 1 is the largest u with
#   P(U <= u) <= alpha / 2 under "no shift" (U the Mann-Whitney count of pairs y_j < x_i, so k - 1
#   is the two-sided test's lower critical value). P(U <= u) is exact from the recurrence
#   c(u; m, n) = c(u - n; m - 1, n) + c(u; m, n - 1) (Mann and Whitney, Ann. Math. Statist. 18,
#   1947, 50-60) while m*n <= EXACT_MN, else the normal approximation
#   k = floor(mn/2 - z_{1-alpha/2} sqrt(mn(m + n + 1)/12)) (Hollander et al. eq. 4.43).
# - Wilson's score interval for a rate (detections out of simulated gate runs): Wilson, "Probable
#   inference, the law of succession, and statistical inference", JASA 22, 1927, 209-212:
#   (p + z^2/2n +- z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n).
# - Pocock's constant nominal level for K equally spaced looks at accumulating data with an overall
#   two-sided 0.05 (Pocock, "Group sequential methods in the design and analysis of clinical
#   trials", Biometrika 64(2), 1977, 191-199, Table 1): a gate that adds rounds until it can decide
#   looks several times, and testing each look at 0.05 would cry wolf more often than 5 %.

EXACT_MN = 400  # the exact null distribution of U costs O(m * n * mn); beyond this the normal one is within a rank
POCOCK_05 = {1: 0.05, 2: 0.0294, 3: 0.0221, 4: 0.0182, 5: 0.0158, 10: 0.0106}


def hodges_lehmann(x: list[float], y: list[float]) -> float:
    """The Hodges-Lehmann estimate of the shift of y against x: median of all y_j - x_i."""
    if not x or not y:
        raise ValueError("hodges_lehmann needs at least one value on each side")
    return median([b - a for a in x for b in y])


def mann_whitney_cdf(u: int, m: int, n: int) -> float:
    """P(U <= u) for the Mann-Whitney U of samples of sizes m and n under "no shift", exact."""
    if u < 0:
        return 0.0
    if u >= m * n:
        return 1.0
    return _mw_cumulative(m, n)[u]


@functools.lru_cache(maxsize=256)
def _mw_cumulative(m: int, n: int) -> tuple[float, ...]:
    """P(U <= u) for u = 0..mn, from the counts of arrangements with each U (Mann and Whitney's
    recurrence c(u; i, j) = c(u - j; i - 1, j) + c(u; i, j - 1)); cached: a gate asks for the same
    sizes once per figure."""
    mn = m * n
    prev = [[1] + [0] * mn for _ in range(n + 1)]  # i = 0: U = 0 only
    for i in range(1, m + 1):
        cur = [[1] + [0] * mn]  # j = 0: U = 0 only
        for j in range(1, n + 1):
            row = [0] * (mn + 1)
            a, b = prev[j], cur[j - 1]
            for v in range(i * j + 1):
                row[v] = (a[v - j] if v >= j else 0) + b[v]
            cur.append(row)
        prev = cur
    total, acc, out = math.comb(m + n, m), 0, []
    for c in prev[n]:
        acc += c
        out.append(acc / total)
    return tuple(out)


def mann_whitney_k(m: int, n: int, alpha: float = ALPHA) -> int:
    """The rank k of the two-sided 1 - alpha shift interval [D(k), D(mn + 1 - k)]; 0 when even
    [D(1), D(mn)] does not reach that confidence (too few repeats)."""
    mn = m * n
    if mn <= EXACT_MN:
        k = 0
        while mann_whitney_cdf(k, m, n) <= alpha / 2:
            k += 1
        return k
    return max(0, math.floor(mn / 2 - z_of(alpha) * math.sqrt(mn * (m + n + 1) / 12)))


def shift_ci(x: list[float], y: list[float], alpha: float = ALPHA) -> tuple[float, float] | None:
    """The 1 - alpha confidence interval of the shift of y against x by inverting the Mann-Whitney
    test; None when the samples are too small for that confidence."""
    k = mann_whitney_k(len(x), len(y), alpha)
    if k < 1:
        return None
    d = sorted(b - a for a in x for b in y)
    return d[k - 1], d[len(d) - k]


def wilson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for a rate of k in n (never outside 0-1, sensible at k = 0 or n)."""
    if n <= 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lo, hi = (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)
    return (0.0 if k == 0 else lo), (1.0 if k == n else hi)  # exact ends, not rounding residue


def pocock_alpha(looks: int, alpha: float = ALPHA) -> float:
    """Nominal level per look so that `looks` looks keep an overall `alpha`: Pocock's constant
    (tabulated for an overall 0.05, scaled in proportion for other levels), Bonferroni's alpha / K
    for a number of looks the table lacks (conservative)."""
    if looks < 1:
        raise ValueError("looks must be at least 1")
    return POCOCK_05[looks] / 0.05 * alpha if looks in POCOCK_05 else alpha / looks


def round_bootstrap_ci(
    rounds: list[tuple[list[float], list[float]]], alpha: float = ALPHA, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float] | None:
    """Percentile CI of the mean within-round shift (median of B minus median of A) by a two-level
    bootstrap: rounds resampled with replacement, then each chosen round's repeats (Davison and
    Hinkley, "Bootstrap Methods and their Application", 1997, section 3.8: resampling both stages
    keeps the between-round variation that one process per side adds). None below two rounds."""
    if len(rounds) < 2:
        return None
    rng = random.Random(seed)

    def med(v):
        v = sorted(v)
        return (v[(len(v) - 1) // 2] + v[len(v) // 2]) / 2

    stats_ = []
    for _ in range(resamples):
        total = 0.0
        for _ in rounds:
            a, b = rounds[rng.randrange(len(rounds))]
            total += med(rng.choices(b, k=len(b))) - med(rng.choices(a, k=len(a)))
        stats_.append(total / len(rounds))
    stats_.sort()
    lo = stats_[int(math.floor(alpha / 2 * resamples))]
    hi = stats_[int(math.ceil((1 - alpha / 2) * resamples)) - 1]
    return lo, hi


def design_effect(*conditions: list[list[float]]) -> float:
    """Kish's design effect of clustered samples, 1 + (k - 1) * ICC (Kish, "Survey Sampling",
    1965, section 5.4), with the intraclass correlation from one-way ANOVA within each condition,
    ICC = (MSB - MSW) / (MSB + (k - 1) MSW) (Donner, "A review of inference procedures for the
    intraclass correlation coefficient", Int. Stat. Rev. 54, 1986), k the mean group size.

    The A/B gate's repeats come in groups (one process, one stretch of the host's load per side of
    a round) that differ more than their own repeats do; treating the repeats as independent
    would make the interval too narrow by sqrt of this. Groups are compared only within a
    condition (A's rounds among themselves, B's among themselves), so a real shift between A and
    B is not mistaken for clustering. 1 when there is nothing to estimate it from."""
    ssb = ssw = 0.0
    dfb = dfw = 0
    sizes = []
    for groups in conditions:
        groups = [g for g in groups if g]
        if len(groups) < 2:
            continue
        grand = sum(sum(g) for g in groups) / sum(len(g) for g in groups)
        for g in groups:
            m = sum(g) / len(g)
            ssb += len(g) * (m - grand) ** 2
            ssw += sum((x - m) ** 2 for x in g)
            dfw += len(g) - 1
            sizes.append(len(g))
        dfb += len(groups) - 1
    if dfb == 0 or dfw == 0:
        return 1.0
    k = sum(sizes) / len(sizes)
    msb, msw = ssb / dfb, ssw / dfw
    if msb + (k - 1) * msw <= 0:
        return 1.0
    icc = (msb - msw) / (msb + (k - 1) * msw)
    return max(1.0, 1 + (k - 1) * icc)


# --- paired shifts: the Wilcoxon signed-rank family ------------------------------------------
# The interleaved A/B gate times A and B repeat by repeat in two live processes (A B, B A, ...),
# so each pair of neighbouring repeats shares its stretch of the host's load and its difference
# is what carries the information. Distribution-free, as the Mann-Whitney interval above:
# Hollander, Wolfe and Chicken, "Nonparametric Statistical Methods", 3rd ed., 2014, sections
# 3.1-3.3 (the signed-rank statistic T+, its exact null distribution, the Hodges-Lehmann estimate
# as the median of the Walsh averages and the interval [W(k), W(M + 1 - k)] that inverts the test).

EXACT_SIGNED_RANK_N = 100  # exact up to here (the counts' table has n(n+1)/2 + 1 entries); normal beyond


@functools.lru_cache(maxsize=64)
def _signed_rank_cumulative(n: int) -> tuple[float, ...]:
    """P(T+ <= t) for t = 0..n(n+1)/2 under symmetry about 0, from the number of subsets of
    {1..n} with each sum: c_n(t) = c_{n-1}(t) + c_{n-1}(t - n)."""
    top = n * (n + 1) // 2
    c = [1] + [0] * top
    for i in range(1, n + 1):
        for t in range(i * (i + 1) // 2, i - 1, -1):
            c[t] += c[t - i]
    total, acc, out = 2**n, 0, []
    for x in c:
        acc += x
        out.append(acc / total)
    return tuple(out)


def signed_rank_cdf(t: int, n: int) -> float:
    """P(T+ <= t) for the Wilcoxon signed-rank statistic of n nonzero differences, exact."""
    if t < 0:
        return 0.0
    if t >= n * (n + 1) // 2:
        return 1.0
    return _signed_rank_cumulative(n)[t]


def walsh_averages(d: list[float]) -> list[float]:
    """All (d_i + d_j) / 2 for i <= j, sorted: the n(n+1)/2 numbers the signed-rank test ranks."""
    return sorted((d[i] + d[j]) / 2 for i in range(len(d)) for j in range(i, len(d)))


def paired_hodges_lehmann(d: list[float]) -> float:
    """The Hodges-Lehmann estimate of the centre of paired differences: the median of their
    Walsh averages (one wild pair moves it by one rank, not by its size)."""
    if not d:
        raise ValueError("paired_hodges_lehmann needs at least one difference")
    return median(walsh_averages(d))


def signed_rank_k(n: int, alpha: float = ALPHA) -> int:
    """The rank k of the two-sided 1 - alpha interval [W(k), W(M + 1 - k)], M = n(n+1)/2: the
    largest k with P(T+ <= k - 1) <= alpha / 2; 0 when n is too small for that confidence."""
    if n <= EXACT_SIGNED_RANK_N:
        k = 0
        while signed_rank_cdf(k, n) <= alpha / 2:
            k += 1
        return k
    # P(T+ <= k - 1) by the normal law with a continuity correction (k - 1 + 0.5)
    m = n * (n + 1) / 2
    return max(0, math.floor(m / 2 + 0.5 - z_of(alpha) * math.sqrt(n * (n + 1) * (2 * n + 1) / 24)))


def paired_shift_ci(d: list[float], alpha: float = ALPHA) -> tuple[float, float] | None:
    """The 1 - alpha confidence interval of the centre of paired differences by inverting the
    signed-rank test; None when there are too few pairs for that confidence (at alpha 0.05: 6)."""
    k = signed_rank_k(len(d), alpha)
    if k < 1:
        return None
    w = walsh_averages(d)
    return w[k - 1], w[len(w) - k]


def lag1_autocorrelation(x: list[float]) -> float:
    """The lag-1 autocorrelation of a series (0 when it cannot be estimated): neighbouring pair
    differences that still move together mean the signed-rank interval is too narrow."""
    n = len(x)
    if n < 3:
        return 0.0
    m = sum(x) / n
    var = sum((v - m) ** 2 for v in x)
    if var <= 0:
        return 0.0
    return sum((x[i] - m) * (x[i + 1] - m) for i in range(n - 1)) / var
