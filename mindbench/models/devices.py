"""The device table: memory, bandwidth and throughput of the hardware people run models on.

    lookup("RTX 4090") / lookup("2x H100") / lookup("NVIDIA H100 80GB HBM3") / lookup("M2 Max 64GB") -> Device
    devices() -> every row of data/devices.csv

One row per device, each with the spec page it came from (data/devices.csv). Pure Python: the
recommender and `mindbench estimate` plan for hardware that is not here, in milliseconds, without
torch. Units: `memory_gb` is what the maker labels (GiB for GPUs, as nvidia-smi shows them),
`bandwidth_gb_s` is 1e9 bytes/s, `fp16_tflops` / `int8_tops` are dense tensor throughput (no
sparsity). CPU rows are classes (a memory system), not products: their throughput is nominal.
"""

from __future__ import annotations

import csv
import difflib
import functools
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from mindbench.errors import InputError

TABLE = Path(__file__).parent / "data" / "devices.csv"
# Words that name the maker or the product line, not the device: "NVIDIA GeForce RTX 4090" is "rtx 4090".
_NOISE = {"nvidia", "geforce", "tesla", "amd", "radeon", "apple", "instinct", "graphics", "gpu", "the"}
# How much of a device's memory a model may plan to use: the rest is the allocator's, the display's,
# the OS's (Apple's GPU may wire about 75 % of unified memory by default; a CPU shares RAM with everything).
USABLE = {"cuda": 0.90, "rocm": 0.90, "metal": 0.70, "cpu": 0.75}


@dataclass(frozen=True)
class Device:
    name: str
    vendor: str
    cls: str  # nvidia-consumer | nvidia-workstation | nvidia-datacenter | amd | apple | cpu
    kind: str  # cuda | rocm | metal | cpu: what runs on it
    memory_gb: float  # one device's memory (unified memory on Apple, RAM for a CPU class)
    bandwidth_gb_s: float
    fp16_tflops: float
    int8_tops: float
    bf16: bool
    fp8: bool
    source: str
    aliases: tuple[str, ...] = ()
    count: int = 1  # devices of this kind the model is split over (tensor/layer split)

    @property
    def total_memory_gb(self) -> float:
        return self.memory_gb * self.count

    @property
    def usable_mb(self) -> float:
        """MiB a model may plan to hold, over all `count` devices."""
        return self.total_memory_gb * 1024 * USABLE[self.kind]

    @property
    def label(self) -> str:
        return (f"{self.count}x " if self.count > 1 else "") + f"{self.name} ({self.memory_gb:g} GB)"

    def to_dict(self) -> dict:
        d = asdict(self)
        d["aliases"] = list(self.aliases)
        d.update(total_memory_gb=self.total_memory_gb, usable_mb=round(self.usable_mb), label=self.label)
        return d


def _norm(text: str) -> str:
    t = re.sub(r"[^a-z0-9.+]+", " ", str(text).lower().replace("‑", "-"))
    return " ".join(w for w in t.split() if w not in _NOISE)


@functools.lru_cache(maxsize=1)
def devices() -> tuple[Device, ...]:
    out = []
    with open(TABLE, newline="") as f:
        for r in csv.DictReader(f):
            out.append(
                Device(
                    name=r["name"],
                    vendor=r["vendor"],
                    cls=r["class"],
                    kind=r["kind"],
                    memory_gb=float(r["memory_gb"]),
                    bandwidth_gb_s=float(r["bandwidth_gb_s"]),
                    fp16_tflops=float(r["fp16_tflops"]),
                    int8_tops=float(r["int8_tops"]),
                    bf16=r["bf16"] == "yes",
                    fp8=r["fp8"] == "yes",
                    source=r["source"],
                    aliases=tuple(a.strip() for a in r["aliases"].split(";") if a.strip()),
                )
            )
    return tuple(out)


@functools.lru_cache(maxsize=1)
def _index() -> dict[str, Device]:
    idx: dict[str, Device] = {}
    for d in devices():
        for key in (d.name, *d.aliases):
            idx.setdefault(_norm(key), d)
    return idx


