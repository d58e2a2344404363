"""Measurement tools: memory tracker (CPU for real, CUDA with the torch.cuda/NVML boundary faked),
speed statistics, bandwidth."""

import math
import os
import types

import pytest

from mindbench.measure import MB, MemoryTracker, measure_bandwidth, measure_speed, stat
from mindbench.runtimes.base import Timing


def test_stat_mean_and_sample_std():
    s = stat([10, 12, 14])
    assert (s.mean, s.n) == (12.0, 3)
    assert math.isclose(s.std, 2.0)
    assert stat([5.0]).std == 0.0
    with pytest.raises(ValueError):
        stat([])


def _wait_for_samples(mem, n):
    """Until the sampler thread has begun `n` samples after this call (one may be under way)."""
    import time

    seen, deadline = mem.samples, time.monotonic() + 30
    while mem.samples < seen + n and time.monotonic() < deadline:
        time.sleep(0.01)
    assert mem.samples >= seen + n, "the sampler thread never ran"


def test_cpu_tracker_sees_a_brief_rss_peak():

    import psutil

    rss = lambda: psutil.Process().memory_info().rss / MB  # noqa: E731
    with MemoryTracker("cpu", interval_s=0.01) as mem:
        # b"\x01" * n writes every page (a zeroed bytearray may be lazily mapped and not resident)
        buf = b"\x01" * (300 * MB)
        during = rss()
        # Wait for two samples begun after `during`, not for a fixed time: on a loaded CI host the
        # sampler thread can go unscheduled for longer than any sleep we would pick (seen: a 0.2 s
        # sleep where its last sample had caught the buffer half-written, 66 MB short).
        _wait_for_samples(mem, 2)
        del buf  # freed before the tracker stops: only the sampler thread can have seen it
    after = rss()
    mem.set_weights(123 * MB)
    d = mem.to_dict()
    assert set(d) == set(MemoryTracker.FIELDS)
    # Compared with what this thread saw while the buffer lived, not with a baseline taken before:
    # other tests' freed memory can be handed back to the OS in between and move the baseline.
    assert during >= after + 250, (during, after)
    assert d["peak_rss_mb"] >= during - 10, (d["peak_rss_mb"], during)
    assert d["weights_mb"] == 123.0
    assert d["nvml_global_mb"] is None and d["torch_max_allocated_mb"] is None


class _FakeCuda:
    """torch.cuda's memory-statistics surface, as the device boundary."""

    def __init__(self):
        self.reset = []

    def reset_peak_memory_stats(self, i):
        self.reset.append(i)

    def max_memory_allocated(self, i):
        return 700 * MB

    def max_memory_reserved(self, i):
        return 900 * MB


def _fake_nvml(pid, used_mb, proc_mb, seen_index):
    mod = types.SimpleNamespace()
    mod.nvmlInit = lambda: None
    mod.nvmlShutdown = lambda: None

    def handle(i):
        seen_index.append(i)
        return f"h{i}"

    mod.nvmlDeviceGetHandleByIndex = handle
    mod.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(used=used_mb[0] * MB, total=80000 * MB)
    mod.nvmlDeviceGetComputeRunningProcesses = lambda h: [
        types.SimpleNamespace(pid=pid + 1, usedGpuMemory=5000 * MB),  # someone else on the card
        types.SimpleNamespace(pid=pid, usedGpuMemory=proc_mb[0] * MB),
    ]
    return mod


def test_cuda_tracker_records_all_four_figures(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5")
    used, mine, seen = [1000], [400], []
    cuda = _FakeCuda()
    nvml = _fake_nvml(os.getpid(), used, mine, seen)
    with MemoryTracker("cuda:1", interval_s=0.01, cuda=cuda, nvml=nvml) as mem:
        used[0], mine[0] = 6000, 1200  # the peak ...
        _wait_for_samples(mem, 2)
        used[0], mine[0] = 2000, 800  # ... then back down
    d = mem.to_dict()
    assert cuda.reset == [1]  # torch's index
    assert seen == [5]  # NVML's index, through CUDA_VISIBLE_DEVICES
    assert d["nvml_global_mb"] == 6000.0 and d["nvml_process_mb"] == 1200.0
    assert d["torch_max_allocated_mb"] == 700.0 and d["torch_max_reserved_mb"] == 900.0
    assert d["peak_rss_mb"] > 0


def test_cuda_tracker_without_nvml_keeps_torch_figures():
    class Broken:
        def nvmlInit(self):
            raise RuntimeError("NVML Shared Library Not Found")

    with MemoryTracker("cuda:0", cuda=_FakeCuda(), nvml=Broken()) as mem:
        pass
    d = mem.to_dict()
    assert d["nvml_global_mb"] is None and d["nvml_process_mb"] is None
    assert d["torch_max_reserved_mb"] == 900.0
    assert "NVML" in mem.nvml_error


class _CountingEngine:
    """Only the timed_run surface: checks that warm-ups are discarded and repeats aggregated."""

    def __init__(self):
        self.calls = 0

    def timed_run(self, prompt_tokens, new_tokens):
        self.calls += 1
        # the warm-up is slow (first-run effects); it must not reach the figures
        slow = 10 if self.calls == 1 else 1
        return Timing(
            prompt_tokens,
            new_tokens,
            prefill_s=0.5 * slow,
            ttft_s=0.6 * slow,
            decode_s=(new_tokens - 1) / (20.0 + self.calls) * slow,
        )


def test_measure_speed_discards_warmup():
    eng = _CountingEngine()
    # a wide CI target: exactly the minimum of 3 repeats (adaptive repeats: tests/test_speed.py)
    r = measure_speed(eng, prompt_tokens=100, new_tokens=11, repeats=3, warmup=1, ci_target=1.0)
    assert eng.calls == 4
    assert r.prefill_tok_s.mean == 200.0 and r.prefill_tok_s.std == 0.0 and r.prefill_tok_s.n == 3
    assert math.isclose(r.decode_tok_s.mean, 23.0) and math.isclose(r.decode_tok_s.std, 1.0)
    assert math.isclose(r.ttft_ms.mean, 600.0)
    assert {"prefill_tok_s", "decode_tok_s", "ttft_ms", "verdict", "contention", "itl_ms"} <= set(r.to_dict())
    with pytest.raises(ValueError):
        measure_speed(eng, 10, 1, 1)


def test_bandwidth_is_plausible():
    from mindbench.measure.bandwidth import _numpy_bandwidth

    for bw in (measure_bandwidth("cpu", size_mb=64, repeats=2), _numpy_bandwidth(64, 2)):
        assert 0.2 < bw < 2000  # GB/s: any real machine's memory is in this range
