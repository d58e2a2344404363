"""Speed figures that mean the same on every machine, and a speed gate that never cries
wolf. The GPU boundary (NVML) and /proc/stat are faked where a test needs a given machine state;
everything else is the real code."""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from mindbench.decide.compare import compare, compare_ab, speed_not_comparable
from mindbench.measure import speed as S
from mindbench.models import hardware
from mindbench.runtimes.base import Timing, end_step, slow_decode_fault
from mindbench.store.record import Hardware, Record
from tests.records import record

ROOT = Path(__file__).resolve().parents[1]

EPYC_AVX512 = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 17
model name\t: AMD EPYC
stepping\t: 1
flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16 rdrand hypervisor

processor\t: 1
vendor_id\t: AuthenticAMD
flags\t\t: fpu
"""
EPYC_AVX2 = EPYC_AVX512.replace(" avx512f avx512dq avx512bw avx512vl avx512_vnni avx512_bf16", "")
GRAVITON = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimddp sve i8mm bf16
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x1
CPU part\t: 0xd40
CPU revision\t: 1
"""


# --- 1. the fingerprint ------------------------------------------------------------------------


def test_cpu_info_reads_vendor_ids_and_only_kernel_features():
    x86 = hardware.cpu_info(EPYC_AVX512)
    assert x86["vendor"] == "AuthenticAMD" and x86["model_id"] == "25/17/1"
    assert {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "fma", "f16c"} <= set(x86["features"])
    assert "rdrand" not in x86["features"] and "hypervisor" not in x86["features"]
    arm = hardware.cpu_info(GRAVITON)
    assert arm["vendor"] == "0x41" and arm["model_id"] == "8/0xd40/0x1/1"
    assert {"asimd", "asimddp", "sve", "i8mm", "bf16"} <= set(arm["features"]) and "aes" not in arm["features"]


def _box(cpuinfo: str, gpus=()) -> hardware.HardwareProfile:
    info = hardware.cpu_info(cpuinfo)
    return hardware.HardwareProfile(
        "AMD EPYC",
        2,
        24 * 1024,
        list(gpus),
        bool(gpus),
        True,
        cpu_vendor=info["vendor"],
        cpu_model_id=info["model_id"],
        cpu_features=info["features"],
    )


def test_same_machine_name_different_isa_is_a_different_speed_fingerprint():
    """The issue's two hosts: one `fingerprint` (CPU name, cores, RAM), two speed fingerprints."""
    a, b = _box(EPYC_AVX512), _box(EPYC_AVX2)
    assert a.fingerprint == b.fingerprint
    assert a.speed_fingerprint != b.speed_fingerprint and a.speed_fingerprint == _box(EPYC_AVX512).speed_fingerprint
    d = a.to_dict()
    assert d["speed_fingerprint"] == a.speed_fingerprint and "avx512f" in d["cpu_features"]
    # a planned machine (profile): CPU features unknown, never matched for speed
    assert hardware.profile("t4-16gb").speed_fingerprint is None


def test_fallback_fingerprint_uses_the_same_formula(monkeypatch):
    from mindbench.models import fingerprint

    real = hardware.detect(nvml=SimpleNamespace(nvmlInit=lambda: (_ for _ in ()).throw(OSError("no driver"))))
    monkeypatch.setattr(hardware, "detect", lambda **kw: (_ for _ in ()).throw(RuntimeError("boom")))
    fb = fingerprint.hardware()
    assert fb["fingerprint"] == real.fingerprint and fb["speed_fingerprint"] is None and "boom" in fb["detect_error"]


class FakeNVML:
    """pynvml's surface used here: one H100, versions, energy counter, running processes."""

    NVML_DEVICE_MIG_ENABLE = 1

    def __init__(self, driver="550.54.15", cuda=12040, others=(), energy_step_mj=5000.0):
        self.driver, self.cuda, self.others = driver, cuda, list(others)
        self.energy, self.energy_step = 1_000_000.0, energy_step_mj

    def nvmlInit(self):
        pass

    def nvmlShutdown(self):
        pass

    def nvmlDeviceGetCount(self):
        return 1

    def nvmlDeviceGetHandleByIndex(self, i):
        return ("h", i)

    def nvmlDeviceGetName(self, h):
        return b"NVIDIA H100 80GB HBM3"

    def nvmlDeviceGetMigMode(self, h):
        raise RuntimeError("NotSupported")

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(total=80 * 2**30, free=79 * 2**30)

    def nvmlDeviceGetCudaComputeCapability(self, h):
        return (9, 0)

    def nvmlSystemGetDriverVersion(self):
        return self.driver

    def nvmlSystemGetCudaDriverVersion(self):
        return self.cuda

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        self.energy += self.energy_step  # mJ; each read is one more timed run's worth
        return self.energy

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return [SimpleNamespace(pid=os.getpid())] + [SimpleNamespace(pid=p) for p in self.others]


