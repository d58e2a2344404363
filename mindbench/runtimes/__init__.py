"""Runtimes: the same Engine interface over transformers and llama.cpp.

`get_engine` is the one way the harness, the provider and the agents get a loaded model, so a
runtime added here is usable everywhere at once.
"""

from __future__ import annotations

from .base import Engine, GenParams, Generation, Timing  # noqa: F401

RUNTIMES = ("transformers", "llamacpp")


def get_engine(model, precision: str | None = None, device: str = "auto", runtime: str = "transformers",
               **kwargs) -> Engine:
    """Load `model` (name or ModelSpec) on `runtime` and return a ready Engine."""
    if runtime == "transformers":
        from .hf import TransformersEngine
        return TransformersEngine.load(model, precision or "fp32", device=device, **kwargs)
    if runtime == "llamacpp":
        from .llamacpp import LlamaCppEngine
        return LlamaCppEngine.load(model, precision, device=device, **kwargs)
    from ..errors import MindbenchError
    raise MindbenchError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")
