"""Candidates from the hardware, not from this machine's packages.

For a device in the table (`--gpu NAME`, or this machine's GPU matched by its NVML name), every
runtime that runs there offers its weight formats, whether or not it is installed here:

    llama.cpp    GGUF Q4_K_M / Q5_K_M / Q6_K / Q8_0 on CUDA, ROCm, Metal and CPUs
    vLLM         AWQ int4, FP8 (cards with FP8 tensor cores), bf16 - served, measured through the
                 `openai` endpoint runtime
    transformers bitsandbytes nf4 / int8 and fp16/bf16 on CUDA

Each candidate is estimated by mindbench.models.perf (fitted factors for llama.cpp, assumed ones,
labelled, elsewhere) and carries what must be installed to run it (`install`), and whether that
is installed on this machine (`ready_here`). Pure: no torch.
"""

from __future__ import annotations

import importlib.util

from mindbench.models.devices import Device
from mindbench.models.perf import GGUF_BPW, format_of, predict, shape_of

GGUF_TYPES = ("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")
LLAMACPP_INSTALL = {
    "cuda": 'CMAKE_ARGS="-DGGML_CUDA=on" pip install llama-cpp-python',
    "rocm": 'CMAKE_ARGS="-DGGML_HIP=on" pip install llama-cpp-python',
    "metal": "pip install llama-cpp-python  (Metal is built in on macOS)",
    "cpu": "pip install llama-cpp-python",
}
VLLM_INSTALL = (
    "pip install vllm; vllm serve {repo}; mindbench run --runtimes openai --endpoint http://localhost:8000/v1"
)
REQUIRES = {"llamacpp": ("llama_cpp",), "openai": ("vllm",), "transformers": ("torch", "transformers")}


def gguf_types(spec) -> tuple[str, ...]:
    """The GGUF files a model comes as: a packaged model its own, else the usual repo's types."""
    if spec.source == "packaged":
        return ((spec.gguf_quant or "").upper(),) if spec.gguf_quant else ()
    if not getattr(spec, "gguf_repo", None):
        return ()
    return tuple(q for q in (spec.gguf_quants or GGUF_TYPES) if q.upper() in GGUF_BPW)


def options(dev: Device, spec=None) -> list[tuple[str, str]]:
    """(runtime, precision) pairs that run on the device, whatever is installed here."""
    out = [("llamacpp", q) for q in (gguf_types(spec) if spec is not None else GGUF_TYPES)]
    if spec is not None and spec.source == "packaged":
        return out  # shipped as one GGUF file: llama.cpp's, and transformers on a CPU (its own path)
    if dev.kind in ("cuda", "rocm"):
        out += [("openai", "awq")] + ([("openai", "fp8")] if dev.fp8 else []) + [("openai", "vllm-bf16")]
    if dev.kind == "cuda":
        out += [("transformers", "int4"), ("transformers", "int8"), ("transformers", "bf16" if dev.bf16 else "fp16")]
    if dev.kind == "cpu":
        out += [("transformers", "fp32")]
    return out


def install_for(runtime: str, precision: str, dev: Device, spec) -> str:
    if runtime == "llamacpp":
        repo = getattr(spec, "gguf_repo", None)
        return LLAMACPP_INSTALL[dev.kind] + (f"; GGUF {precision} from {repo}" if repo else "")
    if runtime == "openai":
        repo = spec.repo or spec.id
        return VLLM_INSTALL.format(repo=repo + ("-AWQ" if precision == "awq" else ""))
    if precision in ("int4", "int8"):
        return "pip install 'bitsandbytes>=0.47' (and torch, transformers)"
    return "pip install torch transformers"


def ready_here(runtime: str, precision: str) -> bool:
    if runtime == "openai":
        # a served model needs a server someone started (vllm serve ...): nothing here loads it on
        # its own, so on this machine it is never the answer the provider and agents would load
        return False
    mods = REQUIRES.get(runtime, ())
    if runtime == "transformers" and precision in ("int4", "int8"):
        mods = mods + ("bitsandbytes",)
    return all(importlib.util.find_spec(m) is not None for m in mods)


def planned(specs, dev: Device, context: int, here: bool = False) -> list[dict]:
    """One dict per (model, runtime, precision) that runs on `dev`: the estimate and the install
    line. `here`: the device is this machine's, so "not installed here" can be said."""
    out = []
    for spec in specs:
        s = shape_of(spec.id)
        if s is None:
            continue
        for runtime, precision in options(dev, spec):
            p = predict(s, precision, dev, runtime=runtime, context=context, decode_at=context // 2, model=spec.id)
            ready = ready_here(runtime, precision) if here else None
            est = p.to_dict()
            out.append(
                {
                    "spec": spec,
                    "runtime": runtime,
                    "precision": format_of(precision, runtime).name,
                    "memory_mb": p.total_mb,
                    "decode_tok_s": p.decode_tok_s,
                    "prefill_tok_s": p.prefill_tok_s,
                    "estimate": est,
                    "install": install_for(runtime, precision, dev, spec),
                    "ready_here": ready,
                }
            )
    return out