def test_gpu_compute_capability_driver_and_cuda_enter_the_speed_fingerprint():
    """Faked NVML (not yet run on a GPU)."""
    gpus, notes = hardware.nvml_gpus(FakeNVML())
    assert not notes and gpus[0].compute_capability == "9.0"
    assert gpus[0].driver == "550.54.15" and gpus[0].cuda_driver == "12.4"
    newer, _ = hardware.nvml_gpus(FakeNVML(driver="560.1"))
    assert _box(EPYC_AVX512, gpus).speed_fingerprint != _box(EPYC_AVX512, newer).speed_fingerprint


# --- 4. like with like: the false alarm, reproduced and gone -----------------------------------


def _record(box: hardware.HardwareProfile, decode: float, verdict="ok", precision="int4", **hw) -> Record:
    """One ok speed-only cell of the packaged model measured on `box` (tests/records.py); `hw`
    overrides fields of the box's identity."""
    return record(
        hardware=replace(Hardware.from_json(box.to_dict()), **hw),
        precision=precision,
        suites=[],
        threads=2,
        timestamp="2026-01-01T00:00:00",
        decode=decode,
        prefill=700.0,
        ttft=700.0,
        ttft_std=5.0,
        verdict=verdict,
        weights_mb=159,
        peak_mb=1400,
    )


def test_false_alarm_between_cpus_that_differ_only_in_features_is_gone():
    base = _record(_box(EPYC_AVX512), 23.4)  # the committed baseline's host
    new = _record(_box(EPYC_AVX2), 6.2)  # the host, same code
    # What the gate did: both records carry one fingerprint, so it compared them and cried wolf.
    # (Reproduced by giving the AVX2 record the baseline's speed identity.)
    as_before = _record(
        _box(EPYC_AVX2),
        6.2,
        speed_fingerprint=base.hardware.speed_fingerprint,
        cpu_features=base.hardware.cpu_features,
    )
    assert compare([base], [as_before])["regressions"] == 1
    # Now: speed is not compared, and says why; memory is still compared.
    r = compare([base], [new])
    assert r["regressions"] == 0 and r["exit_code"] == 0
    assert not [c for c in r["checks"] if c["what"] == "decode tok/s"]
    assert any("speed not compared: different CPU (avx512f vs avx2)" in n for n in r["notes"])
    assert [c["what"] for c in r["checks"]] == ["weights MB", "peak MB"]


def test_speed_of_unknown_or_contended_measurements_is_not_compared():
    box = _box(EPYC_AVX512)
    old = _record(box, 23.4, speed_fingerprint=None)
    assert "unknown CPU features" in speed_not_comparable(old, _record(box, 6.0))
    r = compare([_record(box, 23.4)], [_record(box, 3.3, verdict="contended")])
    assert r["regressions"] == 0 and any("new measurement was contended" in n for n in r["notes"])
    # same machine, usable measurements: a real drop is still caught
    assert compare([_record(box, 23.4)], [_record(box, 6.2)])["regressions"] == 1


def test_ab_pools_rounds_and_catches_a_halved_decode():
    box = _box(EPYC_AVX2)
    a = [_record(box, d, precision="fp32") for d in (14.0, 15.0)]
    honest = [_record(box, d, precision="fp32") for d in (14.5, 14.2)]
    slow = [_record(box, d / 2, precision="fp32", verdict="contended") for d in (14.5, 14.2)]
    assert compare_ab(a, honest)["regressions"] == 0
    r = compare_ab(a, slow)
    assert r["regressions"] == 1 and [c["what"] for c in r["checks"] if c["verdict"] == "regression"] == [
        "decode tok/s"
    ]
    dec = next(c for c in r["checks"] if c["what"] == "decode tok/s")
    assert dec["baseline"] == pytest.approx(14.5) and dec["rounds"] == [2, 2]
    assert any("2 of 4 rounds contended" in n for n in r["notes"])


def test_pooled_stats_equal_the_stats_of_the_union():
    from mindbench.decide.compare import _pooled

    xs, ys = [1.0, 2.0, 4.0], [3.0, 5.0]
    sx, sy, su = S.stat(xs), S.stat(ys), S.stat(xs + ys)
    m, sd, n = _pooled([(sx.mean, sx.std, sx.n), (sy.mean, sy.std, sy.n)])
    assert (m, n) == (pytest.approx(su.mean, rel=1e-4), 5) and sd == pytest.approx(su.std, rel=1e-3)  # stat rounds


# --- 3. contention measured, repeats until precise ---------------------------------------------


