"""Speed: prefill tok/s, decode tok/s and time to first token, after warm-up, repeated until the
figure is precise enough, with the contention during each timed run measured beside it.

Why separate prefill and decode: prefill is compute-bound (all prompt tokens in one pass),
decode is memory-bandwidth-bound (every weight read once per token), and quantization moves
them differently. Why warm-up: the first run pays for kernel selection, lazy init and cold caches
(llama-bench and optimum-benchmark discard it too). The warm-up runs the whole prompt but only
WARMUP_NEW_TOKENS decode steps, as llama-bench's does (its prompt, then one generated token): the
first call of each code path is what it pays for, and the 60 more decode steps a full-length
warm-up would take (6 s of a 0.5B model's fp32 cell on 2 cores) warm nothing further.
Tokenization is never timed: the engine's `timed_run` feeds a synthetic prompt of exactly
`prompt_tokens` ids.

Why adaptive repeats: a fixed count gives a wide spread on a busy machine and wastes time on a
quiet one. After the minimum (`repeats`), runs continue until the 95 % confidence interval of the
mean decode tok/s is within `ci_target` of it (default 5 %), or `max_s` of timed work has passed.

Why contention is measured, not guessed: during each timed run we read how much CPU time other
processes (and the hypervisor's steal) took from the CPUs this process may use, and on CUDA which
other processes hold the GPU. The verdict is "contended" when others took more than
CONTENDED_FRAC of those CPUs (or shared the GPU), "noisy" when the CI target was not met, else
"ok". Nothing is compensated: recommend and compare simply never use noisy/contended speeds.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field

from mindbench.measure.device import is_cuda

CI_TARGET = 0.05  # 95 % CI half-width of decode tok/s, as a fraction of the mean
MAX_S = 60.0  # timed work after which repeats stop, precise or not
MAX_REPEATS = 30
WARMUP_NEW_TOKENS = 4  # decode steps of the warm-up run (timed_run needs at least 2)
# Other processes using more than a tenth of our CPUs during the timed region: on the project's
# 2-core host that is 0.2 of a core, which already moved decode by 10-20 % in reruns.
CONTENDED_FRAC = 0.10
USABLE = ("ok",)  # the verdicts whose speed counts as evidence (absent = an old record: usable)

# Two-sided 95 % Student t quantiles for 1..30 degrees of freedom (no scipy at runtime).
_T975 = (
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
)


@dataclass
class Stat:
    mean: float
    std: float  # sample standard deviation (n-1); 0 when n == 1
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def stat(values) -> Stat:
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("no values")
    n = len(vals)
    mean = sum(vals) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0
    return Stat(round(mean, 4), round(std, 4), n)


def t975(df: int) -> float:
    return _T975[df - 1] if 1 <= df <= len(_T975) else 1.96


def ci_rel(values) -> float:
    """Half-width of the 95 % CI of the mean, as a fraction of the mean (inf below 2 values)."""
    vals = [float(v) for v in values]
    if len(vals) < 2:
        return math.inf
    s = stat(vals)
    return t975(len(vals) - 1) * s.std / math.sqrt(len(vals)) / s.mean if s.mean > 0 else math.inf


def percentiles(values, qs=(50, 90, 99)) -> dict | None:
    """Linear-interpolation percentiles (numpy's default), rounded; None for no values."""
    vals = sorted(float(v) for v in values)
    if not vals:
        return None
    out = {}
    for q in qs:
        pos = (len(vals) - 1) * q / 100
        lo, hi = math.floor(pos), math.ceil(pos)
        out[f"p{q}"] = round(vals[lo] + (vals[hi] - vals[lo]) * (pos - lo), 3)
    return out


def usable(verdict: str | None) -> bool:
    """May a speed with this verdict be used as evidence (recommend, compare)? Not when its own
    measurement said noisy or contended; records older than the verdict (None) count as before."""
    return verdict is None or verdict in USABLE


# --- contention -------------------------------------------------------------------------------


def _proc_stat(cpus: set[int]) -> tuple[float, float] | None:
    """(busy, steal) seconds summed over `cpus` since boot, from /proc/stat; None off Linux."""
    try:
        with open("/proc/stat") as f:
            lines = f.readlines()
    except OSError:
        return None
    hz = os.sysconf("SC_CLK_TCK")
    busy = steal = 0
    for line in lines:
        head = line.split(maxsplit=1)[0]
        if not head.startswith("cpu") or head == "cpu" or int(head[3:]) not in cpus:
            continue
        v = [int(x) for x in line.split()[1:]]
        # user nice system idle iowait irq softirq steal (guest is already inside user)
        busy += v[0] + v[1] + v[2] + v[5] + v[6]
        steal += v[7] if len(v) > 7 else 0
    return busy / hz, steal / hz


class ContentionProbe:
    """Measures what others took while we timed. `nvml` is the GPU boundary (pynvml; tests fake
    it); `stat_reader` the /proc/stat one."""

    def __init__(self, device: str = "cpu", nvml=None, stat_reader=_proc_stat):
        self.cpus = (
            set(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
        )
        self.stat_reader = stat_reader
        self.handle = None
        self.nvml = None
        if is_cuda(device):
            self._open_gpu(device, nvml)

    def _open_gpu(self, device: str, nvml) -> None:
        try:
            if nvml is None:
                import pynvml as nvml
            nvml.nvmlInit()
            index = int(device.split(":", 1)[1]) if ":" in device else 0
            visible = [v.strip() for v in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
            if index < len(visible) and visible[index].isdigit():
                index = int(visible[index])  # NVML counts physical cards; CUDA the visible ones
            self.handle, self.nvml = nvml.nvmlDeviceGetHandleByIndex(index), nvml
        except Exception:
            self.handle = self.nvml = None  # no NVML: GPU contention and energy stay unknown

    def start(self) -> dict:
        return {
            "wall": time.perf_counter(),
            "own": time.process_time(),
            "stat": self.stat_reader(self.cpus),
            "energy_mj": self._energy(),
        }

    def stop(self, s: dict) -> dict:
        wall = time.perf_counter() - s["wall"]
        own = time.process_time() - s["own"]
        out = {
            "wall_s": round(wall, 4),
            "own_cpu_s": round(own, 4),
            "cpus": len(self.cpus),
            "other_cpu_s": None,
            "steal_s": None,
            "stolen_frac": None,
        }
        end = self.stat_reader(self.cpus)
        if s["stat"] is not None and end is not None and wall > 0:
            # /proc/stat counts every process on these CPUs, us included; the rest is someone else's.
            other = max(0.0, end[0] - s["stat"][0] - own)
            steal = max(0.0, end[1] - s["stat"][1])
            out.update(
                other_cpu_s=round(other, 4),
                steal_s=round(steal, 4),
                stolen_frac=round(min(1.0, (other + steal) / (wall * len(self.cpus))), 4),
            )
        if self.handle is not None:
            out["gpu_other_processes"] = self._gpu_others()
            e0, e1 = s["energy_mj"], self._energy()
            out["energy_j"] = None if e0 is None or e1 is None else round((e1 - e0) / 1000, 4)
        return out

    def _energy(self) -> float | None:
        if self.handle is None:
            return None
        try:
            return float(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))  # mJ since driver load
        except Exception:  # pre-Volta cards have no counter
            return None

    def _gpu_others(self) -> int | None:
        try:
            procs = self.nvml.nvmlDeviceGetComputeRunningProcesses(self.handle)
        except Exception:
            return None
        return sum(1 for p in procs if getattr(p, "pid", None) != os.getpid())


# --- the measurement --------------------------------------------------------------------------


@dataclass
class SpeedResult:
    prefill_tok_s: Stat
    decode_tok_s: Stat
    ttft_ms: Stat
    prompt_tokens: int
    new_tokens: int
    ci95_rel: float = math.inf
    ci_target: float = CI_TARGET
    verdict: str = "ok"
    contention: dict = field(default_factory=dict)
    itl_ms: dict | None = None
    ttft_pct_ms: dict | None = None
    llama_bench: dict | None = None
    energy_j_per_token: float | None = None
    timed_s: float = 0.0
    samples: dict | None = None  # every timed repeat's figures, in order (the A/B gate's per-repeat rule)

    def to_dict(self) -> dict:
        return {
            "prefill_tok_s": self.prefill_tok_s.to_dict(),
            "decode_tok_s": self.decode_tok_s.to_dict(),
            "ttft_ms": self.ttft_ms.to_dict(),
            "ttft_pct_ms": self.ttft_pct_ms,
            "itl_ms": self.itl_ms,
            "llama_bench": self.llama_bench,
            "energy_j_per_token": self.energy_j_per_token,
            "verdict": self.verdict,
            "ci95_rel": None if math.isinf(self.ci95_rel) else round(self.ci95_rel, 4),
            "ci_target": self.ci_target,
            "repeats": self.decode_tok_s.n,
            "timed_s": round(self.timed_s, 2),
            "contention": self.contention,
            "samples": self.samples,
        }


def verdict_of(ci: float, target: float, contention: dict) -> str:
    if (contention.get("stolen_frac") or 0) > CONTENDED_FRAC or (contention.get("gpu_other_processes") or 0) > 0:
        return "contended"
    return "ok" if ci <= target else "noisy"


def measure_speed(
    engine,
    prompt_tokens: int = 512,
    new_tokens: int = 128,
    repeats: int = 3,
    warmup: int = 1,
    *,
    ci_target: float = CI_TARGET,
    max_s: float = MAX_S,
    probe: ContentionProbe | None = None,
    llama_bench: bool = False,
    progress=None,
) -> SpeedResult:
    """Run `engine.timed_run` `warmup` times (discarded), then at least `repeats` times and more
    until decode's 95 % CI is within `ci_target` or `max_s` seconds of timed runs have passed.
    `progress(done, total, decode_tok_s)` is called after each timed run (total: the most runs
    `repeats`, the CI and `max_s` may still take), so a display can show the stage moving."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    if new_tokens < 2:
        raise ValueError("new_tokens must be at least 2 (decode speed needs a token after the first)")
    probe = probe or ContentionProbe(getattr(engine, "device", "cpu"))
    for _ in range(warmup):
        engine.timed_run(prompt_tokens, min(new_tokens, WARMUP_NEW_TOKENS))
    timings, probes = [], []
    t_begin = time.perf_counter()
    while True:
        s = probe.start()
        timings.append(engine.timed_run(prompt_tokens, new_tokens))
        probes.append(probe.stop(s))
        n, ci = len(timings), ci_rel(t.decode_tok_s for t in timings)
        stop = n >= repeats and (ci <= ci_target or time.perf_counter() - t_begin >= max_s or n >= MAX_REPEATS)
        if progress is not None:  # total: the most runs the time limit still allows
            spent = time.perf_counter() - t_begin
            room = math.ceil(max(0.0, max_s - spent) / (spent / n)) if spent > 0 else 1
            progress(n, n if stop else max(repeats, min(MAX_REPEATS, n + max(1, room))), timings[-1].decode_tok_s)
        if stop:
            break
    timed = time.perf_counter() - t_begin
    contention = _sum_contention(probes)
    energy = contention.get("energy_j")
    result = SpeedResult(
        prefill_tok_s=stat(t.prefill_tok_s for t in timings),
        decode_tok_s=stat(t.decode_tok_s for t in timings),
        ttft_ms=stat(t.ttft_s * 1000 for t in timings),
        prompt_tokens=prompt_tokens,
        new_tokens=new_tokens,
        ci95_rel=ci,
        ci_target=ci_target,
        verdict=verdict_of(ci, ci_target, contention),
        contention=contention,
        itl_ms=percentiles(x * 1000 for t in timings for x in getattr(t, "step_s", None) or ()),
        ttft_pct_ms=percentiles(t.ttft_s * 1000 for t in timings),
        # per new token over whole timed runs (prefill included: NVML's counter has no finer grain)
        energy_j_per_token=None if energy is None else round(energy / (new_tokens * len(timings)), 5),
        timed_s=timed,
        samples=_samples(timings),
    )
    if prompt_tokens == 512 and new_tokens == 128:
        result.llama_bench = {
            "pp512": result.prefill_tok_s.mean,
            "tg128": result.decode_tok_s.mean,
            "how": "this cell's 512-token prompt and 128 new tokens (tg128 after the prompt)",
        }
    elif llama_bench:
        result.llama_bench = _llama_bench(engine)
    return result


def _samples(timings) -> dict:
    """Per repeat: decode and prefill tok/s, TTFT ms, and the median decode step (ms), which one
    preempted step cannot move."""

    def med(xs):
        xs = sorted(xs)
        return (xs[(len(xs) - 1) // 2] + xs[len(xs) // 2]) / 2 if xs else None

    itl = [med(getattr(t, "step_s", None) or ()) for t in timings]
    return {
        "decode_tok_s": [round(t.decode_tok_s, 4) for t in timings],
        "prefill_tok_s": [round(t.prefill_tok_s, 4) for t in timings],
        "ttft_ms": [round(t.ttft_s * 1000, 4) for t in timings],
        "itl_p50_ms": None if None in itl else [round(x * 1000, 4) for x in itl],
    }


def _llama_bench(engine, runs: int = 2) -> dict:
    """llama-bench's pair, so figures compare with published llama.cpp numbers: pp512 (prefill of
    512 tokens) and tg128 (128 tokens decoded from a 1-token context), mean of `runs`."""
    pp = [engine.timed_run(512, 2).prefill_tok_s for _ in range(runs)]
    tg = [engine.timed_run(1, 129).decode_tok_s for _ in range(runs)]
    return {"pp512": stat(pp).mean, "tg128": stat(tg).mean, "how": f"separate runs, mean of {runs}"}


def _sum_contention(probes: list[dict]) -> dict:
    """The timed region's contention over all runs: totals, and the stolen fraction over them."""
    if not probes:
        return {}
    out = {
        "wall_s": round(sum(p["wall_s"] for p in probes), 3),
        "own_cpu_s": round(sum(p["own_cpu_s"] for p in probes), 3),
        "cpus": probes[0]["cpus"],
    }
    if all(p["other_cpu_s"] is not None for p in probes):
        other, steal = sum(p["other_cpu_s"] for p in probes), sum(p["steal_s"] for p in probes)
        worst = max(p["stolen_frac"] for p in probes)
        wall = sum(p["wall_s"] for p in probes)
        out.update(
            other_cpu_s=round(other, 3),
            steal_s=round(steal, 3),
            stolen_frac_max=worst,
            stolen_frac=round(min(1.0, (other + steal) / (wall * out["cpus"])), 4) if wall > 0 else worst,
        )
    else:
        out.update(other_cpu_s=None, steal_s=None, stolen_frac=None)
    if "gpu_other_processes" in probes[0]:
        others = [p.get("gpu_other_processes") for p in probes if p.get("gpu_other_processes") is not None]
        out["gpu_other_processes"] = max(others) if others else None
        energies = [p.get("energy_j") for p in probes]
        out["energy_j"] = None if None in energies else round(sum(energies), 4)
    return out
