"""Speed and memory of a model on hardware that is not here: per runtime, per weight format.

    shape_of("qwen2.5-coder-7b-instruct") -> Shape          architecture, from data/catalog_2026.json
                                                             (else the model's own models/archs config)
    predict(shape, "Q4_K_M", lookup("RTX 4090"), runtime="llamacpp", context=8192) -> Prediction

Pure arithmetic, no torch. How each figure is reached:
  weights       parameters counted from the shape (attention, MLP or experts, embeddings, output)
                at the format's real bits per weight: GGUF types as llama.cpp stores them (Q4_0 4.5,
                Q4_K_M ~4.85 on average, Q8_0 8.5; the output matrix at Q6_K or wider), AWQ/GPTQ
                int4 with group-128 scales (4.25), FP8 (8), bitsandbytes nf4 (4.5) / int8 (8 + a
                scale per row); embeddings and norms as each runtime keeps them.
  decode        one token reads every weight it uses once, plus the KV cache so far: attention, the
                dense MLP or only the *active* experts of a mixture-of-experts layer, and the output
                matrix (V x H, tied or not; one embedding row). time = bytes / (bandwidth x e_bw)
                + layers x t_layer: the second term is the per-layer launch/sync cost that dominates
                small models on fast GPUs. Layer split over n devices (llama.cpp) reads the same
                bytes one device after another; tensor parallel (vLLM) divides them.
  prefill       2 x active parameters FLOPs per token at the device's fp16 tensor throughput x e_pp.
  KV cache      2 x layers x KV heads x head_dim x 2 bytes (f16) per token; sliding-window layers
                hold at most their window.
  e_bw and t_layer are fitted per (llama.cpp backend, device class, weight family, one or several
  devices), e_pp without the class, each falling back to coarser groups, on part of
  the published llama.cpp table (data/llama_bench_published.csv) by benchmarks/fit_estimator.py,
  which reports the error on the held-out devices; data/efficiency_fit.json holds the result.
  Runtimes without published measurements here (vLLM, transformers on a GPU) use assumed factors,
  labelled as assumed.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mindbench.errors import InputError
from mindbench.models.devices import Device

DATA = Path(__file__).parent / "data"
MIB = 2**20

# --- weight formats ----------------------------------------------------------------------------------

# GGUF: bits per weight of the transformer body as llama.cpp writes each file type (the _M/_S
# mixes averaged over a llama-style model), and the type of the output matrix it keeps.
GGUF_BPW = {
    "Q2_K": 2.96,
    "Q3_K_S": 3.5,
    "Q3_K_M": 3.91,
    "Q3_K_L": 4.27,
    "Q4_0": 4.5,
    "Q4_1": 5.0,
    "Q4_K_S": 4.58,
    "Q4_K_M": 4.85,
    "IQ4_XS": 4.25,
    "IQ4_NL": 4.5,
    "Q5_0": 5.5,
    "Q5_1": 6.0,
    "Q5_K_S": 5.54,
    "Q5_K_M": 5.69,
    "Q6_K": 6.5625,
    "Q8_0": 8.5,
    "MXFP4": 4.25,
    "F16": 16.0,
    "BF16": 16.0,
    "F32": 32.0,
}
Q6_K_BPW = 6.5625


@dataclass(frozen=True)
class Format:
    name: str
    family: str  # what the fitted factors are grouped by: f16 | q8 | q4k | q4 | q-other | awq ...
    body_bpw: float  # bits per weight of the transformer body's matrices
    out_bpw: float  # output matrix (lm_head), read at every token
    embed_bpw: float  # embedding table (held; one row read per token)
    runtime: str  # mindbench runtime name
    kinds: tuple[str, ...]  # device kinds it runs on


def gguf(q: str) -> Format:
    q = q.upper()
    if q not in GGUF_BPW:
        raise InputError(f"unknown GGUF type {q!r}: choose one of {', '.join(GGUF_BPW)}")
    b = GGUF_BPW[q]
    fam = (
        "f16"
        if b >= 16
        else "q8"
        if q == "Q8_0"
        else "q4k"
        if q.startswith(("Q4_K", "Q3_K", "Q5_K", "Q6_K", "Q2_K"))
        else "mxfp4"
        if q == "MXFP4"
        else "q4"
    )
    out = b if b >= Q6_K_BPW else Q6_K_BPW
    if q == "MXFP4":  # gpt-oss GGUFs: experts MXFP4, the rest 8-bit
        out = 8.5
    return Format(q, fam, b, out, b if b >= 4 else 4.5, "llamacpp", ("cuda", "rocm", "metal", "cpu"))


# Non-GGUF formats: the endpoint runtime (vLLM behind an OpenAI-compatible server) and transformers.
OTHER_FORMATS = {
    "awq": Format("awq", "int4-gpu", 4.25, 16, 16, "openai", ("cuda", "rocm")),
    "gptq": Format("gptq", "int4-gpu", 4.25, 16, 16, "openai", ("cuda", "rocm")),
    "fp8": Format("fp8", "fp8", 8.0, 16, 16, "openai", ("cuda", "rocm")),
    "vllm-bf16": Format("vllm-bf16", "f16-vllm", 16.0, 16, 16, "openai", ("cuda", "rocm")),
    "bf16": Format("bf16", "f16-hf", 16.0, 16, 16, "transformers", ("cuda", "rocm", "cpu")),
    "fp16": Format("fp16", "f16-hf", 16.0, 16, 16, "transformers", ("cuda", "rocm", "metal")),
    "fp32": Format("fp32", "f32-hf", 32.0, 32, 32, "transformers", ("cpu",)),
    "int8": Format("int8", "bnb-int8", 8.0 + 32 / 4096, 16, 16, "transformers", ("cuda",)),
    "int4": Format("int4", "bnb-nf4", 4.5, 16, 16, "transformers", ("cuda",)),
}


def format_of(name: str, runtime: str | None = None) -> Format:
    """A weight format by name: GGUF types are upper case (F16, Q4_K_M), the other runtimes' lower
    case (bf16, awq); `runtime` settles a name both use."""
    key = str(name)
    if key.upper() in GGUF_BPW and (runtime == "llamacpp" or (runtime is None and key == key.upper())):
        return gguf(key)
    if key.lower() in OTHER_FORMATS and runtime != "llamacpp":
        return OTHER_FORMATS[key.lower()]
    if key.upper() in GGUF_BPW:
        return gguf(key)
    raise InputError(
        f"unknown precision {name!r}: a GGUF type ({', '.join(GGUF_BPW)}) or one of {', '.join(OTHER_FORMATS)}"
    )


# --- shapes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool
    experts: int = 0
    experts_active: int = 0
    expert_intermediate: int = 0
    shared_experts: int = 0
    dense_layers: int = 0
    dense_intermediate: int = 0
    sliding_window: int | None = None
    global_layers: int | None = None
    kv_elems_per_layer: int | None = None  # MLA: the cached latent per layer and token
    max_context: int | None = None
    mlp_matrices: int = 3  # gated MLPs (gate, up, down); 2 for the GELU MLPs of phi-2, CodeGen, StarCoder

    @property
    def attn_params(self) -> int:
        H, q, kv = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim
        if self.kv_elems_per_layer:  # multi-head latent attention (DeepSeek-V2): q, kv down/up, o
            return H * q + H * self.kv_elems_per_layer + 512 * self.heads * 256 + self.heads * 128 * H
        return H * q + 2 * H * kv + q * H

    @property
    def moe(self) -> bool:
        return self.experts > 0

    def _mlp(self, active: bool) -> int:
        H = self.hidden
        if not self.moe:
            return self.layers * self.mlp_matrices * H * self.intermediate
        per_expert = 3 * H * self.expert_intermediate
        n = self.experts_active if active else self.experts
        moe_layers = self.layers - self.dense_layers
        return (
            moe_layers * ((n + self.shared_experts) * per_expert + H * self.experts)
            + self.dense_layers * 3 * H * self.dense_intermediate
        )

    @property
    def body_params(self) -> int:
        return self.layers * self.attn_params + self._mlp(active=False)

    @property
    def active_body_params(self) -> int:
        return self.layers * self.attn_params + self._mlp(active=True)

    @property
    def embed_params(self) -> int:
        return self.vocab * self.hidden

    @property
    def total_params(self) -> int:
        return self.body_params + self.embed_params * (1 if self.tied else 2)

    @property
    def active_params(self) -> int:
        """Parameters a token goes through (MoE: active experts only), output matrix included."""
        return self.active_body_params + self.embed_params

    def kv_elems(self, context: int) -> int:
        """K+V elements cached for `context` tokens, over all layers."""
        per_layer = self.kv_elems_per_layer or 2 * self.kv_heads * self.head_dim
        if self.sliding_window and self.global_layers is not None and context > self.sliding_window:
            local = self.layers - self.global_layers
            return per_layer * (self.global_layers * context + local * self.sliding_window)
        return per_layer * self.layers * context


@functools.lru_cache(maxsize=1)
def _catalog_data() -> dict:
    return json.loads((DATA / "catalog_2026.json").read_text())


def shape(name: str) -> Shape:
    shapes = _catalog_data()["shapes"]
    if name not in shapes:
        raise InputError(f"no architecture shape {name!r} (mindbench/models/data/catalog_2026.json)")
    return Shape(name=name, **shapes[name])


def shape_of(model_id: str) -> Shape | None:
    """The shape of a catalog model id (the 2026 entries and the older catalog's), else None.
    A run-catalog model the 2026 data does not name (the packaged SmolLM2 and Gemma 3 270M, the
    document's older models) takes its shape from its own architecture config, the Hub
    config.json that mindbench/models/archs keeps and models/estimate.count_params reads."""
    data = _catalog_data()
    for m in data["models"]:
        if m["id"] == model_id:
            return shape(m["shape"])
    name = data["shape_of"].get(model_id)
    if name is None and model_id in data["shapes"]:
        name = model_id
    return shape(name) if name else _arch_shape(model_id)


def _arch_shape(model_id: str) -> Shape | None:
    from mindbench.models.catalog import CATALOG
    from mindbench.models.estimate import arch_config, count_params, max_context

    spec = CATALOG.get(model_id)
    if spec is None or not spec.arch:
        return None
    p = count_params(arch_config(spec.arch))
    n_window = p.kv_windowed // (2 * p.kv_heads * p.head_dim) if p.kv_window else 0
    return Shape(
        name=spec.arch,
        layers=p.layers,
        hidden=p.hidden,
        heads=p.heads,
        kv_heads=p.kv_heads,
        head_dim=p.head_dim,
        intermediate=p.intermediate,
        vocab=p.vocab,
        tied=p.tied,
        sliding_window=p.kv_window,
        global_layers=p.layers - n_window if p.kv_window else None,
        max_context=max_context(spec.arch),
        mlp_matrices=p.mlp_matrices,
    )


# --- the fitted factors ----------------------------------------------------------------------------

FIT_FILE = DATA / "efficiency_fit.json"
# Factors for runtimes the published table has no rows for: labelled "assumed" wherever shown.
# vLLM's int4/fp8 GEMV kernels reach a similar share of bandwidth as llama.cpp's; bitsandbytes
# de-quantizes per step and is several times slower (the project's own measurements: ~0.15-0.35).
ASSUMED = {
    ("openai", "int4-gpu"): {"e_bw": 0.60, "t_layer_us": 8.0, "e_pp": 0.40},
    ("openai", "fp8"): {"e_bw": 0.70, "t_layer_us": 8.0, "e_pp": 0.45},
    ("openai", "f16-vllm"): {"e_bw": 0.75, "t_layer_us": 8.0, "e_pp": 0.50},
    ("transformers", "f16-hf"): {"e_bw": 0.60, "t_layer_us": 60.0, "e_pp": 0.40},
    ("transformers", "f32-hf"): {"e_bw": 0.70, "t_layer_us": 60.0, "e_pp": 0.30},
    ("transformers", "bnb-int8"): {"e_bw": 0.15, "t_layer_us": 150.0, "e_pp": 0.10},
    ("transformers", "bnb-nf4"): {"e_bw": 0.35, "t_layer_us": 120.0, "e_pp": 0.20},
}


@functools.lru_cache(maxsize=1)
def fitted() -> dict:
    try:
        return json.loads(FIT_FILE.read_text())
    except (OSError, ValueError):
        return {"groups": {}}


def factors(
    runtime: str, fmt: Format, backend: str, multi: bool, fit: dict | None = None, cls: str = ""
) -> tuple[dict, str]:
    """(factors, where they come from): the most specific fitted group with data, else assumed.
    `backend` is llama.cpp's: cuda, rocm, metal, vulkan or cpu (the device's kind by default)."""
    groups = (fit or fitted()).get("groups", {})
    if runtime == "llamacpp":
        for key in group_keys(backend, fmt.family, multi, cls):
            if key in groups:
                g = groups[key]
                return g, f"fitted on {g['n']} published llama.cpp rows ({key})"
    a = ASSUMED.get((runtime, fmt.family)) or ASSUMED[("transformers", "f16-hf")]
    return a, f"assumed for {runtime} {fmt.family} (no published measurements in the table)"


def group_keys(backend: str, family: str, multi: bool, cls: str = "") -> tuple[str, ...]:
    """Most specific first: the fit's groups, and the order a prediction falls back through them.
    The device class comes first: datacenter cards in llama.cpp pay more per layer (server hosts,
    lower clocks) than GeForce cards of the same bandwidth."""
    n = "multi" if multi else "single"
    return (
        f"{backend}|{cls}|{family}|{n}",
        f"{backend}|{cls}|{family}",
        f"{backend}|{cls}",
        f"{backend}|{family}|{n}",
        f"{backend}|{family}",
        backend,
        "all",
    )


# --- the prediction --------------------------------------------------------------------------------


@dataclass
class Prediction:
    model: str
    precision: str
    runtime: str
    device: str
    weights_mb: float
    kv_cache_mb: float
    overhead_mb: float
    decode_tok_s: float
    prefill_tok_s: float
    fits: bool
    inputs: dict = field(default_factory=dict)

    @property
    def total_mb(self) -> float:
        return self.weights_mb + self.kv_cache_mb + self.overhead_mb

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("weights_mb", "kv_cache_mb", "overhead_mb"):
            d[k] = round(d[k], 1)
        d.update(
            total_mb=round(self.total_mb, 1),
            decode_tok_s=round(self.decode_tok_s, 2),
            prefill_tok_s=round(self.prefill_tok_s, 1),
            source="estimated",
        )
        return d


OVERHEAD_MB = {"cuda": 500, "rocm": 500, "metal": 250, "cpu": 150}
UBATCH = 512


def weight_bytes(s: Shape, fmt: Format) -> int:
    out = 0 if s.tied else s.embed_params * fmt.out_bpw / 8
    return int(s.body_params * fmt.body_bpw / 8 + s.embed_params * fmt.embed_bpw / 8 + out)


def decode_bytes(s: Shape, fmt: Format, context: int) -> float:
    """Bytes read per generated token at `context` tokens already cached."""
    return s.active_body_params * fmt.body_bpw / 8 + s.embed_params * fmt.out_bpw / 8 + s.kv_elems(context) * 2


def predict(
    s: Shape,
    precision: str,
    dev: Device,
    *,
    runtime: str | None = None,
    context: int = 4096,
    decode_at: int | None = None,
    model: str | None = None,
    fit: dict | None = None,
    backend: str | None = None,
) -> Prediction:
    """Memory at `context` tokens and speed (pp512; decode at `decode_at` tokens cached, default
    the middle of a 512+128 llama-bench run) of `s` at `precision` on `dev` (dev.count devices)."""
    fmt = format_of(precision, runtime)
    runtime = runtime or fmt.runtime
    backend = backend or dev.kind
    if backend not in fmt.kinds and backend != "vulkan":
        raise InputError(f"{fmt.name} ({runtime}) does not run on {backend} devices ({dev.name})")
    multi = dev.count > 1
    f, why = factors(runtime, fmt, backend, multi, fit, dev.cls)
    # prefill's factors without the device class: its per-class groups fit worse on held-out devices
    # (datacenter prefill median |error| 53 % vs 29 %) while decode's fit better (15 % vs 34 %)
    fpp, _ = factors(runtime, fmt, backend, multi, fit)
    at = 0 if decode_at is None else decode_at
    nbytes = decode_bytes(s, fmt, at)
    tensor_parallel = runtime == "openai" and multi
    bw = dev.bandwidth_gb_s * 1e9 * (dev.count * 0.85 if tensor_parallel else 1)  # TP: ~85 % scaling
    t_tok = nbytes / (bw * f["e_bw"]) + s.layers * f["t_layer_us"] * 1e-6
    flops = 2 * (s.active_body_params + s.embed_params)
    # achieved TFLOPS = e_pp x peak^alpha (alpha < 1: llama.cpp reaches less of a big GPU's peak)
    # (a layer split runs one batch through the devices in turn: no faster than one of them)
    peak_tflops = dev.fp16_tflops * (dev.count * 0.85 if tensor_parallel else 1)
    pp = fpp["e_pp"] * peak_tflops ** fpp.get("pp_alpha", 1.0) * 1e12 / flops
    weights = weight_bytes(s, fmt)
    kv = s.kv_elems(context) * 2
    overhead = OVERHEAD_MB[dev.kind] * dev.count + UBATCH * (s.hidden * 4 + s.vocab * 4) / MIB
    total = weights / MIB + kv / MIB + overhead
    return Prediction(
        model=model or s.name,
        precision=fmt.name,
        runtime=runtime,
        device=dev.label,
        weights_mb=weights / MIB,
        kv_cache_mb=kv / MIB,
        overhead_mb=overhead,
        decode_tok_s=1 / t_tok,
        prefill_tok_s=pp,
        fits=total <= dev.usable_mb,
        inputs={
            "params": s.total_params,
            "active_params": s.active_params,
            "moe": s.moe,
            "body_bits_per_weight": fmt.body_bpw,
            "output_bits_per_weight": fmt.out_bpw,
            "bytes_per_token": int(nbytes),
            "context": context,
            "decode_at_tokens": at,
            "bandwidth_gb_s": dev.bandwidth_gb_s,
            "devices": dev.count,
            "split": "tensor parallel" if tensor_parallel else ("layers" if multi else "none"),
            "fp16_tflops": dev.fp16_tflops,
            "usable_mb": round(dev.usable_mb),
            "e_bw": f["e_bw"],
            "t_layer_us": f["t_layer_us"],
            "e_pp": fpp["e_pp"],
            "backend": backend,
            "factors": why,
            "device_source": dev.source,
        },
    )


def max_context(s: Shape, precision: str, dev: Device, runtime: str | None = None) -> int:
    """Longest context whose memory fits the device's usable memory (0 if the weights don't fit)."""
    cap = s.max_context or 131072
    if not predict(s, precision, dev, runtime=runtime, context=1).fits:
        return 0
    lo, hi = 1, cap
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if predict(s, precision, dev, runtime=runtime, context=mid).fits else (lo, mid - 1)
    return lo


def rel_error(est: float, meas: float) -> float:
    return (est - meas) / meas


def quantile(v: list[float], q: float) -> float:
    """Linear-interpolation quantile (numpy's default) of a non-empty list."""
    v = sorted(v)
    pos = (len(v) - 1) * q
    lo, hi = math.floor(pos), math.ceil(pos)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)