class _Engine:
    device = "cpu"

    def __init__(self, decode_tok_s):
        self.speeds = list(decode_tok_s)
        self.calls = 0
        self.sizes = []  # (prompt tokens, new tokens) of every call, warm-up included

    def timed_run(self, p, n):
        v = self.speeds[min(self.calls, len(self.speeds) - 1)]
        self.calls += 1
        self.sizes.append((p, n))
        return Timing(p, n, prefill_s=0.1, ttft_s=0.12, decode_s=(n - 1) / v, step_s=[1 / v] * (n - 1))


class _Stat:
    """A /proc/stat whose other processes burn `other` CPU-seconds per read."""

    def __init__(self, other_per_read: float):
        self.t, self.step = 0.0, other_per_read

    def __call__(self, cpus):
        self.t += self.step
        return self.t, 0.0


def test_repeats_continue_until_the_ci_target_and_stop_at_the_time_cap():
    quiet = S.ContentionProbe(stat_reader=_Stat(0.0))
    eng = _Engine([20, 22, 18, 21, 19, 20, 20, 20, 20, 20, 20, 20])
    r = S.measure_speed(eng, 10, 5, repeats=3, warmup=1, ci_target=0.05, probe=quiet)
    assert r.decode_tok_s.n > 3 and r.ci95_rel <= 0.05 and r.verdict == "ok"
    assert r.decode_tok_s.n == min(n for n in range(3, 13) if S.ci_rel(eng.speeds[1 : n + 1]) <= 0.05)
    wild = _Engine([5, 50] * 40)
    r = S.measure_speed(wild, 10, 5, repeats=2, warmup=0, ci_target=0.05, max_s=0.0, probe=quiet)
    assert r.decode_tok_s.n == 2 and r.verdict == "noisy"
    assert r.to_dict()["ci95_rel"] > 0.05 and r.to_dict()["repeats"] == 2


def test_the_warm_up_runs_the_whole_prompt_and_a_few_decode_steps_and_is_not_counted():
    quiet = S.ContentionProbe(stat_reader=_Stat(0.0))
    eng = _Engine([20.0])
    r = S.measure_speed(eng, 256, 64, repeats=3, warmup=1, probe=quiet)
    assert eng.sizes[0] == (256, S.WARMUP_NEW_TOKENS) and S.WARMUP_NEW_TOKENS < 64
    assert eng.sizes[1:] == [(256, 64)] * 3 and r.decode_tok_s.n == 3 and r.new_tokens == 64
    eng = _Engine([20.0])
    S.measure_speed(eng, 16, 3, repeats=2, warmup=1, probe=quiet)
    assert eng.sizes[0] == (16, 3)  # never more decode steps than the timed runs take


def test_cpu_taken_by_other_processes_marks_the_measurement_contended():
    busy = S.ContentionProbe(stat_reader=_Stat(50.0))  # others: far more than our CPUs' wall time
    r = S.measure_speed(_Engine([20.0]), 10, 5, repeats=3, warmup=0, probe=busy)
    assert r.verdict == "contended" and r.contention["stolen_frac"] > S.CONTENDED_FRAC
    assert S.usable(r.verdict) is False and S.usable(None) is True  # (None: a record before verdicts)


def test_real_proc_stat_probe_reports_the_timed_region():
    probe = S.ContentionProbe()
    s = probe.start()
    t = time.perf_counter()
    while time.perf_counter() - t < 0.2:  # our own CPU work: must not count as someone else's
        pass
    out = probe.stop(s)
    assert out["own_cpu_s"] > 0 and out["wall_s"] >= 0.2  # (a shared machine gives us less than 0.2 s)
    if out["stolen_frac"] is not None:  # Linux
        assert 0 <= out["stolen_frac"] <= 1 and out["other_cpu_s"] >= 0


def test_gpu_sharing_and_energy_per_token_from_nvml():
    """Faked NVML (not yet run on a GPU): another process on the card is contention; energy per
    token comes from the total-energy counter around the timed runs."""
    nv = FakeNVML(others=[4242], energy_step_mj=5000.0)
    probe = S.ContentionProbe("cuda:0", nvml=nv, stat_reader=_Stat(0.0))
    r = S.measure_speed(_Engine([20.0]), 10, 5, repeats=3, warmup=0, ci_target=1.0, probe=probe)
    assert r.contention["gpu_other_processes"] == 1 and r.verdict == "contended"
    assert r.contention["energy_j"] == pytest.approx(15.0)  # 3 runs x 5 J
    assert r.energy_j_per_token == pytest.approx(15.0 / (5 * 3))
    clean = S.ContentionProbe("cuda:0", nvml=FakeNVML(), stat_reader=_Stat(0.0))
    assert S.measure_speed(_Engine([20.0]), 10, 5, repeats=2, warmup=0, probe=clean).verdict == "ok"


