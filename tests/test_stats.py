"""Paired statistics (mindbench.measure.stats) against known values: scipy's exact binomial test (values
copied from scipy 1.17.1, and recomputed when scipy is installed), a textbook McNemar table, and
Connor's sample-size formula written out again here."""

import math
import random
from statistics import NormalDist

import pytest

from mindbench.decide import reference
from mindbench.measure import stats
from tests.records import record
from tests.records import score as quality

# (b, c, scipy.stats.binomtest(min(b, c), b + c, 0.5).pvalue), scipy 1.17.1
SCIPY_BINOMTEST = [
    (1, 9, 0.021484375),
    (150, 86, 3.7159361395713866e-05),
    (6, 0, 0.03125),
    (5, 0, 0.0625),
    (12, 4, 0.076812744140625),
    (3, 3, 1.0),
    (40, 25, 0.08168153394154003),
    (7, 2, 0.1796875),
]


@pytest.mark.parametrize("b,c,expected", SCIPY_BINOMTEST)
def test_mcnemar_matches_scipy_binomtest(b, c, expected):
    assert stats.mcnemar(b, c) == pytest.approx(expected, abs=1e-6, rel=1e-9)
    assert stats.mcnemar(c, b) == stats.mcnemar(b, c)


def test_mcnemar_textbook_example():
    # Agresti, Categorical Data Analysis (2nd ed., 2002), Table 10.1: approval of the President's
    # performance in two surveys of the same 1600 people; 150 approve -> disapprove, 86 the
    # reverse. The book's McNemar statistic z^2 = (86 - 150)^2 / (86 + 150) = 17.36 (p < 0.001).
    # The exact test agrees, and the normal approximation is close at this size.
    p = stats.mcnemar(150, 86)
    assert p == pytest.approx(3.7159361395713866e-05, rel=1e-9)
    z2 = (86 - 150) ** 2 / (86 + 150)
    assert z2 == pytest.approx(17.36, abs=0.005)
    assert p == pytest.approx(2 * NormalDist().cdf(-math.sqrt(z2)), rel=0.3)
    # by hand: 1 of 10 discordant pairs one way -> 2 * (1 + 10) / 2^10
    assert stats.mcnemar(1, 9) == 22 / 1024
    assert stats.mcnemar(0, 0) == 1.0


def test_mcnemar_large_counts_do_not_overflow():
    assert 0 < stats.mcnemar(700, 650) < 1


def test_mcnemar_against_scipy_when_installed():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = random.Random(1)
    for _ in range(200):
        b, c = rng.randrange(0, 60), rng.randrange(0, 60)
        if b + c == 0:
            continue
        ref = scipy_stats.binomtest(min(b, c), b + c, 0.5).pvalue
        assert stats.mcnemar(b, c) == pytest.approx(ref, abs=1e-6)


# (p1, n1, p2, n2, two-sided p) from the pooled z by hand and scipy.stats.norm.sf, scipy 1.17.1
TWO_PROP = [
    (0.5, 50, 0.3, 50, 0.041226833337163676),
    (0.49, 49, 0.0, 49, 1.7077624558010967e-08),
    (0.3, 20, 0.4, 20, 0.5073346887814887),
]


@pytest.mark.parametrize("p1,n1,p2,n2,expected", TWO_PROP)
def test_two_proportion_z(p1, n1, p2, n2, expected):
    assert stats.two_proportion(p1, n1, p2, n2) == pytest.approx(expected, abs=1e-6)


def test_two_proportion_degenerate_is_not_significant():
    assert stats.two_proportion(0.0, 10, 0.0, 10) == 1.0


def connor_n(d, psi, alpha=0.05, power=0.8):
    """Connor (1987): pairs needed to detect d = p10 - p01 with discordant fraction psi."""
    za, zb = NormalDist().inv_cdf(1 - alpha / 2), NormalDist().inv_cdf(power)
    return (za * math.sqrt(psi) + zb * math.sqrt(psi - d * d)) ** 2 / (d * d)


@pytest.mark.parametrize("n,discordant", [(164, 20), (400, 60), (1000, 150)])
def test_mde_paired_solves_connors_formula(n, discordant):
    d = stats.mde_paired(n, discordant)
    assert connor_n(d, max(discordant / n, d)) == pytest.approx(n, rel=1e-6)


