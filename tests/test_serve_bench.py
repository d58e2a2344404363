"""Serving statistics (mindbench/measure/serving.py) against values computed by hand, the
option parsers of serve-bench, and (with llama-cpp-python's server installed) a tiny sweep
against a real llama.cpp server on the packaged SmolLM2."""

import math

import pytest

from mindbench.errors import InputError
from mindbench.measure import serving as S


def test_quantile_interpolates_like_numpy():
    v = list(range(1, 11))
    assert S.quantile(v, 50) == 5.5
    assert S.quantile(v, 90) == pytest.approx(9.1)
    assert S.quantile([7.0], 99) == 7.0
    assert S.quantile([], 50) is None


def test_median_interval_of_ten_is_x2_to_x9():
    # Binomial(10, 0.5): P(B <= 1) = 11/1024 <= 0.025 < P(B <= 2) = 56/1024, and
    # P(B >= 9) = 11/1024 <= 0.025 < P(B >= 8): ranks 2 and 9, coverage 1 - 22/1024.
    assert S.quantile_ci(list(range(1, 11)), 50) == (2, 9)


def test_p99_of_twenty_has_no_upper_bound():
    # Binomial(20, 0.99): P(B <= 18) = 1 - 20 * .99**19 * .01 - .99**20 = 0.0169 <= 0.025
    # < P(B <= 19) = 0.182, so the lower bound is X(19); P(B >= 20) = 0.818 > 0.025: no rank
    # gives an upper bound, and none is invented.
    assert S._binom_cdf(18, 20, 0.99) == pytest.approx(1 - 20 * 0.99**19 * 0.01 - 0.99**20)
    assert S.quantile_ci(list(range(1, 21)), 99) == (19, None)


def test_wilson_interval_of_8_of_10():
    lo, hi = S.wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4)
    assert hi == pytest.approx(0.9433, abs=1e-4)
    assert S.wilson(0, 0) == (None, None)


def test_mean_interval_uses_student_t():
    m = S.mean_ci([1.0, 2.0, 3.0])
    assert m["mean"] == 2.0
    assert m["ci_hi"] - m["mean"] == pytest.approx(4.303 / math.sqrt(3), rel=1e-6)  # sd 1, t(2) = 4.303


def test_parse_slo():
    assert S.parse_slo("ttft=500ms,itl=50ms,e2e=2s") == {"ttft": 0.5, "itl": 0.05, "e2e": 2.0}
    assert S.parse_slo("ttft=250") == {"ttft": 0.25}  # bare numbers are ms
    for bad in ("ttft=abc", "foo=1ms", "ttft", "itl=0ms"):
        with pytest.raises(InputError):
            S.parse_slo(bad)


def _requests():
    R = S.RequestResult
    return [
        R(start=0.0, first=1.0, end=3.0, chunk_times=[1.0, 2.0, 3.0], output_tokens=3),
        R(start=0.0, first=1.5, end=2.5, chunk_times=[1.5, 2.0, 2.5], output_tokens=3),
        R(start=2.5, first=3.0, end=4.0, chunk_times=[3.0, 3.5, 4.0], output_tokens=3),
        R(start=3.0, first=4.0, end=6.0, chunk_times=[4.0, 5.0, 6.0], output_tokens=3),
        R(start=3.5, error="HTTP 500"),
    ]


def test_level_summary_by_hand():
    """Window: request 2 (start order) starts at 2.5; the 2nd-to-last completion ends at 4.0, so
    [2.5, 4.0], 1.5 s. Completed inside: the requests ending at 3.0 and 4.0 -> 2 / 1.5 req/s.
    Chunks inside (2.5, 4.0]: 3.0 | 3.0, 3.5, 4.0 | 4.0 = 5 tokens -> 5 / 1.5 tok/s. Kept (started
    inside): the requests of TTFT 0.5 and 1.0 s, TPOT (4-3)/2 = 0.5 and (6-4)/2 = 1.0 s, gaps
    0.5, 0.5, 1, 1 s. Goodput at ttft <= 600 ms, itl <= 600 ms: of the two completed inside, the
    one of TTFT 1.0 s fails -> 1 / 1.5 req/s, half of them."""
    out = S.summarize_level(_requests(), warmup=2, cooldown=1, slo={"ttft": 0.6, "itl": 0.6})
    assert out["requests"] == 5 and out["failed"] == 1 and out["errors"] == ["HTTP 500"]
    assert out["window_s"] == pytest.approx(1.5)
    assert out["req_s"] == pytest.approx(2 / 1.5)
    assert out["output_tok_s"] == pytest.approx(5 / 1.5)
    assert out["kept"] == 2
    assert out["ttft_ms"]["p50"]["value"] == pytest.approx(750)
    assert out["tpot_ms"]["mean"]["mean"] == pytest.approx(750)
    assert out["e2e_ms"]["p50"]["value"] == pytest.approx((1500 + 3000) / 2)
    assert out["itl_ms"]["p50"]["value"] == pytest.approx(750) and out["itl_ms"]["n"] == 4
    assert out["goodput_req_s"] == pytest.approx(1 / 1.5)
    assert out["good_frac"]["value"] == 0.5 and out["good_frac"]["n"] == 2


def test_pooled_interval_resamples_requests():
    same = S.pooled_distribution([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    assert same["p99"] == {"value": 1.0, "ci_lo": 1.0, "ci_hi": 1.0}
    mixed = S.pooled_distribution([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]])
    assert mixed["p50"]["ci_lo"] < mixed["p50"]["value"] < mixed["p50"]["ci_hi"]
    assert mixed == S.pooled_distribution([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0]])  # seeded


def test_nothing_left_after_trimming_is_said():
    out = S.summarize_level(_requests()[:2], warmup=2, cooldown=0)
    assert out["window_s"] is None and "req_s" not in out


def test_shapes_and_levels():
    from mindbench.runtimes.openai.loadgen import parse_levels, parse_shapes

    assert parse_shapes("chat,code,tiny=32/8") == [("chat", 512, 128), ("code", 256, 256), ("tiny", 32, 8)]
    assert parse_levels("1,2,4,8", "concurrency", integer=True) == [1, 2, 4, 8]
    assert parse_levels("0.5,2", "rate", integer=False) == [0.5, 2.0]
    for bad in ("chat,huge", "x=10/1", ""):
        with pytest.raises(InputError):
            parse_shapes(bad)
    for bad in ("0", "1,two", "-1"):
        with pytest.raises(InputError):
            parse_levels(bad, "concurrency", integer=True)
