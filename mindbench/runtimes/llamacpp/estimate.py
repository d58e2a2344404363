"""What llama.cpp needs to hold and read for a GGUF: memory and decode speed from the file's bits
per weight (models/perf.py's table, the one place those live), the KV cache at a context, and the
efficiency measured here for llama.cpp on a CPU (assumed until measured). The recommender's CPU
candidates for this runtime come from here too."""

from __future__ import annotations

from mindbench.measure.device import device_kind
from mindbench.models import catalog
from mindbench.models.estimate import MIB, OVERHEAD_MB, _median, arch_config, count_params
from mindbench.models.perf import GGUF_BPW
from mindbench.store.record import Record

LLAMACPP_BUFFERS_MB = 150  # compute buffers + the llama.cpp library, beyond Python's overhead
LLAMACPP_ASSUMED_EFFICIENCY = 0.5  # of the memory bandwidth at decode, 2-thread CPU, until measured


def gguf_estimate(
    spec,
    quant: str,
    *,
    context: int,
    bandwidth_gb_s: float,
    efficiency: float | None = None,
    file_bytes: int | None = None,
) -> dict:
    """Memory (MiB) and decode tok/s of `spec` as a GGUF of type `quant` on a CPU via llama.cpp."""
    p = count_params(arch_config(spec.arch))
    # GGUF files store the output matrix even for tied models when the converter writes it
    # (the packaged Qwen files do); the packaged files' real size is known, use it.
    weights = file_bytes if file_bytes else int(p.total * GGUF_BPW[quant] / 8)
    kv_elems = p.kv_per_token * context
    if p.kv_window and context > p.kv_window:
        kv_elems -= p.kv_windowed * (context - p.kv_window)
    kv = kv_elems * 2
    eff = efficiency or LLAMACPP_ASSUMED_EFFICIENCY
    per_token = weights - p.embed * GGUF_BPW.get(quant, 8.0) / 8 * (1 if not p.tied else 0) + kv
    tok_s = bandwidth_gb_s * 1e9 * eff / max(per_token, 1)
    total = weights / MIB + kv / MIB + OVERHEAD_MB["cpu"] + LLAMACPP_BUFFERS_MB
    return {
        "source": "estimated",
        "weights_mb": round(weights / MIB, 1),
        "kv_cache_mb": round(kv / MIB, 1),
        "total_mb": round(total, 1),
        "decode_tok_s": round(tok_s, 2),
        "efficiency": eff,
        "inputs": {
            "bits_per_weight": None if file_bytes else GGUF_BPW[quant],
            "file_bytes": file_bytes,
            "context": context,
            "kv_bytes_per_elem": 2,
        },
    }


# --- llama.cpp GGUF candidates on a CPU -----------------------------------------------------------------------


def gguf_candidates(specs, hw, records: list[Record], context: int, bw_gb_s: float, make, *, runtime: str) -> list:
    """llama.cpp candidates for a CPU without a usable GPU: each catalog model's usual GGUF types
    (packaged models: their own file), estimated from bits per weight and the efficiency measured
    here for llama.cpp (median of the store's llama.cpp CPU records; assumed when there are none)."""
    effs = [
        float(r.roofline.efficiency)
        for r in records
        if r.config.runtime == runtime
        and r.status == "ok"
        and r.speed_usable
        and device_kind(r.config.device) == "cpu"
        and r.roofline.efficiency
    ]
    eff = _median(effs) if effs else None
    out = []
    for spec in specs:
        if not spec.arch:
            continue
        if spec.source == "packaged":
            quants, size = ((spec.gguf_quant or "").upper(),), spec.size_bytes
            if size is None and catalog.availability(spec)[0]:
                size = catalog.packaged_gguf(spec).stat().st_size
            if not size:
                continue
        elif spec.gguf_repo:
            quants, size = spec.gguf_quants, None
        else:
            continue
        for q in quants:
            e = gguf_estimate(spec, q, context=context, bandwidth_gb_s=bw_gb_s, efficiency=eff, file_bytes=size)
            e["inputs"]["efficiency_source"] = (
                f"median measured for llama.cpp here ({len(effs)} runs)"
                if effs
                else f"assumed {LLAMACPP_ASSUMED_EFFICIENCY} for llama.cpp on a CPU"
            )
            out.append(make(spec, q, e))
    return out
