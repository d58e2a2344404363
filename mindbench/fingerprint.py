"""What a result was measured with: software versions, git commit, and the hardware identity.

Config travels with results (optimum-benchmark, llama-bench): a number without the versions and
the machine that produced it can't be compared later. Versions come from package metadata, so
nothing heavy is imported here. Hardware detection proper belongs to mindbench.hardware; the
small fallback below only keeps records complete until/unless that module is importable.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import subprocess
import sys
from importlib import metadata

from . import __version__
from .paths import project_root

# distribution name -> key in the record
PACKAGES = {"torch": "torch", "transformers": "transformers", "bitsandbytes": "bitsandbytes",
            "accelerate": "accelerate", "llama-cpp-python": "llama_cpp", "gguf": "gguf",
            "huggingface-hub": "huggingface_hub", "nvidia-ml-py": "pynvml"}


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """HEAD of the mindbench checkout (with '-dirty' when tracked files changed), or None when
    installed from a wheel."""
    root = project_root()
    if not (root / ".git").exists():
        return None
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (sha + "-dirty" if dirty else sha) or None


def software() -> dict:
    out = {"mindbench": __version__, "commit": git_commit(), "python": platform.python_version()}
    for dist, key in PACKAGES.items():
        try:
            out[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[key] = None
    return out


def hardware() -> dict:
    """The hardware record: mindbench.hardware.detect() when available, else a minimal fallback
    with the same keys."""
    try:
        from .hardware import detect
    except ImportError:
        return _fallback_hardware()
    try:
        return detect().to_dict()
    except Exception as e:  # a detection bug must not cost the measurement; say so in the record
        hw = _fallback_hardware()
        hw["detect_error"] = f"{type(e).__name__}: {e}"
        return hw


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_mb() -> int:
    try:
        import psutil
        return psutil.virtual_memory().total // 2**20
    except ImportError:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20


def _fallback_hardware() -> dict:
    gpus = []
    try:
        import pynvml
        pynvml.nvmlInit()
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(h)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            gpus.append({"index": i, "name": name.decode() if isinstance(name, bytes) else name,
                         "total_mb": mem.total // 2**20, "free_mb": mem.free // 2**20, "mig": False})
        pynvml.nvmlShutdown()
    except Exception:
        pass
    cpu, cores = _cpu_name(), os.cpu_count() or 1
    ram_mb = _ram_mb()
    # The identity excludes free memory and the like: same machine, same fingerprint.
    ident = f"{cpu}|{cores}|{round(ram_mb / 1024)}|" + "|".join(f"{g['name']}:{g['total_mb']}" for g in gpus)
    biggest = max((g["total_mb"] for g in gpus), default=0)
    return {"fingerprint": hashlib.sha256(ident.encode()).hexdigest()[:16],
            "memory_class": f"gpu-{round(biggest / 1024)}gb" if gpus else f"cpu-{round(ram_mb / 1024)}gb",
            "cpu": cpu, "cores": cores, "ram_mb": ram_mb, "gpus": gpus, "cuda_available": bool(gpus),
            "platform": sys.platform}