# --- 6. standard figures ---------------------------------------------------------------------


def test_itl_and_ttft_percentiles_and_llama_bench_pair():
    assert S.percentiles(range(1, 101)) == {"p50": 50.5, "p90": 90.1, "p99": 99.01}
    r = S.measure_speed(
        _Engine([20.0]), 512, 128, repeats=2, warmup=0, ci_target=1.0, probe=S.ContentionProbe(stat_reader=_Stat(0.0))
    )
    assert r.itl_ms == {"p50": 50.0, "p90": 50.0, "p99": 50.0} and r.ttft_pct_ms["p50"] == pytest.approx(120.0)
    assert r.llama_bench["pp512"] == r.prefill_tok_s.mean and r.llama_bench["tg128"] == pytest.approx(20.0)
    eng = _Engine([20.0])
    r = S.measure_speed(
        eng,
        64,
        8,
        repeats=2,
        warmup=0,
        ci_target=1.0,
        llama_bench=True,
        probe=S.ContentionProbe(stat_reader=_Stat(0.0)),
    )
    assert r.llama_bench["tg128"] == pytest.approx(20.0) and eng.calls == 2 + 4


def test_slow_decode_fault_doubles_each_step(monkeypatch):
    monkeypatch.setenv("MINDBENCH_FAULT", "slow_decode@int4")
    assert slow_decode_fault("int4") and not slow_decode_fault("fp32")
    steps = []
    t = time.perf_counter()
    time.sleep(0.05)
    end_step(t, steps, slow_decode_fault("int4"))
    assert steps[0] >= 0.1


# --- 2. the roofline -------------------------------------------------------------------------


def test_roofline_is_decode_times_bytes_over_read_bandwidth():
    from mindbench.measure.bandwidth import method
    from mindbench.sweep.worker import roofline_efficiency

    # SmolLM2-135M fp32: 538 MB per token, 14.5 tok/s, 17 GB/s read -> 46 %
    assert roofline_efficiency(14.5, 538_060_288, 17.0) == pytest.approx(14.5 * 538_060_288 / 17e9, abs=1e-4)
    assert roofline_efficiency(14.5, 538_060_288, None) is None
    assert method("cpu").startswith("read:") and "sum" in method("cuda:0")


# --- recommend: filter only ----------------------------------------------------------------------


def test_recommend_ignores_contended_speed_and_speed_from_another_cpu():
    from mindbench.decide.recommend import speed_evidence

    here = _box(EPYC_AVX512)
    fp = here.speed_fingerprint
    assert speed_evidence(_record(here, 20.0), fp)
    assert not speed_evidence(_record(here, 3.3, verdict="contended"), fp)
    assert not speed_evidence(_record(here, 3.3, verdict="noisy"), fp)
    assert not speed_evidence(_record(_box(EPYC_AVX2), 6.2), fp)


# --- the A/B gate, live (real runs of the baseline's commit and HEAD) ----------------------------


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("MINDBENCH_LIVE_GATE") != "1",
    reason="about 3 min on 2 idle cores (set MINDBENCH_LIVE_GATE=1); committed evidence: "
    "results/gate/power/live-table.md",
)
@pytest.mark.parametrize("fault,expect", [(None, 0), ("slow_decode", 1)])
def test_ab_gate_passes_an_honest_rerun_and_catches_an_injected_slowdown(tmp_path, fault, expect):
    import sys

    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    base = tmp_path / "baseline.jsonl"
    base.write_text(json.dumps({"schema": 2, "software": {"commit": head}}) + "\n")
    env = {
        **os.environ,
        "MINDBENCH_BASELINE": str(base),
        "MINDBENCH_PYTHON": sys.executable,
        "MINDBENCH_AB_PRECISIONS": "fp32",
        "MINDBENCH_AB_PAIRS": "24",
    }
    env.pop("MINDBENCH_FAULT", None)
    if fault:
        env["MINDBENCH_FAULT"] = fault
    p = subprocess.run(
        ["bash", "scripts/ci_gate.sh", "--speed-only"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800
    )
    assert p.returncode == expect, p.stdout + p.stderr[-3000:]


def test_ab_gate_without_the_baseline_commit_says_so_and_passes(tmp_path):
    base = tmp_path / "baseline.jsonl"
    base.write_text(json.dumps({"schema": 2, "software": {"commit": "0" * 40}}) + "\n")
    p = subprocess.run(
        ["bash", "scripts/ci_gate.sh", "--speed-only"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "MINDBENCH_BASELINE": str(base)},
        timeout=120,
    )
    assert p.returncode == 0 and "speed not gated: baseline commit unavailable" in p.stderr
