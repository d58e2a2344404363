"""What a result was measured with: software versions, git commit, and the hardware identity.

Config travels with results (optimum-benchmark, llama-bench): a number without the versions and
the machine that produced it can't be compared later. Versions come from package metadata, so
nothing heavy is imported here. Hardware detection proper belongs to mindbench.models.hardware; the
small fallback below only keeps records complete until/unless that module is importable.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from importlib import metadata

from mindbench import __version__
from mindbench.paths import project_root

# distribution name -> key in the record
PACKAGES = {
    "torch": "torch",
    "transformers": "transformers",
    "bitsandbytes": "bitsandbytes",
    "accelerate": "accelerate",
    "llama-cpp-python": "llama_cpp",
    "gguf": "gguf",
    "huggingface-hub": "huggingface_hub",
    "nvidia-ml-py": "pynvml",
}


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """HEAD of the mindbench checkout (with '-dirty' when tracked files changed), or None when
    installed from a wheel."""
    root = project_root()
    if not (root / ".git").exists():
        return None
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
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
    """The hardware record, from mindbench.models.hardware.detect(). A detection bug must not cost the
    measurement: then the record says so and carries only what is certain."""
    from mindbench.models.hardware import cpu_name, detect, identity_fingerprint, ram_mb

    try:
        return detect().to_dict()
    except Exception as e:
        # The same formula as HardwareProfile.fingerprint (a GPU-less view: detection failed), so
        # this record still matches this machine's others; speed_fingerprint is unknown (None),
        # so its speed is never compared.
        cpu, cores, ram = cpu_name(), os.cpu_count() or 1, ram_mb()
        # the same formula as a detected profile without GPUs, so a CPU machine keeps its identity;
        # speed_fingerprint is unknown (None), so this record's speed is never compared
        return {
            "fingerprint": identity_fingerprint(cpu, cores, ram),
            "speed_fingerprint": None,
            "cpu_features": None,
            "memory_class": f"cpu-{round(ram / 1024)}gb",
            "cpu": cpu,
            "cores": cores,
            "ram_mb": ram,
            "gpus": [],
            "cuda_available": False,
            "platform": sys.platform,
            "detect_error": f"{type(e).__name__}: {e}",
        }
