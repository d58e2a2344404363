"""Memory during one benchmark cell, every figure labelled with where it comes from.

Why four CUDA figures: they answer different questions and differ by hundreds of MB.
- nvml_global_mb: used memory on the whole card (what `nvidia-smi` shows; includes other
  processes) - the peak seen while the cell ran.
- nvml_process_mb: this process's own usage as the driver counts it (CUDA context, allocator
  pool, cuBLAS workspaces) - what another program on the card actually loses. None when the
  driver won't say (containers with a separate PID namespace, MIG slices).
- torch_max_allocated_mb: the peak of live tensors; torch_max_reserved_mb: the peak of torch's
  caching allocator pool (allocated + cached free blocks).
On CPU there is no allocator to ask, so we record the model's footprint (weights_mb, set by the
caller from the engine) and the process's peak resident set size, sampled in a thread because
RSS peaks (e.g. while de-quantizing during load) are brief.

MB here means 2**20 bytes, as nvidia-smi uses it.
"""

from __future__ import annotations

import os
import threading

from mindbench.measure.device import is_cuda

MB = 1024 * 1024


def rss_bytes() -> int:
    """Resident set size of this process (psutil when present; /proc otherwise, so a bare GPU
    box without psutil still gets the figure)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def vms_bytes() -> int:
    """Virtual size of this process (the address space an RLIMIT_AS counts)."""
    try:
        import psutil

        return psutil.Process().memory_info().vms
    except ImportError:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


class MemoryTracker:
    """`with MemoryTracker("cuda:0") as mem: ...` then `mem.to_dict()`.

    `cuda` and `nvml` are the device boundary (torch.cuda and pynvml); tests pass fakes.
    """

    FIELDS = (
        "weights_mb",
        "peak_rss_mb",
        "nvml_global_mb",
        "nvml_process_mb",
        "torch_max_allocated_mb",
        "torch_max_reserved_mb",
    )

    def __init__(self, device: str = "cpu", *, interval_s: float = 0.05, cuda=None, nvml=None):
        self.device = device
        self.interval_s = interval_s
        self.is_cuda = is_cuda(device)
        self.index = int(device.split(":")[1]) if self.is_cuda and ":" in device else 0
        self._cuda = cuda
        self._nvml = nvml
        self._handle = None
        self._stop = threading.Event()
        self._thread = None
        self.weights_mb: float | None = None
        self.peak_rss_mb: float | None = None
        self.nvml_global_mb: float | None = None
        self.nvml_process_mb: float | None = None
        self.torch_max_allocated_mb: float | None = None
        self.torch_max_reserved_mb: float | None = None
        self.nvml_error: str | None = None
        self.samples = 0  # how many samples were taken: lets a caller know the sampler has run

    # --- the boundary ---------------------------------------------------------------------
    def _torch_cuda(self):
        if self._cuda is None:
            import torch

            self._cuda = torch.cuda
        return self._cuda

    def _init_nvml(self) -> None:
        try:
            if self._nvml is None:
                import pynvml

                self._nvml = pynvml
            self._nvml.nvmlInit()
            self._handle = self._nvml.nvmlDeviceGetHandleByIndex(self._nvml_index())
        except Exception as e:  # no driver, no pynvml: torch's figures still stand
            self._handle = None
            self.nvml_error = f"{type(e).__name__}: {e}"

    def _nvml_index(self) -> int:
        # torch's index is relative to CUDA_VISIBLE_DEVICES; NVML's is not.
        visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        ids = [v.strip() for v in visible.split(",") if v.strip()]
        if ids and self.index < len(ids) and ids[self.index].isdigit():
            return int(ids[self.index])
        return self.index

    # --- sampling ---------------------------------------------------------------------------
    def _rss_mb(self) -> float:
        return rss_bytes() / MB

    def _nvml_sample(self) -> tuple[float | None, float | None]:
        if self._handle is None:
            return None, None
        nv = self._nvml
        used = nv.nvmlDeviceGetMemoryInfo(self._handle).used / MB
        mine = None
        try:
            pid = os.getpid()
            for p in nv.nvmlDeviceGetComputeRunningProcesses(self._handle):
                if p.pid == pid and p.usedGpuMemory is not None:
                    mine = p.usedGpuMemory / MB
        except Exception:
            pass  # not supported here (MIG, old driver): leave the process figure empty
        return used, mine

    def sample(self) -> None:
        """Take one sample now; peaks only ever go up."""
        rss = self._rss_mb()
        self.peak_rss_mb = rss if self.peak_rss_mb is None else max(self.peak_rss_mb, rss)
        if self.is_cuda:
            g, p = self._nvml_sample()
            if g is not None:
                self.nvml_global_mb = g if self.nvml_global_mb is None else max(self.nvml_global_mb, g)
            if p is not None:
                self.nvml_process_mb = p if self.nvml_process_mb is None else max(self.nvml_process_mb, p)
        self.samples += 1

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except Exception:  # a failed sample must never kill the measured work
                pass

    # --- context manager --------------------------------------------------------------------
    def __enter__(self) -> MemoryTracker:
        if self.is_cuda:
            cuda = self._torch_cuda()
            cuda.reset_peak_memory_stats(self.index)
            self._init_nvml()
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="mindbench-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None
        try:
            self.sample()
        except Exception:
            pass
        if self.is_cuda:
            cuda = self._torch_cuda()
            self.torch_max_allocated_mb = cuda.max_memory_allocated(self.index) / MB
            self.torch_max_reserved_mb = cuda.max_memory_reserved(self.index) / MB
            if self._handle is not None:
                try:
                    self._nvml.nvmlShutdown()
                except Exception:
                    pass

    def set_weights(self, nbytes: int | None) -> None:
        self.weights_mb = None if nbytes is None else nbytes / MB

    def to_dict(self) -> dict:
        def r(v):
            return None if v is None else round(v, 1)

        return {k: r(getattr(self, k)) for k in self.FIELDS}
