"""The result record, typed: what the worker and serve-bench write and every reader reads.

One stored JSON line (docs/architecture.md, "The result record") is one `Record`; each section is
a dataclass whose fields are the keys that code reads, units in the names (`*_mb`, `*_s`,
`*_tok_s`). `Record.from_json` reads any schema up to `SCHEMA` into the same type: a key an older
record lacks reads as None (unknown, never zero), and a key this version has no field for is kept
in the section's `extra`, so `to_json` writes back every key it read (a record from a newer minor
version, or one with a runtime's own additions such as `load.tensor_types`, loses nothing).

Why dataclasses and not msgspec Structs: a store holds hundreds of records, not millions. Every
committed store here (32 records, 0.2 MB) reads in 3.2 ms of json.loads plus 2.6 ms of from_json
(contended 2-core host), so a compiled decoder would save milliseconds for a new dependency.

Light: no torch, no click.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import ClassVar

from mindbench.measure.device import is_cuda
from mindbench.measure.memory import MemoryTracker  # light (no torch): the fields it measures
from mindbench.measure.speed import usable  # light (no torch): measure owns what a verdict means

# 2 added sections only (quality[suite].items, fidelity, hardware.speed_fingerprint, speed.verdict);
# schema-1 records still read, the missing sections meaning "unknown".
SCHEMA = 2


def num(x) -> float | None:
    """A finite number, or None (bools, NaN, strings and missing values are not figures)."""
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


class Section:
    """A JSON object read into declared fields; undeclared keys are kept in `extra`.

    `nested` names fields holding another Section (or a dict of them, `nested_maps`), converted
    both ways; every other field holds its JSON value as is."""

    nested: ClassVar[dict[str, type]] = {}
    nested_maps: ClassVar[dict[str, type]] = {}
    # Fields written even when None ("not measured" stays visible); any other None field is left
    # out, so a record carries only what applies to it. A None that a stored record spelled out
    # is kept in `extra`, so a record reads and writes back unchanged.
    always: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_json(cls, d):
        if d is None:
            return None
        if not isinstance(d, dict):
            raise TypeError(f"{cls.__name__}: expected a JSON object, got {type(d).__name__}")
        names = {f.name for f in fields(cls)} - {"extra"}
        kw = {}
        for k in names:
            if k not in d:
                continue
            v = d[k]
            if v is None and k not in cls.always:
                continue
            if k in cls.nested:
                v = cls.nested[k].from_json(v)
            elif k in cls.nested_maps and isinstance(v, dict):
                sub = cls.nested_maps[k]
                v = {name: (sub.from_json(x) if isinstance(x, dict) else x) for name, x in v.items()}
            kw[k] = v
        return cls(**kw, extra={k: v for k, v in d.items() if k not in kw})

    def to_json(self) -> dict:
        out = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            v = getattr(self, f.name)
            if isinstance(v, Section):
                v = v.to_json()
            elif f.name in self.nested_maps and isinstance(v, dict):
                v = {k: (x.to_json() if isinstance(x, Section) else x) for k, x in v.items()}
            if v is not None or f.name in self.always:
                out[f.name] = v
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out


@dataclass
class Figure(Section):
    """A repeated measurement: mean, standard deviation, repeats. A bare number in an old record
    reads as a mean with no spread; `estimated` marks a figure that was not measured."""

    mean: float | None = None
    std: float | None = None
    n: int | None = None
    estimated: bool | None = None
    always = ("mean", "std", "n")
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, d):
        if isinstance(d, (int, float)) and not isinstance(d, bool):
            return cls(mean=d)
        return super().from_json(d)

    @property
    def value(self) -> float | None:
        return num(self.mean)

    @property
    def spread(self) -> float | None:
        return num(self.std)


@dataclass
class Interval(Section):
    """A mean with its 95 % interval (fidelity's KLD, top-1 agreement, perplexity ratio)."""

    mean: float | None = None
    ci_lo: float | None = None
    ci_hi: float | None = None
    always = ("mean", "ci_lo", "ci_hi")
    extra: dict = field(default_factory=dict)


@dataclass
class Config(Section):
    """What was asked: the cell's identity and settings (serve-bench adds shape, mode, levels)."""

    model: str | None = None
    source: str | None = None
    revision: str | None = None
    runtime: str | None = None
    precision: str | None = None
    dtype: str | None = None
    device: str | None = None
    weights: str | None = None  # "pretrained" or "random"; older records: absent = pretrained
    suites: list | None = None
    limit: int | None = None
    repeats: int | None = None
    prompt_tokens: int | None = None
    new_tokens: int | None = None
    batch_size: int | None = None
    seed: int | None = None
    threads: int | None = None
    code_protocol: str | None = None
    fidelity: bool | None = None
    fidelity_tokens: int | None = None
    endpoint: str | None = None
    fault: str | None = None  # an injected fault (tests, the gate): says nothing of the model
    kind: str | None = None
    shape: dict | None = None
    mode: str | None = None
    always = (  # the keys every record since schema 1 has; newer ones appear when set
        "model",
        "source",
        "revision",
        "runtime",
        "precision",
        "dtype",
        "device",
        "weights",
        "suites",
        "limit",
        "repeats",
        "prompt_tokens",
        "new_tokens",
        "batch_size",
        "seed",
    )
    extra: dict = field(default_factory=dict)


@dataclass
class Hardware(Section):
    """The machine (models/fingerprint.py): `fingerprint` says which one, `speed_fingerprint` what
    decides speed (None: unknown CPU features, never matched), `memory_class` what quality and
    memory are borrowed by."""

    fingerprint: str | None = None
    speed_fingerprint: str | None = None
    memory_class: str | None = None
    cpu: str | None = None
    cores: int | None = None
    ram_mb: float | None = None
    gpus: list | None = None
    cpu_vendor: str | None = None
    cpu_model_id: str | None = None
    cpu_features: list | None = None
    device: str | None = None
    memory_mb: float | None = None
    bandwidth_gb_s: float | None = None
    bandwidth_source: str | None = None
    name: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class Software(Section):
    mindbench: str | None = None
    commit: str | None = None
    python: str | None = None
    torch: str | None = None
    extra: dict = field(default_factory=dict)


@dataclass
class Load(Section):
    load_s: float | None = None
    cold: bool | None = None
    convert_s: float | None = None
    fallback_from: str | None = None
    always = ("load_s", "cold", "convert_s", "fallback_from")
    extra: dict = field(default_factory=dict)


@dataclass
class Memory(Section):
    weights_mb: float | None = None
    peak_rss_mb: float | None = None
    nvml_global_mb: float | None = None
    nvml_process_mb: float | None = None
    torch_max_allocated_mb: float | None = None
    torch_max_reserved_mb: float | None = None
    always = MemoryTracker.FIELDS  # what the tracker measures: every field, None where it could not
    extra: dict = field(default_factory=dict)

    def peak(self, device: str | None) -> tuple[float | None, str | None]:
        """(MiB, tracker) -- the one "how much memory did this need" figure, for every table, the
        recommender, compare and the estimator check: the memory a user must have free.

        On CUDA the NVML per-process figure is what the card really gave this process (it includes
        the CUDA context that torch's counters miss); torch reserved is next best. On CPU it is the
        worker's peak resident set size."""
        order = ("nvml_process_mb", "torch_max_reserved_mb", "nvml_global_mb", "peak_rss_mb")
        if not is_cuda(device or ""):
            order = ("peak_rss_mb",) + order[:3]
        for k in order:
            v = num(getattr(self, k))
            if v is not None:
                return v, k
        return None, None


@dataclass
class Speed(Section):
    """The speed track: figures over the timed repeats, the verdict on them (ok | noisy |
    contended; None in older records) and what the verdict rests on."""

    prefill_tok_s: Figure | None = None
    decode_tok_s: Figure | None = None
    ttft_ms: Figure | None = None
    ttft_pct_ms: dict | None = None
    itl_ms: dict | None = None
    llama_bench: dict | None = None
    energy_j_per_token: float | None = None
    verdict: str | None = None
    ci95_rel: float | None = None
    ci_target: float | None = None
    repeats: int | None = None
    timed_s: float | None = None
    contention: dict | None = None
    samples: dict | None = None  # every timed repeat, per figure (compare --ab pairs them)
    runtime_settings: dict | None = None
    always = ("prefill_tok_s", "decode_tok_s", "ttft_ms")
    extra: dict = field(default_factory=dict)

    nested: ClassVar[dict[str, type]] = {"prefill_tok_s": Figure, "decode_tok_s": Figure, "ttft_ms": Figure}

    def figure(self, name: str) -> Figure:
        """A figure by name, an empty one when not measured (so readers never test for None)."""
        return getattr(self, name, None) or Figure()


@dataclass
class Roofline(Section):
    bandwidth_gb_s: float | None = None
    bytes_per_token: int | None = None
    efficiency: float | None = None
    bandwidth_method: str | None = None
    always = ("bandwidth_gb_s", "bytes_per_token", "efficiency")
    extra: dict = field(default_factory=dict)


@dataclass
class Quality(Section):
    """One suite's score. `value` is the metric's mean (a binary metric: a fraction), `stderr` on
    that scale; `score` = scale x value (points for a binary metric, scale 100). `items` maps each
    task id to its value (schema 2), so two cells pair by task."""

    score: float | None = None
    metric: str | None = None
    value: float | None = None
    stderr: float | None = None
    n: int | None = None
    items: dict | None = None
    subsets: dict | None = None
    empty_outputs: int | None = None
    protocol: str | None = None
    scale: float | None = None
    higher_is_better: bool | None = None
    ci95: list | None = None
    gen_tokens: int | None = None
    gen_s: float | None = None
    sandbox: dict | None = None
    always = ("score", "metric", "value", "stderr", "n")
    extra: dict = field(default_factory=dict)

    @property
    def unit_scale(self) -> float:
        """Score units per unit of an item's value: 100 for fractions correct (older records)."""
        return num(self.scale) or 100.0

    @property
    def points(self) -> float | None:
        s = num(self.score)
        v = num(self.value)
        return s if s is not None else (None if v is None else self.unit_scale * v)

    @property
    def stderr_points(self) -> float | None:
        """The standard error in the score's unit (the suites report it on the value's scale, as
        lm-evaluation-harness does)."""
        se = num(self.stderr)
        return None if se is None else self.unit_scale * se

    @property
    def better_higher(self) -> bool:
        """Which way the score is better; records before metrics had a direction were all
        higher-is-better (pass@1, accuracy)."""
        return self.higher_is_better is not False


@dataclass
class Fidelity(Section):
    """Next-token distributions against the reference precision's (suites/fidelity.py), or
    {"error": ...} when that failed."""

    reference: dict | None = None
    is_reference: bool | None = None
    text_sha: str | None = None
    tokens: int | None = None
    documents: int | None = None
    kld: Interval | None = None
    top1: Interval | None = None
    delta_p: dict | None = None
    ppl_ratio: Interval | None = None
    # a served cell (suites/fidelity.measure_topk): KL on the served top-k support, its own
    # metric (reads low by a cell-dependent factor), never in `kld`; `topk` says k, form, convention
    kld_topk: Interval | None = None
    topk: dict | None = None
    checked_tokens: str | None = None
    seconds: float | None = None
    error: str | None = None
    extra: dict = field(default_factory=dict)

    nested: ClassVar[dict[str, type]] = {"kld": Interval, "top1": Interval, "ppl_ratio": Interval, "kld_topk": Interval}

    def topk_label(self) -> str | None:
        """The label of a top-k figure ("top-20"); None for the full KL."""
        return f"top-{(self.topk or {}).get('k', '?')}" if self.kld_topk is not None else None


@dataclass
class Record(Section):
    """One cell's record (or, `kind == "serving"`, one serve-bench run). Every section is there
    (empty, its fields None, where an older record had none), so readers never test a section
    for None; only `fidelity` and the later optional parts are None when not measured."""

    schema: int = SCHEMA
    kind: str | None = None  # None: a benchmark cell; "serving": serve-bench
    cell: str | None = None
    run_id: str | None = None
    timestamp: str | None = None
    status: str | None = None
    error: str | None = None
    config: Config = field(default_factory=Config)
    hardware: Hardware = field(default_factory=Hardware)
    software: Software = field(default_factory=Software)
    load: Load = field(default_factory=Load)
    memory: Memory = field(default_factory=Memory)
    speed: Speed = field(default_factory=Speed)
    roofline: Roofline = field(default_factory=Roofline)
    quality: dict = field(default_factory=dict)  # suite (as written: "code:easy") -> Quality
    fidelity: Fidelity | None = None
    duration_s: float | None = None
    timings_s: dict | None = None  # seconds per stage (load, speed, fidelity, generation, ...)
    estimated: list | None = None  # "section.field" names that were estimated, not measured
    traceback: str | None = None  # status "error" (a bug): the last frames, tokens redacted
    server: dict | None = None  # a served model: the server's settings and memory
    serving: dict | None = None  # serve-bench: per-level latency and throughput
    always = (  # every record since schema 1; the sections added later appear when measured
        "schema",
        "cell",
        "run_id",
        "timestamp",
        "status",
        "error",
        "config",
        "hardware",
        "software",
        "load",
        "memory",
        "speed",
        "roofline",
        "quality",
    )
    extra: dict = field(default_factory=dict)

    nested: ClassVar[dict[str, type]] = {
        "config": Config,
        "hardware": Hardware,
        "software": Software,
        "load": Load,
        "memory": Memory,
        "speed": Speed,
        "roofline": Roofline,
        "fidelity": Fidelity,
    }
    nested_maps: ClassVar[dict[str, type]] = {"quality": Quality}

    @classmethod
    def from_json(cls, d: dict) -> Record:
        rec = super().from_json(d)
        # Older records lack whole sections: an empty section (every field None) reads the same
        # as "not measured" and spares every reader a None test.
        for name, typ in cls.nested.items():
            if getattr(rec, name) is None and name != "fidelity":
                setattr(rec, name, typ())
        rec.quality = {k: v for k, v in (rec.quality or {}).items() if isinstance(v, Quality)}
        if "schema" not in d:
            rec.schema = 1
        return rec

    # --- figures read the same way everywhere ------------------------------------------------

    @property
    def key(self) -> str:
        """Identity of a cell: its config and the machine it ran on (so reruns replace each other)."""
        return self.cell or cell_key(self.config, self.hardware.fingerprint)

    @property
    def weights(self) -> str:
        return self.config.weights or "pretrained"

    @property
    def is_serving(self) -> bool:
        return self.kind == "serving"

    @property
    def peak(self) -> tuple[float | None, str | None]:
        return self.memory.peak(self.config.device)

    @property
    def peak_mb(self) -> float | None:
        return self.peak[0]

    @property
    def speed_config(self) -> tuple:
        """Speed figures are comparable only at the same prompt length, decode length and threads."""
        c = self.config
        return (c.prompt_tokens, c.new_tokens, c.threads)

    @property
    def bandwidth_gb_s(self) -> float | None:
        return num(self.roofline.bandwidth_gb_s)

    def marks(self) -> set[str]:
        """Figures that were estimated, not measured ("speed.decode_tok_s", ...)."""
        out = set(self.estimated or ())
        for name in ("speed", "memory", "roofline", "load"):
            section = getattr(self, name)
            for f in fields(section):
                v = getattr(section, f.name)
                if isinstance(v, Figure) and v.estimated or isinstance(v, dict) and v.get("estimated"):
                    out.add(f"{name}.{f.name}")
            for k, v in section.extra.items():
                if isinstance(v, dict) and v.get("estimated"):
                    out.add(f"{name}.{k}")
        return out

    @property
    def speed_usable(self) -> bool:
        """May its speed be evidence? Not when its own measurement said noisy or contended."""
        return usable(self.speed.verdict)


def cell_key(config: Config | dict, fingerprint: str | None) -> str:
    """The identity of a cell: model|runtime|precision|device|weights|suites|limit|fingerprint.

    Two records with the same key measured the same thing on the same machine; --resume and the
    report use it to tell a repeat from a different experiment."""
    c = config if isinstance(config, Config) else Config.from_json(config)
    suites = ",".join(c.suites or [])
    parts = [
        c.model,
        c.runtime,
        c.precision,
        c.device,
        c.weights or "pretrained",
        suites,
        "all" if c.limit is None else c.limit,
        fingerprint,
    ]
    # How a chat model was asked for code (suites.CODE_PROTOCOLS) makes a different experiment;
    # keys of records from before the switch (no code_protocol) stay as they were.
    if c.code_protocol and any(s.split(":")[0] == "code" for s in c.suites or []):
        parts.insert(6, f"protocol={c.code_protocol}")
    # A served model (runtimes/openai) is also where it is served: two endpoints are two cells.
    if c.endpoint:
        parts.insert(-1, f"endpoint={c.endpoint}")
    return "|".join("" if p is None else str(p) for p in parts)
