"""The device's memory bandwidth, measured: the ceiling of the decode roofline.

Decoding one token reads every weight once, so decode tok/s can't exceed
bandwidth / bytes_per_token. We measure a large buffer copy (much bigger than any cache) and
report bytes moved per second, counting read + write like STREAM's "Copy". The best of a few
runs is kept: the ceiling is what the hardware can do, not an average over interference.
"""

from __future__ import annotations

import time


def measure_bandwidth(device: str = "cpu", size_mb: int | None = None, repeats: int = 5) -> float:
    """Copy bandwidth of `device` in GB/s (1e9 bytes/s), read + write counted."""
    try:
        import torch
    except ImportError:  # numpy fallback keeps the roofline available without torch
        return _numpy_bandwidth(size_mb or 256, repeats)
    if device.startswith("cuda"):
        size = (size_mb or 1024) * 1024 * 1024
        src = torch.empty(size // 4, dtype=torch.float32, device=device)
        dst = torch.empty_like(src)
        dst.copy_(src)  # warm-up
        best = 0.0
        for _ in range(repeats):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            dst.copy_(src)
            end.record()
            end.synchronize()
            best = max(best, 2 * size / (start.elapsed_time(end) / 1000) / 1e9)
        del src, dst
        torch.cuda.empty_cache()
        return round(best, 2)
    size = (size_mb or 256) * 1024 * 1024
    # float32, not uint8: torch's byte copy takes a slower path on some CPUs. ones, not empty:
    # the pages must really be mapped before the timed copy.
    src = torch.ones(size // 4, dtype=torch.float32)
    dst = torch.zeros_like(src)
    dst.copy_(src)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        dst.copy_(src)
        best = max(best, 2 * size / (time.perf_counter() - t) / 1e9)
    return round(best, 2)


def _numpy_bandwidth(size_mb: int, repeats: int) -> float:
    import numpy as np
    src = np.ones(size_mb * 1024 * 1024, dtype=np.uint8)
    dst = np.zeros_like(src)
    np.copyto(dst, src)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        np.copyto(dst, src)
        best = max(best, 2 * src.nbytes / (time.perf_counter() - t) / 1e9)
    return round(best, 2)