def test_mde_paired_known_value():
    # psi = 0.2, d = 0.1: (1.95996 * 0.44721 + 0.84162 * 0.43589)^2 / 0.01 = 154.6 pairs, so at
    # n = 154.6 the MDE is 0.1 (worked by hand from Connor's formula).
    n = connor_n(0.1, 0.2)
    assert n == pytest.approx(154.6, abs=0.1)
    assert stats.mde_paired(round(n), round(0.2 * round(n))) == pytest.approx(0.1, abs=0.002)


def test_mde_paired_floor_and_monotone():
    # No flips seen: the exact test still needs 6 one-way flips at alpha 0.05 (2 * 0.5^5 > 0.05).
    assert stats.mde_paired(20, 0) >= 6 / 20
    assert stats.mde_paired(1000, 0) >= 6 / 1000
    ms = [stats.mde_paired(n, n // 10) for n in (20, 50, 100, 400)]
    assert ms == sorted(ms, reverse=True)
    assert stats.mde_paired(0, 0) is None


def test_mde_unpaired_formula():
    # (1.95996 + 0.84162) * sqrt(0.5 * 0.5 * (2 / 50)) = 0.2802
    assert stats.mde_unpaired(0.5, 50, 50) == pytest.approx(2.801585 * math.sqrt(0.01), abs=1e-4)
    assert stats.mde_unpaired(0.0, 50, 50) > 0


def test_bootstrap_is_seeded_and_close_to_the_normal_interval():
    rng = random.Random(7)
    diffs = [rng.choice((100.0, -100.0, 0.0, 0.0, 0.0)) for _ in range(400)]
    a, b = stats.bootstrap_ci(diffs), stats.bootstrap_ci(diffs)
    assert a == b  # deterministic
    assert stats.bootstrap_ci(diffs, seed=1) != a  # and really resampled
    m = sum(diffs) / len(diffs)
    sd = math.sqrt(sum((x - m) ** 2 for x in diffs) / (len(diffs) - 1))
    half = 1.96 * sd / math.sqrt(len(diffs))
    assert a[0] == pytest.approx(m - half, abs=1.0) and a[1] == pytest.approx(m + half, abs=1.0)
    assert stats.bootstrap_ci([0.0] * 10) == (0.0, 0.0)


def items(right: int, n: int, prefix="t") -> dict:
    return {f"{prefix}{i}": float(i < right) for i in range(n)}


def test_paired_counts_flips_and_decides():
    a = items(20, 40)  # t0..t19 right
    b = dict(a, **{f"t{i}": 0.0 for i in range(12)})  # 12 lost, none gained
    r = stats.paired(a, b, a="fp32", b="int4")
    assert (r["right_to_wrong"], r["wrong_to_right"], r["n"]) == (12, 0, 40)
    assert r["p"] == pytest.approx(2 * 0.5**12) and r["diff"] == pytest.approx(-30.0)
    assert r["verdict"] == "fp32 better" and r["ci"][1] < 0 and r["test"] == "mcnemar"
    assert stats.paired(b, a)["verdict"] == "B better"
    # 3 lost, 1 gained: inside the noise, said so instead of ranked
    c = dict(a, t0=0.0, t1=0.0, t2=0.0, t30=1.0)
    r = stats.paired(a, c)
    assert r["verdict"] == "not distinguishable at n = 40" and r["mde"] > abs(r["diff"])


def test_paired_only_on_shared_tasks_and_sampled_scores():
    assert stats.paired({"x": 1.0}, {"y": 1.0}) is None
    r = stats.paired({"x": 1.0, "y": 0.5, "z": 0.0}, {"x": 1.0, "y": 0.25, "w": 1.0})
    assert r["n"] == 2 and r["right_to_wrong"] == 1 and r["test"] == "sign test"


def test_unpaired_fallback():
    r = stats.unpaired(49.0, 49, 26.5, 49, a="fp32", b="int4")
    assert r["test"].startswith("two-proportion") and r["right_to_wrong"] is None
    assert r["p"] == pytest.approx(stats.two_proportion(0.49, 49, 0.265, 49))
    assert stats.unpaired(50.0, 0, 40.0, 10) is None


def rec(
    precision,
    suite_items=None,
    *,
    model="smollm2-135m-instruct",
    runtime="transformers",
    score=None,
    n=None,
    status="ok",
):
    """A cell scored on each suite: from its per-task verdicts, or (items None) `score` alone."""
    q = {
        suite: quality(
            score if its is None else 100 * sum(its.values()) / len(its),
            stderr=0.1,
            n=n or (len(its) if its else 20),
            items=its,
        )
        for suite, its in (suite_items or {}).items()
    }
    return record(model=model, runtime=runtime, precision=precision, status=status, quality=q)


def test_reference_is_the_widest_precision_and_gguf_comes_after():
    assert sorted(["Q4_K_M", "int4", "fp16", "Q8_0", "fp32", "bf16", "int8"], key=reference.precision_rank) == [
        "fp32",
        "bf16",
        "fp16",
        "int8",
        "int4",
        "Q8_0",
        "Q4_K_M",
    ]
    recs = [
        rec("int4", {"code": items(5, 30)}),
        rec("Q4_K_M", {"code": items(8, 30)}, runtime="llamacpp"),
        rec("fp32", {"code": items(15, 30)}),
        rec("fp32", {"code": items(1, 30)}, model="gemma3-270m"),
    ]
    out = reference.against_reference(recs)
    assert set(out) == {0, 1}  # fp32 is the reference; gemma has no partner
    assert out[0]["code"]["reference"] == "transformers/fp32"
    assert out[0]["code"]["right_to_wrong"] == 10 and out[0]["code"]["verdict"] == "transformers/fp32 better"


def test_records_without_items_fall_back_to_unpaired():
    recs = [
        rec("fp32", {"code": None}, score=50.0, n=20),
        rec("int8", {"code": None}, score=45.0, n=20),
        rec("int4", {"code": items(3, 20)}),
    ]
    out = reference.against_reference(recs)
    assert out[1]["code"]["test"].startswith("two-proportion") and out[2]["code"]["test"].startswith("two-")
    assert out[1]["code"]["verdict"] == "not distinguishable at n = 20"
    rows = reference.rows(recs)
    assert [r["cell"] for r in rows] == ["int8", "int4"] and rows[0]["right→wrong / wrong→right"] == "—"
    lines = reference.notes(recs)
    assert len(lines) == 3 and "not distinguishable at n = 20" in lines[1]
    assert reference.notes([rec("fp32", {"code": items(3, 20)})]) == []


def test_different_task_sets_are_not_compared():
    recs = [
        rec("fp32", {"code": items(5, 10)}),
        rec("int8", {"code": items(5, 10, prefix="u")}),
        rec("int4", {"code": None}, score=40.0, n=20),
    ]
    assert reference.against_reference(recs) == {}


def test_critical_flips_is_where_mcnemar_turns_significant():
    for d in range(0, 40):
        k = stats.critical_flips(d)
        if k <= d:
            assert stats.mcnemar((d + k) // 2, (d - k) // 2) < 0.05
            assert k < 2 or stats.mcnemar((d + k - 2) // 2, (d - k + 2) // 2) >= 0.05
        else:
            assert stats.mcnemar(d, 0) >= 0.05 and k >= 6
    assert stats.critical_flips(6) == 6 and stats.critical_flips(0) == 6


# --- shifts between timings: Hodges-Lehmann, the Mann-Whitney interval, Wilson, Pocock -------------


def test_hodges_lehmann_is_the_median_of_pairwise_differences():
    # by hand: x = 1, 2, 3; y = 4, 6 -> differences 3 2 1 5 4 3 -> sorted 1 2 3 3 4 5 -> median 3
    assert stats.hodges_lehmann([1, 2, 3], [4, 6]) == 3
    assert stats.hodges_lehmann([0.0], [2.5]) == 2.5
    # one wild repeat moves it by one rank, not by its size (the mean difference moves by 33)
    x, y = [10.0, 10.2, 9.9, 10.1], [11.0, 11.1, 10.9, 11.2]
    assert stats.hodges_lehmann(x, y + [200.0]) == pytest.approx(stats.hodges_lehmann(x, y), abs=0.15)
    with pytest.raises(ValueError):
        stats.hodges_lehmann([], [1.0])


def test_mann_whitney_critical_values_match_the_textbook_table():
    # Two-sided alpha 0.05 lower critical values of U (tables of Mann-Whitney U, e.g. Siegel and
    # Castellan, Nonparametric Statistics, 2nd ed., 1988, Table J; or Hollander et al.): the
    # interval's rank k is that value + 1.
    for (m, n), u_crit in {(10, 10): 23, (5, 5): 2, (8, 8): 13, (6, 9): 10, (4, 4): 0, (20, 20): 127}.items():
        assert stats.mann_whitney_k(m, n, 0.05) == u_crit + 1, (m, n)
    assert stats.mann_whitney_k(3, 3, 0.05) == 0  # 3 repeats a side can never reach 95 %
    assert stats.shift_ci([1, 2, 3], [4, 5, 6]) is None


def test_mann_whitney_exact_distribution_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = random.Random(3)
    for m, n in ((4, 7), (8, 8), (10, 12)):
        x = [rng.random() for _ in range(m)]
        y = [rng.random() + 0.3 for _ in range(n)]
        u = sum(b > a for a in x for b in y)  # scipy's U of its first sample, y
        p = scipy_stats.mannwhitneyu(y, x, alternative="less", method="exact").pvalue
        assert stats.mann_whitney_cdf(u, m, n) == pytest.approx(p, rel=1e-9)
    assert stats.mann_whitney_cdf(-1, 3, 3) == 0 and stats.mann_whitney_cdf(9, 3, 3) == 1


def test_shift_ci_covers_a_known_shift_at_its_level():
    # coverage, simulated: normal samples shifted by exactly 1.0; a 95 % interval must miss
    # about 5 % of the time (at most ~5 %: the exact interval is conservative)
    rng = random.Random(7)
    misses, trials = 0, 400
    for _ in range(trials):
        x = [rng.gauss(0, 1) for _ in range(9)]
        y = [rng.gauss(1.0, 1) for _ in range(9)]
        lo, hi = stats.shift_ci(x, y, 0.05)
        assert lo <= stats.hodges_lehmann(x, y) <= hi
        misses += not lo <= 1.0 <= hi
    assert 0.01 <= misses / trials <= 0.08, misses
    # the large-sample branch (normal quantiles) agrees with the exact one where both apply
    exact = stats.mann_whitney_k(20, 20)
    assert math.floor(200 - 1.959964 * math.sqrt(400 * 41 / 12)) in (exact - 1, exact, exact + 1)
    assert stats.mann_whitney_k(30, 30) == math.floor(450 - stats.z_of(0.05) * math.sqrt(900 * 61 / 12))


def test_signed_rank_distribution_matches_the_textbook_and_scipy():
    # Hollander, Wolfe and Chicken, 3rd ed., Table A.4: n = 10, P(T+ <= 8) = 0.0244 and
    # P(T+ <= 10) = 0.0420; so the 95 % interval of 10 pairs is [W(9), W(47)] of the 55 Walsh averages
    assert stats.signed_rank_cdf(8, 10) == pytest.approx(0.0244, abs=5e-5)
    assert stats.signed_rank_cdf(10, 10) == pytest.approx(0.0420, abs=5e-5)
    assert stats.signed_rank_k(10, 0.05) == 9
    assert stats.signed_rank_k(5, 0.05) == 0 and stats.paired_shift_ci([0.1] * 5) is None  # 5 pairs: never 95 %
    assert stats.signed_rank_k(6, 0.05) == 1  # P(T+ = 0) = 1/64 < 0.025
    scipy_stats = pytest.importorskip("scipy.stats")
    rng = random.Random(5)
    for n in (7, 15, 30):
        d = [rng.gauss(0.2, 1) for _ in range(n)]
        order = sorted(range(n), key=lambda i: abs(d[i]))
        t_plus = sum(rank + 1 for rank, i in enumerate(order) if d[i] > 0)
        p = scipy_stats.wilcoxon(d, alternative="less", method="exact").pvalue
        assert stats.signed_rank_cdf(t_plus, n) == pytest.approx(p, rel=1e-9)
    # the normal branch beyond the exact limit agrees with the exact rank within one
    n = stats.EXACT_SIGNED_RANK_N
    approx = math.floor(n * (n + 1) / 4 + 0.5 - stats.z_of(0.05) * math.sqrt(n * (n + 1) * (2 * n + 1) / 24))
    assert abs(stats.signed_rank_k(n, 0.05) - approx) <= 1
    assert stats.signed_rank_k(n + 1, 0.05) == math.floor(
        (n + 1) * (n + 2) / 4 + 0.5 - stats.z_of(0.05) * math.sqrt((n + 1) * (n + 2) * (2 * n + 3) / 24)
    )


def test_paired_hodges_lehmann_is_the_median_of_walsh_averages():
    # by hand: d = 1, 2, 6 -> Walsh averages 1, 1.5, 2, 3.5, 4, 6 -> median (2 + 3.5) / 2
    assert stats.walsh_averages([1, 2, 6]) == [1, 1.5, 2, 3.5, 4, 6]
    assert stats.paired_hodges_lehmann([1, 2, 6]) == 2.75
    # one wild pair moves it by little (the mean moves by 10)
    d = [0.01 * i for i in range(-5, 6)]
    assert abs(stats.paired_hodges_lehmann(d + [1.1]) - stats.paired_hodges_lehmann(d)) < 0.01
    with pytest.raises(ValueError):
        stats.paired_hodges_lehmann([])


def test_paired_shift_ci_covers_a_known_shift_at_its_level():
    rng = random.Random(11)
    misses, trials = 0, 400
    for _ in range(trials):
        d = [rng.gauss(0.05, 0.03) for _ in range(20)]
        lo, hi = stats.paired_shift_ci(d, 0.05)
        assert lo <= stats.paired_hodges_lehmann(d) <= hi
        misses += not lo <= 0.05 <= hi
    assert 0.01 <= misses / trials <= 0.08, misses


def test_lag1_autocorrelation_sees_a_series_that_moves_together():
    rng = random.Random(2)
    white = [rng.gauss(0, 1) for _ in range(400)]
    assert abs(stats.lag1_autocorrelation(white)) < 0.15
    ar, x = [], 0.0
    for _ in range(400):  # AR(1) with rho 0.7
        x = 0.7 * x + rng.gauss(0, 1)
        ar.append(x)
    assert stats.lag1_autocorrelation(ar) == pytest.approx(0.7, abs=0.1)
    assert stats.lag1_autocorrelation([1.0, 2.0]) == 0.0 and stats.lag1_autocorrelation([3.0] * 5) == 0.0


def test_wilson_interval_matches_newcombe_and_scipy():
    # Newcombe, "Two-sided confidence intervals for the single proportion", Stat. Med. 17, 1998,
    # 857-872, Table II, method 3 (score interval without continuity correction)
    for (k, n), (lo, hi) in {
        (81, 263): (0.2553, 0.3662),
        (15, 148): (0.0624, 0.1605),
        (0, 20): (0.0, 0.1611),
        (1, 29): (0.0061, 0.1718),
    }.items():
        got = stats.wilson(k, n)
        assert got == pytest.approx((lo, hi), abs=5e-5), (k, n)
    scipy_stats = pytest.importorskip("scipy.stats")
    for k, n in ((3, 10), (19, 20), (20, 20), (500, 2000)):
        ci = scipy_stats.binomtest(k, n).proportion_ci(method="wilson")
        assert stats.wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)


def test_pocock_levels_and_their_fallback():
    assert stats.pocock_alpha(1) == 0.05 and stats.pocock_alpha(3) == 0.0221
    assert stats.pocock_alpha(4, 0.025) == pytest.approx(0.0091)
    assert stats.pocock_alpha(7) == pytest.approx(0.05 / 7)  # not tabulated: Bonferroni
    with pytest.raises(ValueError):
        stats.pocock_alpha(0)


def test_round_bootstrap_sees_a_shift_and_the_spread_between_rounds():
    rng = random.Random(1)
    rounds = []
    for _ in range(6):  # each round (one process per side) has its own offset
        off = rng.gauss(0, 0.02)
        rounds.append(
            ([off + rng.gauss(0, 0.01) for _ in range(5)], [off + 0.10 + rng.gauss(0, 0.01) for _ in range(5)])
        )
    lo, hi = stats.round_bootstrap_ci(rounds)
    assert 0.05 < lo < 0.10 < hi < 0.15
    assert stats.round_bootstrap_ci(rounds) == (lo, hi)  # seeded: the same every run
    assert stats.round_bootstrap_ci(rounds[:1]) is None


def test_design_effect_by_hand_and_at_its_limits():
    # groups whose means are all equal: no clustering, DE 1
    assert stats.design_effect([[1.0, 2.0, 3.0], [2.0, 1.0, 3.0]]) == 1.0
    # by hand: groups [0, 2] and [10, 12], k = 2: grand 6, SSB = 2 * 25 * 2 = 100 (df 1), SSW = 2 + 2 = 4
    # (df 2); MSB 100, MSW 2; ICC = 98 / 102; DE = 1 + 98 / 102
    assert stats.design_effect([[0.0, 2.0], [10.0, 12.0]]) == pytest.approx(1 + 98 / 102)
    # identical repeats inside groups that differ: every repeat is one group's value, DE = k
    assert stats.design_effect([[1.0] * 4, [5.0] * 4, [3.0] * 4]) == pytest.approx(4.0)
    # conditions are not mixed: a shift between A and B is not clustering
    assert stats.design_effect([[1.0, 2.0], [2.0, 1.0]], [[11.0, 12.0], [12.0, 11.0]]) == 1.0
    assert stats.design_effect([[1.0, 2.0]]) == 1.0 and stats.design_effect() == 1.0