# "2x H100", "2 x H100", "2xH100" / "H100 x 2", "H100 x2", "3090 24GB * 2" (the x stands alone or
# follows a 1-2 digit count, so "RTX 4090" and "7900 XTX" are names, not counts)
_COUNT = re.compile(
    r"^\s*(\d{1,2})\s*[x×*]\s*(\S.*)$|^(.+?)\s+[x×*]\s*(\d{1,2})\s*$|^(.+?)\s*[×*]\s*(\d{1,2})\s*$", re.I
)
_MEM = re.compile(r"\b(\d+(?:\.\d+)?)\s*(gb|gib|g)\b", re.I)


def lookup(text: str) -> Device:
    """The device a person or NVML names: "RTX 4090", "4090", "2x H100", "H100 x 4",
    "NVIDIA GeForce RTX 4090", "NVIDIA H100 80GB HBM3", "M2 Max 64GB" (a memory size picks the
    configuration when it differs from the table's). Raises InputError with the nearest names."""
    raw = str(text or "").strip()
    if not raw:
        raise InputError("--gpu is empty: name a device, e.g. --gpu 'RTX 4090' (mindbench hardware --list)")
    count, name = 1, raw
    m = _COUNT.match(raw)
    if m:
        g = m.groups()
        count, name = (int(g[0]), g[1]) if g[0] else (int(g[3]), g[2]) if g[3] else (int(g[5]), g[4])
        if count < 1 or count > 64:
            raise InputError(f"--gpu {raw!r}: the device count must be 1 to 64")
    dev = _find(name)
    if dev is None:
        # "NVIDIA H100 80GB HBM3" or "M2 Max 64GB": the size is part of the name, try without it
        dev = _find(_MEM.sub(" ", name))
    if dev is None:
        near = difflib.get_close_matches(_norm(name), list(_index()), n=6, cutoff=0.5)
        names = list(dict.fromkeys(_index()[n].name for n in near))[:3]
        hint = f"did you mean {', '.join(repr(n) for n in names)}? " if names else ""
        raise InputError(f"unknown device {name.strip()!r}: {hint}see `mindbench hardware --list`")
    mem = _MEM.search(name)
    if mem and abs(float(mem.group(1)) - dev.memory_gb) > 0.5 and not _index().get(_norm(name)):
        gb = float(mem.group(1))
        if not (1 <= gb <= 4096):
            raise InputError(f"--gpu {raw!r}: a memory size of {gb:g} GB is not plausible")
        dev = replace(dev, memory_gb=gb)
    return replace(dev, count=count)


def _find(name: str) -> Device | None:
    key = _norm(name)
    idx = _index()
    if key in idx:
        return idx[key]
    compact = {k.replace(" ", ""): d for k, d in idx.items()}  # "rtx4090", "a100sxm"
    if key.replace(" ", "") in compact:
        return compact[key.replace(" ", "")]
    words = set(key.split())
    if not words:
        return None
    # every word given is in the device's name or an alias: "4090" -> "rtx 4090"; the shortest
    # such name wins ("a100" -> "a100", not "a100 80gb pcie"); ties are ambiguous.
    hits = {}
    for k, d in idx.items():
        if words <= set(k.split()):
            hits.setdefault(d.name, (len(k), d))
    if not hits:
        return None
    best = sorted(hits.values(), key=lambda t: t[0])
    if len(best) > 1 and best[0][0] == best[1][0]:
        names = ", ".join(repr(d.name) for _, d in best[:4])
        raise InputError(f"device {name.strip()!r} is ambiguous: {names}; name one of them")
    return best[0][1]


def from_nvml(name: str, total_mb: float | None = None) -> Device | None:
    """The table's row for a card NVML reports (None when the table does not know it)."""
    try:
        d = lookup(name)
    except InputError:
        return None
    if total_mb and abs(total_mb / 1024 - d.memory_gb) > 2:
        d = replace(d, memory_gb=round(total_mb / 1024, 1))
    return d


def render(rows: tuple[Device, ...] | list[Device] | None = None) -> str:
    from tabulate import tabulate

    rows = devices() if rows is None else rows
    return tabulate(
        [
            [
                d.name,
                d.cls,
                d.kind,
                f"{d.memory_gb:g}",
                f"{d.bandwidth_gb_s:g}",
                f"{d.fp16_tflops:g}",
                f"{d.int8_tops:g}",
                "yes" if d.bf16 else "no",
                "yes" if d.fp8 else "no",
            ]
            for d in rows
        ],
        headers=["device", "class", "runs", "memory GB", "bandwidth GB/s", "fp16 TFLOPS", "int8 TOPS", "bf16", "fp8"],
    )
