"""What machine are we on, or planning for? GPUs, CPU, RAM, and what can run here.

    detect() -> HardwareProfile          this machine (NVML, /proc/cpuinfo, psutil)
    profile("t4-16gb") -> HardwareProfile a named machine, to plan for hardware you don't have
    from_options(profile=, gpu_memory="8GB", device="cpu", ram="16GB")   the CLI's hand options

Units: every `_mb` here is MiB (2**20 bytes), as nvidia-smi and mindbench.measure use it, and a
size typed as "8GB" means 8 GiB, the way GPU makers label cards (an "8 GB" card has 8192 MiB).

Nothing here imports torch: `mindbench hardware` and `mindbench recommend` must answer at once.
Whether CUDA is usable is therefore decided like this (see `_cuda_usable`):
  1. if torch is already imported in this process, ask it (torch.cuda.is_available());
  2. else CUDA is usable when NVML sees at least one GPU *and* the installed torch was built with
     CUDA (read from torch/version.py as a file, without importing torch).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import platform
import re
import sys
from dataclasses import asdict, dataclass, field

from mindbench.errors import InputError

MIB = 2**20

# Spec-sheet memory bandwidth (GB/s, 1e9 bytes/s) of common cards: the decode roofline's ceiling
# for configurations never measured. Most specific names first (matched as substrings).
GPU_BANDWIDTH_GB_S = [
    ("H200", 4800),
    ("H100 NVL", 3900),
    ("H100 PCIe", 2000),
    ("H100", 3350),
    ("A100 80GB PCIe", 1935),
    ("A100-SXM4-80GB", 2039),
    ("A100", 1555),
    ("L40S", 864),
    ("L40", 864),
    ("L4", 300),
    ("A40", 696),
    ("A10G", 600),
    ("A10", 600),
    ("RTX A6000", 768),
    ("V100", 900),
    ("T4", 320),
    ("P100", 732),
    ("RTX 4090", 1008),
    ("RTX 4080", 717),
    ("RTX 4070", 504),
    ("RTX 4060", 272),
    ("RTX 3090", 936),
    ("RTX 3080", 760),
    ("RTX 3070", 448),
    ("RTX 3060", 360),
    ("RTX 2080", 448),
    ("RTX 2070", 448),
    ("RTX 2060", 336),
    ("GTX 1080", 320),
]
# A GPU we know nothing about (hand-given --gpu-memory, unknown model): a mid-range card.
ASSUMED_GPU_BANDWIDTH_GB_S = 300.0
# A CPU we haven't measured: dual-channel DDR4, roughly what a laptop or small cloud VM streams.
ASSUMED_CPU_BANDWIDTH_GB_S = 20.0

# Buckets for memory_class, in GiB. Cards report a little under their label (a T4 has 15 GiB, an
# H100 79.6 GiB), so the nearest bucket is the label a person would use.
_BUCKETS_GB = (1, 2, 3, 4, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64, 80, 96, 128, 141, 192, 256, 384, 512, 768, 1024)


def identity_fingerprint(cpu: str, cores: int, ram_mb: float, gpus=()) -> str:
    """The one fingerprint formula (HardwareProfile.fingerprint, and fingerprint.hardware() when
    detection fails): CPU model, cores, RAM (GiB, rounded), GPU (name, total MiB) pairs."""
    ident = {
        "cpu": cpu,
        "cores": cores,
        "ram_gb": round(ram_mb / 1024),
        "gpus": sorted((name, round(total_mb / 1024)) for name, total_mb in gpus),
    }
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class GPU:
    index: int
    name: str
    total_mb: int
    free_mb: int | None = None
    mig: bool = False  # a MIG slice of a bigger card (memory is the slice's)
    bandwidth_gb_s: float | None = None  # spec sheet, when we know the card
    bandwidth_source: str = "unknown"
    compute_capability: str | None = None  # "9.0"; decides which kernels run (speed fingerprint)
    driver: str | None = None  # NVIDIA driver version
    cuda_driver: str | None = None  # the CUDA version the driver supports ("12.4")


@dataclass
class HardwareProfile:
    cpu: str
    cores: int
    ram_mb: int
    gpus: list[GPU] = field(default_factory=list)
    cuda_available: bool = False
    bnb_available: bool = False
    name: str = "detected"  # "detected", a profile name, or "manual"
    cuda_reason: str = ""  # how cuda_available was decided
    cpu_bandwidth_gb_s: float | None = None  # measured or assumed; None until asked for
    cpu_bandwidth_source: str = "unknown"
    notes: list[str] = field(default_factory=list)  # what could not be detected, and why
    identity: str | None = None  # fingerprint kept when only the device plan changes
    # What decides speed beyond the memory class: None = unknown (a named profile or a
    # hand-given machine), and an unknown CPU is never matched for speed.
    cpu_vendor: str | None = None
    cpu_model_id: str | None = None  # "family/model/stepping", e.g. "25/17/1"
    cpu_features: list[str] | None = None  # the ISA flags kernels dispatch on (see CPU_FEATURES)
    speed_identity: str | None = None  # speed fingerprint given by hand (kept, like identity)
    # The device-table row this machine is planned on (`--gpu NAME`, or this machine's GPU matched
    # by its NVML name): the recommender's candidates then come from the hardware (decide/plan.py).
    planned_device: object | None = None  # mindbench.models.devices.Device

    # --- identity ------------------------------------------------------------------------------
    @property
    def fingerprint(self) -> str:
        """Stable short sha of the hardware identity: CPU model, cores, RAM (GiB, rounded), GPU
        names and total memory. Free memory, drivers and load are left out: same machine, same
        fingerprint, so results measured here are found again here."""
        if self.identity:
            return self.identity
        return identity_fingerprint(self.cpu, self.cores, self.ram_mb, [(g.name, g.total_mb) for g in self.gpus])

    @property
    def speed_fingerprint(self) -> str | None:
        """Short sha of what decides speed: CPU vendor, family/model/stepping, ISA features,
        cores, and each GPU's name, compute capability, driver and CUDA versions. Two machines
        with one `fingerprint` (same CPU name, cores, RAM) can differ here - AVX-512 or not is a
        4x difference for int4 kernels - so speed is compared only when this matches. None when
        the CPU features are unknown: such a machine is never matched for speed."""
        if self.speed_identity:
            return self.speed_identity
        if self.cpu_features is None:
            return None
        return speed_fingerprint(self.to_speed_identity())

    @speed_fingerprint.setter
    def speed_fingerprint(self, value: str | None) -> None:
        self.speed_identity = value

    def to_speed_identity(self) -> dict:
        return {
            "cpu_vendor": self.cpu_vendor,
            "cpu_model_id": self.cpu_model_id,
            "cpu_features": sorted(self.cpu_features or []),
            "cores": self.cores,
            "gpus": sorted([g.name, g.compute_capability, g.driver, g.cuda_driver] for g in self.gpus),
        }

    @property
    def memory_class(self) -> str:
        """Coarse bucket ("gpu-16gb", "cpu-24gb") to borrow results from similar machines: what
        fits, and roughly how fast, is decided by the memory the model runs in."""
        if self.device == "cuda":
            return f"gpu-{_bucket(self.gpu.total_mb)}gb"
        if self.device == "metal":
            return f"metal-{_bucket(self.memory_mb)}gb"
        return f"cpu-{_bucket(self.ram_mb)}gb"

    # --- what a model runs on -------------------------------------------------------------------
    @property
    def gpu(self) -> GPU | None:
        """The card a run uses: the first one, cuda:0, which is what mindbench.runtimes.transformers.loading's "auto"
        device resolves to (CUDA_VISIBLE_DEVICES picks another)."""
        return self.gpus[0] if self.gpus else None

    @property
    def device(self) -> str:
        """ "cuda" when a GPU is usable (or planned for by hand), else "cpu"; a planned Apple or
        CPU device says its own kind ("metal", "cpu")."""
        pd = self.planned_device
        if pd is not None and pd.kind in ("metal", "cpu"):
            return pd.kind
        return "cuda" if self.gpus and self.cuda_available else "cpu"

    @property
    def memory_mb(self) -> int:
        """Memory the model lives in: the GPU's total (all planned devices), or the machine's RAM."""
        pd = self.planned_device
        if pd is not None:
            return int(pd.total_memory_gb * 1024)
        return self.gpu.total_mb if self.device == "cuda" else self.ram_mb

    @property
    def bandwidth_gb_s(self) -> float:
        if self.planned_device is not None:
            return self.planned_device.bandwidth_gb_s
        if self.device == "cuda":
            return self.gpu.bandwidth_gb_s or ASSUMED_GPU_BANDWIDTH_GB_S
        return self.cpu_bandwidth_gb_s or ASSUMED_CPU_BANDWIDTH_GB_S

    @property
    def bandwidth_source(self) -> str:
        if self.planned_device is not None:
            return f"spec sheet ({self.planned_device.name}: {self.planned_device.source})"
        if self.device == "cuda":
            return self.gpu.bandwidth_source if self.gpu.bandwidth_gb_s else "assumed (unknown GPU model)"
        return self.cpu_bandwidth_source if self.cpu_bandwidth_gb_s else "assumed (typical dual-channel DDR4)"

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            fingerprint=self.fingerprint,
            speed_fingerprint=self.speed_fingerprint,
            memory_class=self.memory_class,
            device=self.device,
            memory_mb=self.memory_mb,
            bandwidth_gb_s=self.bandwidth_gb_s,
            bandwidth_source=self.bandwidth_source,
            platform=sys.platform,
        )
        return d


def speed_fingerprint(identity: dict) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


# ISA flags the kernels of torch (oneDNN/FBGEMM), bitsandbytes and ggml choose their code paths by.
# Only these enter the speed fingerprint: a microcode flag must not split a machine in two.
CPU_FEATURES = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512bw",
    "avx512cd",
    "avx512dq",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx512vbmi",
    "avx512ifma",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "amx_fp16",
    # ARM (Linux's names): NEON is "asimd" on aarch64; dot product, fp16, SVE, i8mm, bf16
    "neon",
    "asimd",
    "asimddp",
    "asimdhp",
    "fphp",
    "sve",
    "sve2",
    "i8mm",
    "bf16",
)


def cpu_info(text: str | None = None) -> dict:
    """Vendor, family/model/stepping and the kernel-relevant ISA features of this CPU.

    From /proc/cpuinfo on Linux (`text` is its content, for tests); elsewhere a best effort from
    sysctl (macOS) or the platform, and features None (unknown) when nothing can be read."""
    if text is None:
        try:
            with open("/proc/cpuinfo") as f:
                text = f.read()
        except OSError:
            return _cpu_info_fallback()
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the first processor describes them all (one socket type per machine)
            continue
        key, _, value = line.partition(":")
        fields.setdefault(key.strip().lower(), value.strip())
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    if not flags:
        return _cpu_info_fallback()
    vendor = fields.get("vendor_id") or fields.get("cpu implementer")
    ids = [fields.get(k) for k in ("cpu family", "model", "stepping")]
    if not any(ids):  # ARM: implementer/part/variant/revision
        ids = [fields.get(k) for k in ("cpu architecture", "cpu part", "cpu variant", "cpu revision")]
    return {
        "vendor": vendor,
        "model_id": "/".join(i or "?" for i in ids),
        "features": sorted(f for f in CPU_FEATURES if f in flags),
    }


def _cpu_info_fallback() -> dict:
    """macOS: sysctl's hw.optional.* (ARM) and machdep.cpu.*features (Intel); else unknown."""
    machine = platform.machine().lower()
    if sys.platform != "darwin":
        return {"vendor": platform.processor() or None, "model_id": machine or None, "features": None}
    import subprocess

    try:
        out = subprocess.run(["sysctl", "-a"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    kv = dict(line.split(": ", 1) for line in out.splitlines() if ": " in line)
    have = {k.rsplit(".", 1)[-1].lower() for k, v in kv.items() if k.startswith("hw.optional.") and v.strip() == "1"}
    for k in ("machdep.cpu.features", "machdep.cpu.leaf7_features"):
        have |= set(kv.get(k, "").lower().replace(".", "_").split())
    alias = {
        "neon": "asimd",
        "feat_dotprod": "asimddp",
        "feat_fp16": "asimdhp",
        "feat_i8mm": "i8mm",
        "feat_bf16": "bf16",
        "fma": "fma",
        "f16c": "f16c",
        "avx1_0": "avx",
        "avx2_0": "avx2",
    }
    feats = sorted({alias.get(h, h) for h in have} & set(CPU_FEATURES))
    return {
        "vendor": kv.get("machdep.cpu.vendor") or ("Apple" if machine == "arm64" else None),
        "model_id": kv.get("machdep.cpu.brand_string") or machine,
        "features": feats or None,
    }


def _bucket(mb: float) -> int:
    gb = mb / 1024
    return min(_BUCKETS_GB, key=lambda b: (abs(b - gb) / b, -b))


# Cards before Ampere have no bf16 (loading refuses it there): T4, V100, P100, RTX 20xx, GTX.
_NO_BF16 = ("T4", "V100", "P100", "P40", "P4", "RTX 20", "GTX", "TITAN V", "TITAN RTX", "Quadro RTX")


def gpu_supports_bf16(name: str) -> bool:
    """From the card's name, without CUDA. Unknown (hand-given) cards are assumed modern."""
    return not any(k.lower() in name.lower() for k in _NO_BF16)


def gpu_bandwidth(name: str) -> float | None:
    """Spec-sheet bandwidth of a card by name: the device table (mindbench.models.devices), then
    the short list above for cards it does not carry."""
    from mindbench.models.devices import from_nvml

    d = from_nvml(name)
    if d is not None and d.kind in ("cuda", "rocm"):
        return d.bandwidth_gb_s
    for key, bw in GPU_BANDWIDTH_GB_S:
        if key.lower() in name.lower():
            return float(bw)
    return None


# --- detection --------------------------------------------------------------------------------------


def _s(x) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


def nvml_gpus(nvml=None) -> tuple[list[GPU], list[str]]:
    """GPUs through NVML, and notes on what went wrong. Never raises: no nvidia-ml-py, no driver,
    an NVML error on one card, or MIG mode each become a note, not a crash.

    `nvml` is the device boundary (the pynvml module); tests pass a fake."""
    notes: list[str] = []
    if nvml is None:
        try:
            import pynvml as nvml
        except ImportError:
            return [], ["nvidia-ml-py is not installed, so GPUs can't be listed (pip install nvidia-ml-py)"]
    try:
        nvml.nvmlInit()
    except Exception as e:  # NVMLError_LibraryNotFound / DriverNotLoaded: a machine without NVIDIA
        return [], [f"no NVIDIA driver reachable through NVML ({type(e).__name__}: {e})"]
    gpus: list[GPU] = []
    try:
        for i in range(nvml.nvmlDeviceGetCount()):
            try:
                h = nvml.nvmlDeviceGetHandleByIndex(i)
                name = _s(nvml.nvmlDeviceGetName(h))
                if _mig_enabled(nvml, h):
                    slices = _mig_slices(nvml, h, i, name)
                    gpus.extend(slices)
                    if not slices:
                        notes.append(f"GPU {i} ({name}) is in MIG mode with no instances created")
                    continue
                mem = nvml.nvmlDeviceGetMemoryInfo(h)
                gpus.append(
                    GPU(i, name, int(mem.total // MIB), int(mem.free // MIB), compute_capability=_nvml_cc(nvml, h))
                )
            except Exception as e:
                notes.append(f"GPU {i} skipped: NVML error {type(e).__name__}: {e}")
        driver, cuda = _nvml_versions(nvml)
        for g in gpus:
            g.driver, g.cuda_driver = driver, cuda
    except Exception as e:
        notes.append(f"NVML could not count GPUs ({type(e).__name__}: {e})")
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass
    for g in gpus:
        bw = gpu_bandwidth(g.name)
        if bw:
            g.bandwidth_gb_s, g.bandwidth_source = bw, f"spec sheet ({g.name})"
    return gpus, notes


def _nvml_cc(nvml, handle) -> str | None:
    try:
        major, minor = nvml.nvmlDeviceGetCudaComputeCapability(handle)
        return f"{major}.{minor}"
    except Exception:  # old driver / old nvidia-ml-py: unknown, and the fingerprint says so
        return None


def _nvml_versions(nvml) -> tuple[str | None, str | None]:
    """(driver version, CUDA version the driver supports), each None when NVML can't say."""
    try:
        driver = _s(nvml.nvmlSystemGetDriverVersion())
    except Exception:
        driver = None
    try:
        v = int(nvml.nvmlSystemGetCudaDriverVersion())  # 12040 -> "12.4"
        cuda = f"{v // 1000}.{(v % 1000) // 10}"
    except Exception:
        cuda = None
    return driver, cuda


def _mig_enabled(nvml, handle) -> bool:
    try:
        current, _pending = nvml.nvmlDeviceGetMigMode(handle)
    except Exception:  # NotSupported on cards without MIG, FunctionNotFound on old drivers
        return False
    return current == getattr(nvml, "NVML_DEVICE_MIG_ENABLE", 1)


def _mig_slices(nvml, handle, index: int, parent: str) -> list[GPU]:
    """Each MIG instance is what CUDA sees as a device: its memory is the slice's, not the card's."""
    out = []
    try:
        n = nvml.nvmlDeviceGetMaxMigDeviceCount(handle)
    except Exception:
        return out
    for j in range(n):
        try:
            mh = nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, j)
        except Exception:  # NotFound: this slot has no instance
            continue
        try:
            name = _s(nvml.nvmlDeviceGetName(mh))
        except Exception:
            name = f"{parent} MIG {j}"
        try:
            mem = nvml.nvmlDeviceGetMemoryInfo(mh)
            out.append(
                GPU(
                    index,
                    name,
                    int(mem.total // MIB),
                    int(mem.free // MIB),
                    mig=True,
                    compute_capability=_nvml_cc(nvml, handle),
                )
            )
        except Exception:
            continue
    return out


def torch_cuda_build() -> str | None:
    """CUDA version torch was built with ("12.1"), None for a CPU-only build or no torch -
    read from torch/version.py as text so torch is not imported."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = os.path.join(spec.submodule_search_locations[0], "version.py")
    try:
        text = open(path).read()
    except OSError:
        return None
    m = re.search(r"^cuda\s*(?::[^=]*)?=\s*['\"]([^'\"]+)['\"]", text, re.M)
    return m.group(1) if m else None


def _cuda_usable(gpus: list[GPU]) -> tuple[bool, str]:
    torch = sys.modules.get("torch")
    if torch is not None:  # already paid for: ask the authority
        ok = bool(torch.cuda.is_available())
        return ok, f"torch.cuda.is_available() is {ok}"
    if not gpus:
        return False, "no NVIDIA GPU visible to NVML"
    if importlib.util.find_spec("torch") is None:
        return False, "torch is not installed"
    build = torch_cuda_build()
    if build is None:
        return False, "torch here is a CPU-only build (reinstall torch with CUDA to use the GPU)"
    return True, f"inferred without importing torch: NVML sees {len(gpus)} GPU(s), torch built with CUDA {build}"


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def ram_mb() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().total // MIB)
    except ImportError:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // MIB)


def detect(*, nvml=None, measure_bandwidth: bool = False) -> HardwareProfile:
    """This machine. Cheap (no torch import); `measure_bandwidth` adds a ~0.3 s CPU read test."""
    gpus, notes = nvml_gpus(nvml)
    cuda, reason = _cuda_usable(gpus)
    info = cpu_info()
    hw = HardwareProfile(
        cpu=cpu_name(),
        cores=os.cpu_count() or 1,
        ram_mb=ram_mb(),
        gpus=gpus,
        cuda_available=cuda,
        bnb_available=importlib.util.find_spec("bitsandbytes") is not None,
        name="detected",
        cuda_reason=reason,
        notes=notes,
        cpu_vendor=info["vendor"],
        cpu_model_id=info["model_id"],
        cpu_features=info["features"],
    )
    if measure_bandwidth:
        hw.cpu_bandwidth_gb_s, hw.cpu_bandwidth_source = measure_cpu_bandwidth()
    if cuda and gpus and len({g.name for g in gpus}) == 1 and not any(g.mig for g in gpus):
        # The card is in the device table: plan its candidates from the hardware (every runtime
        # that runs on it, labelled with what is not installed here), like `--gpu NAME`.
        from dataclasses import replace

        from mindbench.models.devices import from_nvml

        d = from_nvml(gpus[0].name, gpus[0].total_mb)
        if d is not None:
            hw.planned_device = replace(d, count=len(gpus))
    return hw


def measure_cpu_bandwidth(size_mb: int = 128, repeats: int = 3) -> tuple[float | None, str]:
    """Single-thread read bandwidth (GB/s) with numpy, not torch: mindbench recommend must stay
    fast (~0.3 s). The harness's torch measurement (records' roofline.bandwidth_gb_s, all
    threads) is preferred when present."""
    from mindbench.measure.bandwidth import _numpy_bandwidth  # the harness's own numpy read test

    try:
        best = _numpy_bandwidth(size_mb, repeats)
    except ImportError:
        return None, "unknown"
    return round(best, 1), f"measured now (numpy float32 sum over {size_mb} MiB, read)"


def cached_cpu_bandwidth(fingerprint: str) -> tuple[float | None, str]:
    """measure_cpu_bandwidth once per machine, kept in the cache dir: `mindbench recommend` runs
    often and should not pay for numpy and the read test every time."""
    from mindbench.paths import cache_dir

    path = cache_dir() / "cpu_read_bandwidth.json"  # not cpu_bandwidth.json: that held copy figures
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    if fingerprint in known:
        hit = known[fingerprint]
        return hit["gb_s"], f"{hit['source']}, cached"
    gb_s, source = measure_cpu_bandwidth()
    if gb_s:
        known[fingerprint] = {"gb_s": gb_s, "source": source.replace("measured now", "measured")}
        try:
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(json.dumps(known, indent=1))
            os.replace(tmp, path)
        except OSError:
            pass
    return gb_s, source


# --- named profiles and hand options ----------------------------------------------------------------

# name -> (gpu name or None, gpu MiB as the card reports it, cpu, cores, ram GiB, cpu GB/s)
PROFILES = {
    "t4-16gb": ("Tesla T4", 15360, "cloud vCPU (Colab-class)", 4, 16, None),
    "rtx3060-12gb": ("NVIDIA GeForce RTX 3060", 12288, "desktop x86-64", 8, 32, None),
    "rtx4090-24gb": ("NVIDIA GeForce RTX 4090", 24564, "desktop x86-64", 16, 64, None),
    "a100-80gb": ("NVIDIA A100-SXM4-80GB", 81920, "server x86-64", 32, 256, None),
    "h100-80gb": ("NVIDIA H100 80GB HBM3", 81559, "server x86-64", 32, 256, None),
    "laptop-cpu-16gb": (None, 0, "laptop x86-64", 8, 16, 40.0),
}


def profile(name: str) -> HardwareProfile:
    """A named machine to plan for; GPU bandwidths are spec-sheet values."""
    if name not in PROFILES:
        import difflib

        close = difflib.get_close_matches(name, PROFILES, n=2)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise InputError(f"unknown hardware profile {name!r}: {hint}choose one of {', '.join(PROFILES)}")
    gpu_name, gpu_mb, cpu, cores, ram_gb, cpu_bw = PROFILES[name]
    gpus = []
    if gpu_name:
        bw = gpu_bandwidth(gpu_name)
        gpus = [GPU(0, gpu_name, gpu_mb, gpu_mb, bandwidth_gb_s=bw, bandwidth_source=f"spec sheet ({gpu_name})")]
    return HardwareProfile(
        cpu=cpu,
        cores=cores,
        ram_mb=ram_gb * 1024,
        gpus=gpus,
        cuda_available=bool(gpus),
        bnb_available=True,
        name=name,
        cuda_reason=f"profile {name}",
        cpu_bandwidth_gb_s=cpu_bw,
        cpu_bandwidth_source="assumed (dual-channel DDR4/DDR5 laptop)" if cpu_bw else "unknown",
    )


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(t|tb|tib|g|gb|gib|m|mb|mib)\s*$", re.I)


def parse_size(text: str, what: str = "size") -> int:
    """'8GB', '8 GiB', '512MB', '1.5TB' -> MiB. GB means GiB here (see the module docstring)."""
    m = _SIZE.match(str(text))
    if not m:
        raise InputError(f"can't read {what} {text!r}: give a number with a unit, e.g. 8GB or 512MB")
    value, unit = float(m.group(1)), m.group(2).lower()[0]
    mb = value * {"t": 1024 * 1024, "g": 1024, "m": 1}[unit]
    if mb < 1:
        raise InputError(f"{what} {text!r} is too small: give at least 1MB, e.g. 8GB")
    return int(round(mb))


def from_device(dev) -> HardwareProfile:
    """A machine planned on a device-table row (mindbench.models.devices.Device, `count` of them)."""
    gpus = []
    if dev.kind in ("cuda", "rocm"):
        mb = int(dev.memory_gb * 1024)
        gpus = [
            GPU(i, dev.name, mb, mb, bandwidth_gb_s=dev.bandwidth_gb_s, bandwidth_source=f"spec sheet ({dev.source})")
            for i in range(dev.count)
        ]
    ram_gb = dev.memory_gb if dev.kind in ("metal", "cpu") else max(32, 2 * dev.total_memory_gb)
    return HardwareProfile(
        cpu=f"planned host for {dev.label}" if gpus else dev.name,
        cores=8,
        ram_mb=int(ram_gb * 1024),
        gpus=gpus,
        cuda_available=bool(gpus),
        bnb_available=True,
        name=f"--gpu {dev.label}",
        cuda_reason=f"planned (--gpu {dev.label})",
        planned_device=dev,
        cpu_bandwidth_gb_s=dev.bandwidth_gb_s if not gpus else None,
        cpu_bandwidth_source=f"spec sheet ({dev.source})" if not gpus else "unknown",
    )


def from_options(
    profile_name: str | None = None,
    gpu_memory: str | None = None,
    device: str | None = None,
    ram: str | None = None,
    *,
    base: HardwareProfile | None = None,
    gpu: str | None = None,
) -> HardwareProfile:
    """The machine to plan for: a device from the table (`gpu`, e.g. "RTX 4090", "2x H100"), a
    named profile or this machine, then the hand options on top."""
    if gpu is not None:
        if profile_name or gpu_memory:
            raise InputError("give --gpu or --profile/--gpu-memory, not both")
        from mindbench.models.devices import lookup

        base = from_device(lookup(gpu))
    hw = base or (profile(profile_name) if profile_name else detect())

    def manual():
        # Hand-changed memory is a hypothetical machine: its own name and fingerprint.
        if hw.name == "detected":
            hw.name = "manual"
        elif not hw.name.endswith("manual"):
            hw.name += "+manual"

    if gpu_memory is not None:
        mb = parse_size(gpu_memory, "--gpu-memory")
        old = hw.gpu
        # Keep the card's name and bandwidth when only its memory changes; a bare size is a
        # hypothetical card whose bandwidth we have to assume.
        g = GPU(
            0,
            f"GPU with {gpu_memory.strip()}",
            mb,
            mb,
            bandwidth_gb_s=None,
            bandwidth_source="assumed (no GPU model given: --gpu NAME plans with the card's own spec)",
        )
        if old is not None and old.total_mb == mb:
            g = old
        hw.gpus, hw.cuda_available = [g], True
        hw.cuda_reason = "planned by hand (--gpu-memory)"
        manual()
    if ram is not None:
        hw.ram_mb = parse_size(ram, "--ram")
        manual()
    if device is not None:
        if device == "cpu":
            # Same machine, planned on its CPU: keep its fingerprint so its CPU runs still count.
            hw.identity = hw.fingerprint
            hw.gpus, hw.cuda_available = [], False
            hw.cuda_reason = "--device cpu"
        elif device in ("cuda", "gpu") or device.startswith("cuda:"):
            if not hw.gpus:
                raise InputError(
                    "--device cuda, but no GPU here or in the profile: add --gpu-memory 8GB "
                    "(or --profile t4-16gb) to plan for one"
                )
            if not hw.cuda_available:
                raise InputError(f"--device cuda, but CUDA is not usable here ({hw.cuda_reason})")
        elif device != "auto":
            raise InputError(f"unknown --device {device!r}: use auto, cpu or cuda")
    return hw


def render(hw: HardwareProfile) -> str:
    from tabulate import tabulate

    lines = [
        f"machine      {hw.name}  (fingerprint {hw.fingerprint}, memory class {hw.memory_class})",
        f"cpu          {hw.cpu}, {hw.cores} cores",
        f"ram          {hw.ram_mb / 1024:.1f} GiB",
        f"cuda         {'yes' if hw.cuda_available else 'no'} ({hw.cuda_reason})",
        f"bitsandbytes {'installed' if hw.bnb_available else 'not installed (no int8/int4)'}",
        f"runs on      {hw.device}, {hw.memory_mb / 1024:.1f} GiB, {hw.bandwidth_gb_s:g} GB/s [{hw.bandwidth_source}]",
    ]
    if hw.gpus:
        rows = [
            [
                g.index,
                g.name,
                f"{g.total_mb / 1024:.1f}",
                "" if g.free_mb is None else f"{g.free_mb / 1024:.1f}",
                "yes" if g.mig else "",
                g.bandwidth_gb_s or "",
            ]
            for g in hw.gpus
        ]
        lines += ["", tabulate(rows, headers=["gpu", "name", "total GiB", "free GiB", "MIG", "GB/s"])]
    else:
        lines.append("gpus         none")
    lines += [f"note         {n}" for n in hw.notes]
    return "\n".join(lines)


# The CPU features that decide a kernel's speed, most capable first: how a machine's class is named
# in one word (tables, and compare's "different CPU" reason).
ISA_RANK = ("amx_tile", "avx512f", "avx_vnni", "avx2", "avx", "sve2", "sve", "i8mm", "asimddp", "asimd", "neon")


def top_feature(features) -> str:
    if features is None:
        return "CPU features unknown"
    return next((f for f in ISA_RANK if f in features), "no AVX/NEON")
