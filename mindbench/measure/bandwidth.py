"""The device's memory READ bandwidth, measured: the ceiling of the decode roofline.

Decoding one token reads every weight once and writes almost nothing, so decode tok/s can't
exceed read_bandwidth / bytes_per_token. The ceiling is therefore a read-only kernel: a sum over a
buffer far larger than any cache (a reduction streams each byte in once, like a matrix-vector
product over the weights). A copy (STREAM "Copy", read + write) is the wrong ceiling: on the
project's 2-core host it counts 25-34 GB/s where a pure read runs at ~17 GB/s, so fp32 decode
looked like 21 % of the roofline when it really reaches ~40 %.

The best of a few runs is kept: the ceiling is what the hardware can do, not an average over
interference. `METHOD` says how the figure was made; records carry it beside the number.

Why float32 even for fp16/int4 cells: a float32 sum is bandwidth-bound on every device, while an
fp16/bf16 reduction on a CPU converts element by element and becomes compute-bound, which would
understate the ceiling (and push the efficiency above 1).
"""

from __future__ import annotations

import time

from mindbench.measure.device import is_cuda

# 1 GiB, best of 10 on a CPU: with 256 MiB and best of 5 (8 ms a pass) the figure read 10-25 % under
# sysbench's sequential read on the project's host, whose bandwidth swings from second to second
# (a shared VM), which put the roofline column 24 % above one recomputed independently.
CPU_MB = 1024  # far beyond the L3 of the CPUs this runs on (a few to ~100 MiB); freed before the load
CPU_REPEATS = 10
CUDA_MB = 1024  # far beyond any GPU L2 (H100: 50 MB)
_THREADS = {}  # filled by measure_bandwidth: torch threads used on the CPU


def method(device: str = "cpu", size_mb: int | None = None) -> str:
    """How measure_bandwidth measures on `device`, as recorded in roofline.bandwidth_method."""
    if is_cuda(device):
        return f"read: torch.sum over {size_mb or CUDA_MB} MiB float32 on {device}, best of 5, CUDA events"
    threads = _THREADS.get("cpu")
    return (
        f"read: torch.sum over {size_mb or CPU_MB} MiB float32 on the CPU"
        + (f" ({threads} threads)" if threads else "")
        + f", best of {CPU_REPEATS}"
    )


def measure_bandwidth(device: str = "cpu", size_mb: int | None = None, repeats: int | None = None) -> float:
    """Read bandwidth of `device` in GB/s (1e9 bytes/s): bytes read per second by a sum."""
    try:
        import torch
    except ImportError:  # numpy fallback keeps the roofline available without torch
        return _numpy_bandwidth(size_mb or CPU_MB, repeats or CPU_REPEATS)
    if is_cuda(device):
        size = (size_mb or CUDA_MB) * 1024 * 1024
        buf = torch.ones(size // 4, dtype=torch.float32, device=device)
        buf.sum()  # warm-up (kernel selection)
        best = 0.0
        for _ in range(repeats or 5):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            buf.sum()
            end.record()
            end.synchronize()
            best = max(best, size / (start.elapsed_time(end) / 1000) / 1e9)
        del buf
        torch.cuda.empty_cache()
        return round(best, 2)
    size = (size_mb or CPU_MB) * 1024 * 1024
    # ones, not empty: the pages must really be mapped before the timed read.
    buf = torch.ones(size // 4, dtype=torch.float32)
    _THREADS["cpu"] = torch.get_num_threads()
    buf.sum()
    best = 0.0
    for _ in range(repeats or CPU_REPEATS):
        t = time.perf_counter()
        buf.sum()
        best = max(best, size / (time.perf_counter() - t) / 1e9)
    del buf
    return round(best, 2)


def _numpy_bandwidth(size_mb: int, repeats: int) -> float:
    """Read bandwidth with numpy (one thread): float32 sum over `size_mb` MiB, best of `repeats`."""
    import numpy as np

    buf = np.ones(size_mb * 1024 * 1024 // 4, dtype=np.float32)
    buf.sum()
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        buf.sum()
        best = max(best, buf.nbytes / (time.perf_counter() - t) / 1e9)
    return round(best, 2)
