"""Serving statistics, pure Python: what a load test's per-request timings say about a server.

Used by `mindbench serve-bench` (runtimes/openai/loadgen.py collects the timings) and by the
openai runtime's speed section. No I/O and no third-party imports, so every figure can be checked
by hand (tests/test_serve_bench.py does).

Definitions (vLLM's `bench serve` and GuideLLM use the same ones):
  TTFT   request sent -> first streamed token.
  ITL    the gap between consecutive streamed chunks of one request (one token per chunk on
         llama.cpp and vLLM); pooled over every gap of every kept request.
  TPOT   per request: (E2E - TTFT) / (output tokens - 1), its mean time per token after the first.
  E2E    request sent -> last byte.
  goodput  completed requests per second that met every SLO (TTFT <= ttft, TPOT <= itl,
         E2E <= e2e; vLLM's --goodput checks TPOT against the per-token target the same way).

Warm-up and cool-down: the first requests of a level start together into a cold server and the
last ones run with fewer in flight, so neither is the steady state. The measured window opens
when request `warmup` (in start order, 0-based) starts and closes when the `cooldown`-th last
request to finish ends; rates count what happened inside it (streamed tokens by their arrival
time, requests by their completion time), latencies count the requests that started inside it.

Uncertainty: percentiles carry distribution-free 95 % intervals from order statistics (the
exact binomial rule, no normality assumed); when too few requests exist for an interval (p99 of
50 requests has no upper bound) the bound is None, never a guess. Pooled ITL gaps of one request
are correlated, so their percentiles' intervals come from a seeded bootstrap over requests.
Means carry a Student-t interval; fractions (goodput share) a Wilson interval.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field

from mindbench.errors import InputError

QUANTILES = (50, 90, 99)
Z95 = 1.959964


# --- one request -------------------------------------------------------------------------------


@dataclass
class RequestResult:
    """One request of a load test; times are perf_counter seconds (one clock per run)."""

    start: float  # sent
    end: float | None = None  # last byte (None: failed before the end)
    first: float | None = None  # first streamed token
    chunk_times: list = field(default_factory=list)  # arrival of each streamed text chunk
    prompt_tokens: int | None = None
    output_tokens: int | None = None  # the server's usage, else the chunks counted
    error: str | None = None
    shape: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.end is not None and self.first is not None

    @property
    def ttft_s(self) -> float | None:
        return None if self.first is None else self.first - self.start

    @property
    def e2e_s(self) -> float | None:
        return None if self.end is None else self.end - self.start

    @property
    def tpot_s(self) -> float | None:
        """Mean seconds per output token after the first (None with fewer than 2 tokens)."""
        n = self.output_tokens or len(self.chunk_times)
        if not self.ok or n < 2:
            return None
        last = self.chunk_times[-1] if self.chunk_times else self.end
        return (last - self.first) / (n - 1)

    @property
    def gaps_s(self) -> list[float]:
        t = self.chunk_times
        return [b - a for a, b in zip(t, t[1:])]


# --- statistics ---------------------------------------------------------------------------------


def quantile(values, q: float) -> float | None:
    """Linear interpolation between order statistics (numpy's default); q in [0, 100]."""
    v = sorted(values)
    if not v:
        return None
    pos = (len(v) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def _binom_cdf(k: int, n: int, p: float) -> float:
    """P(B <= k), B ~ Binomial(n, p), summed in log space (n of a few thousand is fine)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    lp, lq = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(k + 1):
        total += math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + i * lp + (n - i) * lq)
    return min(total, 1.0)


def quantile_ci(values, q: float, level: float = 0.95) -> tuple[float | None, float | None]:
    """Distribution-free interval for the q-th percentile from order statistics: [X(j), X(k)]
    (1-based) with j the largest rank such that P(B <= j-1) <= a/2 and k the smallest with
    P(B >= k) <= a/2, B ~ Binomial(n, q/100), a = 1 - level; coverage is then at least `level`.
    A bound that no rank can give (too few values for that tail) is None."""
    v = sorted(values)
    n = len(v)
    if n == 0:
        return None, None
    p, a = q / 100, (1 - level) / 2
    if p <= 0 or p >= 1:
        return v[0] if p <= 0 else None, v[-1] if p >= 1 else None
    j = None
    for r in range(n, 0, -1):
        if _binom_cdf(r - 1, n, p) <= a:
            j = r
            break
    k = None
    for r in range(1, n + 1):
        if 1 - _binom_cdf(r - 1, n, p) <= a:
            k = r
            break
    return (v[j - 1] if j else None), (v[k - 1] if k else None)


def mean_ci(values) -> dict | None:
    """Mean with a Student-t 95 % interval (bounds None below 2 values)."""
    from mindbench.measure.speed import t975

    v = [float(x) for x in values]
    if not v:
        return None
    n, m = len(v), sum(v) / len(v)
    if n < 2:
        return {"mean": m, "ci_lo": None, "ci_hi": None, "n": 1}
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (n - 1))
    half = t975(n - 1) * sd / math.sqrt(n)
    return {"mean": m, "ci_lo": m - half, "ci_hi": m + half, "n": n}


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | tuple[None, None]:
    """Wilson score interval of a proportion k/n."""
    if n <= 0:
        return None, None
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, mid - half), min(1.0, mid + half)


def distribution(values, scale: float = 1.0) -> dict | None:
    """mean (t interval) and p50/p90/p99 (order-statistic intervals) of one value per request,
    multiplied by `scale` (1000: seconds -> ms)."""
    v = [float(x) * scale for x in values if x is not None]
    if not v:
        return None
    out = {"n": len(v), "mean": mean_ci(v)}
    for q in QUANTILES:
        lo, hi = quantile_ci(v, q)
        out[f"p{q}"] = {"value": quantile(v, q), "ci_lo": lo, "ci_hi": hi}
    return out


def pooled_distribution(groups, scale: float = 1.0, n_boot: int = 400, seed: int = 0) -> dict | None:
    """Percentiles of values pooled over groups (ITL gaps over requests), with 95 % intervals
    from a seeded bootstrap that resamples whole groups (gaps of one request move together)."""
    groups = [[float(x) * scale for x in g] for g in groups if g]
    pooled = [x for g in groups for x in g]
    if not pooled:
        return None
    out = {"n": len(pooled), "requests": len(groups), "mean": {"mean": sum(pooled) / len(pooled)}}
    rng = random.Random(seed)
    boots: dict[int, list[float]] = {q: [] for q in QUANTILES}
    if len(groups) >= 2:
        for _ in range(n_boot):
            sample = sorted(x for _ in groups for x in groups[rng.randrange(len(groups))])
            for q in QUANTILES:
                boots[q].append(quantile(sample, q))
    for q in QUANTILES:
        b = boots[q]
        out[f"p{q}"] = {
            "value": quantile(pooled, q),
            "ci_lo": quantile(b, 2.5) if b else None,
            "ci_hi": quantile(b, 97.5) if b else None,
        }
    return out


# --- SLOs and goodput -------------------------------------------------------------------------

SLO_KEYS = ("ttft", "itl", "e2e")
_UNITS = {"ms": 1e-3, "s": 1.0, "us": 1e-6}


def parse_slo(text: str | None) -> dict[str, float]:
    """ "ttft=500ms,itl=50ms[,e2e=10s]" -> {"ttft": 0.5, "itl": 0.05, ...} in seconds. A bare
    number is milliseconds (vLLM's --goodput convention). Errors are one line (exit 2)."""
    if not text:
        return {}
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*(ms|s|us)?\s*", value)
        if not sep or key not in SLO_KEYS or not m or float(m.group(1)) <= 0:
            raise InputError(
                f"--slo {text!r}: use key=value pairs from {', '.join(SLO_KEYS)} with a positive time, "
                f"e.g. ttft=500ms,itl=50ms"
            )
        out[key] = float(m.group(1)) * _UNITS[m.group(2) or "ms"]
    return out


def meets(r: RequestResult, slo: dict[str, float]) -> bool:
    """Did one completed request meet every target in `slo`? (TPOT stands for ITL; a request
    of one token has no TPOT and meets the ITL target trivially.)"""
    if not r.ok:
        return False
    if "ttft" in slo and r.ttft_s > slo["ttft"]:
        return False
    if "itl" in slo and r.tpot_s is not None and r.tpot_s > slo["itl"]:
        return False
    if "e2e" in slo and r.e2e_s > slo["e2e"]:
        return False
    return True


# --- one level of a sweep -------------------------------------------------------------------------


def window(results: list[RequestResult], warmup: int, cooldown: int) -> tuple[float, float] | None:
    """The steady-state window (module docstring): from the start of request `warmup` (start
    order, 0-based) to the end of the `cooldown`-th last completion; None when nothing is left."""
    done = sorted(r.end for r in results if r.ok)
    starts = sorted(r.start for r in results)
    if not done or warmup >= len(starts) or cooldown >= len(done):
        return None
    t0, t1 = starts[warmup], done[len(done) - 1 - cooldown]
    return (t0, t1) if t1 > t0 else None


def summarize_level(
    results: list[RequestResult], *, warmup: int = 0, cooldown: int = 0, slo: dict[str, float] | None = None
) -> dict:
    """Every figure of one concurrency level or rate: counts, req/s, output tok/s and goodput in
    the window, TTFT/TPOT/E2E per request and pooled ITL with intervals, in ms."""
    slo = slo or {}
    out = {
        "requests": len(results),
        "failed": sum(1 for r in results if not r.ok),
        "errors": sorted({r.error for r in results if r.error})[:3],
        "warmup": warmup,
        "cooldown": cooldown,
    }
    win = window(results, warmup, cooldown)
    if win is None:
        out["window_s"] = None
        return out
    t0, t1 = win
    span = t1 - t0
    kept = [r for r in results if r.ok and t0 <= r.start <= t1]
    completed = [r for r in results if r.ok and t0 < r.end <= t1]
    tokens = 0.0
    for r in results:
        if r.ok and r.chunk_times:
            per_chunk = (r.output_tokens or len(r.chunk_times)) / len(r.chunk_times)
            tokens += per_chunk * sum(1 for t in r.chunk_times if t0 < t <= t1)
    good = [r for r in completed if meets(r, slo)]
    out.update(
        window_s=span,
        kept=len(kept),
        completed_in_window=len(completed),
        req_s=len(completed) / span,
        output_tok_s=tokens / span,
        ttft_ms=distribution((r.ttft_s for r in kept), 1000),
        tpot_ms=distribution((r.tpot_s for r in kept), 1000),
        e2e_ms=distribution((r.e2e_s for r in kept), 1000),
        itl_ms=pooled_distribution([r.gaps_s for r in kept], 1000),
        prompt_tokens=mean_ci(r.prompt_tokens for r in kept if r.prompt_tokens is not None),
        output_tokens=mean_ci(r.output_tokens for r in kept if r.output_tokens is not None),
    )
    if slo:
        lo, hi = wilson(len(good), len(completed))
        out["slo"] = {k: v * 1000 for k, v in slo.items()}  # ms, as shown
        out["goodput_req_s"] = len(good) / span
        out["good_frac"] = {
            "value": len(good) / len(completed) if completed else None,
            "ci_lo": lo,
            "ci_hi": hi,
            "n": len(completed),
        }
    return out
