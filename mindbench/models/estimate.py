"""Memory and speed of a (model, precision, device) never measured, from its architecture alone.

Pure arithmetic over the shipped architecture configs (mindbench/models/archs/*.json): no torch, so the
recommender can estimate every catalog model in milliseconds. Every estimate says it is one
(`"source": "estimated"`) and carries the inputs it was computed from.

How memory is estimated (MiB = 2**20 bytes, like the results store):
  weights      parameters counted per kind from the config, at what the loader really stores:
               fp32 4 B, bf16/fp16 2 B. bitsandbytes int8/int4 replace only the nn.Linear layers
               inside the transformer blocks (int8: 1 B + an fp32 scale per output row; nf4:
               0.5 B + an fp32 absmax per 64-weight block, as mindbench.runtimes.transformers.loading configures it,
               without double quantization); embeddings, lm_head, norms and biases stay at the
               checkpoint's dtype (transformers' dtype="auto"): fp32 for the packaged GGUF models
               (converted to fp32 safetensors), the Hub config's torch_dtype otherwise. That is
               why int4 of a small model saves far less than 8x: SmolLM2's 28M-parameter
               embedding is a fifth of the model and stays fp32.
  kv cache     2 (K and V) x layers x kv_heads x head_dim x bytes x context (sliding-window
               layers hold at most the window).
  activations  one prefill pass at batch 1: context x (2 hidden + 3 intermediate + q/k/v) x bytes,
               plus the last token's fp32 logits.
  overhead     the runtime itself: CUDA context + cuBLAS workspace on a GPU, the Python + torch +
               transformers resident set on a CPU (measured here: ~340 MiB after imports).
How speed is estimated: decoding one token reads every weight once (except the input embedding,
of which it reads one row) plus the KV cache, so decode tok/s = bandwidth x efficiency / bytes
per token. Efficiency is the fraction of the memory bandwidth a runtime really reaches; the
defaults below are assumptions, replaced by the median measured in the results store when it
holds runs of the same device kind and precision (records' roofline.efficiency).

At the end: the user's document's GPU-memory table, checked row by row against these estimates
(`mindbench recommend --explain-table`).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

from mindbench.errors import MindbenchError
from mindbench.measure.device import device_kind
from mindbench.models.catalog import ModelSpec

MIB = 2**20
ARCHS_DIR = Path(__file__).parent / "archs"

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
PRECISION_DTYPE = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
NF4_BLOCK = 64  # bitsandbytes' default 4-bit block size

# Runtime overhead in MiB (see module docstring).
OVERHEAD_MB = {"cuda": 500, "cpu": 400}

# Fraction of memory bandwidth reached at decode, batch 1. Assumed unless the store has measured
# runs. GPU: fp16 GEMV runs near the roofline; bitsandbytes LLM.int8 de-quantizes and handles
# outliers at every step and is known to be several times slower; nf4's fused GEMV does better.
# CPU: measured on this project's 2-core EPYC dev machine: fp32 decode runs near the copy
# bandwidth, bf16/fp16 matmuls have no fast path there (~5x slower), bitsandbytes' CPU backend is
# slower still. Measure; don't assume quantization speeds things up.
ASSUMED_EFFICIENCY = {
    ("cuda", "fp32"): 0.7,
    ("cuda", "fp16"): 0.7,
    ("cuda", "bf16"): 0.7,
    ("cuda", "int8"): 0.15,
    ("cuda", "int4"): 0.35,
    ("cpu", "fp32"): 0.8,
    ("cpu", "fp16"): 0.2,
    ("cpu", "bf16"): 0.2,
    ("cpu", "int8"): 0.05,
    ("cpu", "int4"): 0.06,
}


@functools.cache
def arch_config(arch: str) -> dict:
    path = ARCHS_DIR / f"{arch}.json"
    if not path.exists():
        raise MindbenchError(f"no architecture config {path.name} in mindbench/models/archs: reinstall mindbench")
    return json.loads(path.read_text())


@dataclass(frozen=True)
class Params:
    """Parameter counts by what happens to them under bitsandbytes and at decode."""

    linear: int  # weights of nn.Linear inside the blocks: quantized by int8/int4, read per token
    linear_rows: int  # their output features summed (int8 keeps one fp32 scale per row)
    small: int  # norms and biases: kept in the checkpoint dtype, read per token
    embed: int  # input embeddings (token + position): kept, one row read per token
    head: int  # lm_head weight + bias when not tied to the embedding: kept, read per token
    tied: bool
    layers: int
    kv_per_token: int  # K+V elements cached per token, over all layers (before window caps)
    kv_window: int | None  # sliding window of the windowed layers, if any
    kv_windowed: int  # K+V elements per token in windowed layers
    hidden: int
    intermediate: int
    qkv: int  # q+k+v output width of one layer
    vocab: int
    # the attention geometry and MLP kind, for the hardware estimator's Shape (models/perf.py)
    heads: int = 0
    kv_heads: int = 0
    head_dim: int = 0
    mlp_matrices: int = 3  # gated MLPs (gate, up, down); 2 for GELU MLPs (fc1, fc2)

    @property
    def total(self) -> int:
        return self.linear + self.small + self.embed + self.head


def count_params(cfg: dict) -> Params:
    """Exact parameter counts for the architectures in the catalog, from config.json alone.

    Each branch mirrors the module layout of the transformers implementation of that model_type
    (tests check the totals against the real model built on the meta device)."""
    t = cfg["model_type"]
    if t == "codegen":
        H, L, nh, V = cfg["n_embd"], cfg["n_layer"], cfg["n_head"], cfg["vocab_size"]
        I = cfg.get("n_inner") or 4 * H
        hd, kvh, n_mlp = H // nh, nh, 2
        lin_w = L * (3 * H * H + H * H + n_mlp * H * I)
        rows = L * (3 * H + H + I + H)
        small = L * (I + H + 2 * H) + 2 * H  # fc biases, ln_1 (w+b); ln_f
        embed, head_bias = V * H, V
        tied = cfg.get("tie_word_embeddings", False)
    elif t == "gpt_bigcode":
        H, L, nh, V = cfg["n_embd"], cfg["n_layer"], cfg["n_head"], cfg["vocab_size"]
        I = cfg.get("n_inner") or 4 * H
        hd, n_mlp = H // nh, 2
        kvh = 1 if cfg.get("multi_query", True) else nh
        attn_out = H + 2 * kvh * hd
        lin_w = L * (H * attn_out + H * H + n_mlp * H * I)
        rows = L * (attn_out + H + I + H)
        small = L * (attn_out + H + I + H + 4 * H) + 2 * H  # biases, ln_1, ln_2; ln_f
        embed, head_bias = V * H + cfg["n_positions"] * H, 0
        tied = cfg.get("tie_word_embeddings", True)
    else:  # llama-style decoders: llama, mistral, qwen2, qwen3, phi3, smollm3, gemma3_text, stablelm, phi
        H, L, V = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
        I, nh = cfg["intermediate_size"], cfg["num_attention_heads"]
        kvh = cfg.get("num_key_value_heads") or nh
        hd = cfg.get("head_dim") or H // nh
        q, kv = nh * hd, kvh * hd
        n_mlp = 2 if t == "phi" else 3  # phi: fc1/fc2; others gated (gate/up/down)
        lin_w = L * (H * q + 2 * H * kv + q * H + n_mlp * H * I)
        rows = L * (q + 2 * kv + H + (n_mlp - 1) * I + H)
        if t == "phi":
            small = L * (q + 2 * kv + H + I + H + 2 * H) + 2 * H  # all biases, one LN; final LN
        elif t == "stablelm":
            qkv_bias = (q + 2 * kv) if cfg.get("use_qkv_bias") else 0
            small = L * (qkv_bias + 4 * H) + 2 * H  # LayerNorms have bias
        elif t == "gemma3_text":
            small = L * (4 * H + 2 * hd) + H  # 4 norms + q/k norms
        elif t == "qwen2":
            small = L * (2 * H + q + 2 * kv) + H  # q/k/v biases (no o bias)
        elif t == "qwen3":
            small = L * (2 * H + 2 * hd) + H  # per-head q/k RMSNorm
        else:
            bias = (q + 2 * kv + H) if cfg.get("attention_bias") else 0
            bias += (2 * I + H) if cfg.get("mlp_bias") else 0
            small = L * (2 * H + bias) + H
        embed, head_bias = V * H, (V if t == "phi" else 0)
        tied = cfg.get("tie_word_embeddings", t == "gemma3_text")
    head = 0 if tied else V * H + head_bias
    window, windowed = None, 0
    kv_token = 2 * L * kvh * hd
    if t == "gemma3_text" and cfg.get("sliding_window"):
        types = cfg.get("layer_types") or []
        n_sliding = sum(1 for x in types if x == "sliding_attention")
        window, windowed = cfg["sliding_window"], 2 * n_sliding * kvh * hd
    elif cfg.get("sliding_window") and cfg.get("use_sliding_window", True):
        # (Qwen2 configs name a window but switch it off with use_sliding_window: false)
        window, windowed = cfg["sliding_window"], kv_token
    return Params(
        linear=lin_w,
        linear_rows=rows,
        small=small,
        embed=embed,
        head=head,
        tied=tied,
        layers=L,
        kv_per_token=kv_token,
        kv_window=window,
        kv_windowed=windowed,
        hidden=H,
        intermediate=I,
        qkv=(nh + 2 * kvh) * hd,
        vocab=V,
        heads=nh,
        kv_heads=kvh,
        head_dim=hd,
        mlp_matrices=n_mlp,
    )


def max_context(arch: str) -> int | None:
    """Longest context the architecture was trained for (position embeddings / RoPE range)."""
    cfg = arch_config(arch)
    return cfg.get("max_position_embeddings") or cfg.get("n_positions") or cfg.get("n_ctx")


def storage_dtype(spec: ModelSpec) -> str:
    """dtype of the tensors bitsandbytes leaves unquantized (the checkpoint's own dtype)."""
    if spec.source == "packaged":
        return "float32"  # mindbench.runtimes.transformers.loading converts GGUF to fp32 safetensors
    return arch_config(spec.arch).get("torch_dtype") or "float32"


@dataclass
class Estimate:
    model: str
    precision: str
    device: str
    weights_mb: float
    kv_cache_mb: float
    activations_mb: float
    overhead_mb: float
    bytes_per_token: int
    bandwidth_gb_s: float
    efficiency: float
    decode_tok_s: float
    inputs: dict

    @property
    def total_mb(self) -> float:
        return self.weights_mb + self.kv_cache_mb + self.activations_mb + self.overhead_mb

    def to_dict(self) -> dict:
        return {
            "source": "estimated",
            "model": self.model,
            "precision": self.precision,
            "device": self.device,
            "total_mb": round(self.total_mb, 1),
            "weights_mb": round(self.weights_mb, 1),
            "kv_cache_mb": round(self.kv_cache_mb, 1),
            "activations_mb": round(self.activations_mb, 1),
            "overhead_mb": self.overhead_mb,
            "bytes_per_token": self.bytes_per_token,
            "bandwidth_gb_s": self.bandwidth_gb_s,
            "efficiency": self.efficiency,
            "decode_tok_s": round(self.decode_tok_s, 2),
            "inputs": self.inputs,
        }


def weight_bytes(p: Params, precision: str, stored: str) -> tuple[int, int]:
    """(bytes held in memory, bytes read per decoded token) for the weights."""
    keep = DTYPE_BYTES[stored]
    if precision in PRECISION_DTYPE:
        b = DTYPE_BYTES[PRECISION_DTYPE[precision]]
        lin, keep = p.linear * b, b
    elif precision == "int8":
        lin = p.linear + 4 * p.linear_rows
    elif precision == "int4":
        lin = p.linear // 2 + 4 * -(-p.linear // NF4_BLOCK)
    else:
        raise MindbenchError(f"no memory estimate for precision {precision!r}: measure it with mindbench run")
    held = lin + (p.small + p.embed + p.head) * keep
    # Per token: every linear, norm/bias and the output projection (the embedding itself if tied).
    read = lin + (p.small + (p.embed if p.tied else p.head)) * keep
    return held, read


def act_dtype(precision: str, stored: str) -> str:
    """dtype of hidden states and KV cache: the embedding's dtype (quantized layers cast back)."""
    return PRECISION_DTYPE.get(precision, stored)


def estimate(
    spec: ModelSpec,
    precision: str,
    device: str,
    *,
    context: int = 2048,
    bandwidth_gb_s: float,
    efficiency: float | None = None,
    efficiency_source: str | None = None,
) -> Estimate:
    """Memory (MiB) and decode speed of `spec` at `precision` on `device` ("cuda" or "cpu")."""
    if not spec.arch:
        raise MindbenchError(
            f"{spec.id} has no architecture config to estimate from: measure it with `mindbench run --model {spec.id}`"
        )
    cfg = arch_config(spec.arch)
    p = count_params(cfg)
    stored = storage_dtype(spec)
    held, read = weight_bytes(p, precision, stored)
    ab = DTYPE_BYTES[act_dtype(precision, stored)]
    kv_elems = p.kv_per_token * context
    if p.kv_window and context > p.kv_window:
        kv_elems -= p.kv_windowed * (context - p.kv_window)
    kv = kv_elems * ab
    acts = context * (2 * p.hidden + 3 * p.intermediate + p.qkv) * ab + p.vocab * 4
    kind = device_kind(device)
    if efficiency is None:
        efficiency = ASSUMED_EFFICIENCY[(kind, precision)]
        efficiency_source = f"assumed for {kind} {precision}"
    per_token = read + kv
    tok_s = bandwidth_gb_s * 1e9 * efficiency / per_token
    inputs = {
        "params": p.total,
        "params_quantized": p.linear if precision in ("int8", "int4") else 0,
        "stored_dtype": stored if precision in ("int8", "int4") else PRECISION_DTYPE[precision],
        "context": context,
        "kv_bytes_per_elem": ab,
        "bandwidth_gb_s": bandwidth_gb_s,
        "efficiency_source": efficiency_source,
        "arch": spec.arch,
    }
    return Estimate(
        model=spec.id,
        precision=precision,
        device=kind,
        weights_mb=held / MIB,
        kv_cache_mb=kv / MIB,
        activations_mb=acts / MIB,
        overhead_mb=OVERHEAD_MB[kind],
        bytes_per_token=int(per_token),
        bandwidth_gb_s=bandwidth_gb_s,
        efficiency=efficiency,
        decode_tok_s=tok_s,
        inputs=inputs,
    )


def measured_efficiency(
    records: list, runtime: str | None = None, *, family_of=lambda name: name
) -> dict[tuple[str, str], float]:
    """Median measured roofline efficiency per (device kind, precision) from ok runs of `runtime`'s
    efficiency family (default: the default runtime, whose kernels this estimator models): the
    store's evidence replaces the assumed factors above. `family_of(runtime name)` is the runtime
    registry's efficiency_family, handed in by the caller (this arithmetic sits below the runtimes);
    by default each runtime name is its own family. `records` are the store's `Record`s, read by
    attribute (the store sits above this module, so it is not imported here)."""
    family = family_of(runtime)
    by: dict[tuple[str, str], list[float]] = {}
    for r in records:
        cfg, eff = r.config, r.roofline.efficiency
        # efficiency is the decode speed over the roofline: from a contended run it is as low
        if r.status != "ok" or not eff or family_of(cfg.runtime) != family or not r.speed_usable:
            continue
        by.setdefault((device_kind(cfg.device), cfg.precision), []).append(float(eff))
    return {k: _median(v) for k, v in by.items()}


def _median(v: list[float]) -> float:
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


MAX_EFFICIENCY = 0.9


def _family(precision: str) -> str:
    return "float" if precision in PRECISION_DTYPE else "bitsandbytes"


def efficiency_for(kind: str, precision: str, measured: dict[tuple[str, str], float]) -> tuple[float, str]:
    """The efficiency to estimate with, and where it comes from: measured for this precision;
    else the assumed one scaled by how the measured precisions compare with their assumptions
    (a busy or slow machine is slow at every precision); else assumed."""
    if (kind, precision) in measured:
        return measured[(kind, precision)], "median measured in the store"
    # Only within a family: bitsandbytes' int8/int4 kernels do extra work per weight, so how they
    # compare with their assumption says nothing about float matmuls (the store's int8/int4 runs
    # once scaled fp32 past the bandwidth itself). Never above MAX_EFFICIENCY of the bandwidth.
    fam = _family(precision)
    ratios = [
        e / ASSUMED_EFFICIENCY[k]
        for k, e in measured.items()
        if k[0] == kind and k in ASSUMED_EFFICIENCY and _family(k[1]) == fam
    ]
    if ratios:
        f = _median(ratios)
        return (
            min(MAX_EFFICIENCY, ASSUMED_EFFICIENCY[(kind, precision)] * f),
            f"assumed for {kind} {precision}, x{f:.2f} as measured runs of other precisions compare with "
            f"their assumptions",
        )
    return ASSUMED_EFFICIENCY[(kind, precision)], f"assumed for {kind} {precision}"
