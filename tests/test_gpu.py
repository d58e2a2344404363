"""CUDA checks. The `gpu` tests run only on a machine with an NVIDIA GPU (../shared/gpu-check.sh,
`pytest -m gpu`); everywhere else, the GPU script must fail gracefully and say why."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def test_gpu_check_script_explains_missing_cuda(tmp_path):
    if _cuda():
        pytest.skip("this machine has CUDA; the script would really run")
    r = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert "no CUDA device" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU")
def test_packaged_model_on_cuda_fills_cuda_memory_fields(tmp_path):
    from mindbench.models.catalog import DEFAULT_MODEL
    from mindbench.sweep import harness

    recs = harness.sweep(
        [DEFAULT_MODEL],
        ["fp16", "int8", "int4"],
        suites=[],
        out=tmp_path / "gpu.jsonl",
        device="cuda:0",
        repeats=2,
        prompt_tokens=128,
        new_tokens=16,
        progress=False,
    )
    for r in recs:
        assert r.status == "ok", (r.config.precision, r.error)
        assert r.config.device.startswith("cuda")
        m = r.memory
        print(r.config.precision, m, r.speed.decode_tok_s, r.roofline)
        assert m.torch_max_allocated_mb > 10 and m.torch_max_reserved_mb >= m.torch_max_allocated_mb
        assert m.nvml_global_mb > m.torch_max_allocated_mb  # the card also holds the CUDA context
        # NVML may not see our PID inside a container's PID namespace; when it does, it is >= torch's pool
        assert m.nvml_process_mb is None or m.nvml_process_mb >= m.torch_max_reserved_mb
        assert r.roofline.bandwidth_gb_s > 100 and r.speed.decode_tok_s.mean > 0
    w = {r.config.precision: r.memory.weights_mb for r in recs}
    assert w["fp16"] > w["int8"] > w["int4"]
