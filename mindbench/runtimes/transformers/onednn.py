"""fp32 linear layers on the CPU through oneDNN's matmul instead of torch's default (MKL sgemm).

Why: at the row counts a benchmark decodes with (1 to a few dozen rows per forward), torch's
sgemm reads the weights far below the host's memory bandwidth. Measured side by side on a 2-core
AVX-512 host, 2 threads (`benchmarks/linear_kernel.py`): Qwen2.5's [151936 x 896] LM head at 8
rows 110-124 ms with `F.linear`, 35-39 ms here; its MLP matrices 1.3-1.9 ms vs 0.9 ms; at 1 row
1.4 vs 0.4 ms; the prefill of 8 x 200 tokens through a [4864 x 896] matrix 106 vs 69 ms.

`torch.ops.mkldnn._linear_pointwise` (the op torch's own compiler emits for CPU linears) takes
the ordinary dense weight, so nothing is copied or converted: same memory, same parameters,
tied weights stay tied, and `disable()` restores the stock layer exactly. Results differ from
`F.linear` only in float summation order (~1e-4 absolute on these shapes), as two BLAS builds do.

Only exact `nn.Linear` modules with fp32 weights on the CPU change; bitsandbytes' layers are
subclasses and keep their own kernels (their fp32 LM head, a plain `nn.Linear`, does change).
Outside inference (autograd on) the stock path runs. MINDBENCH_LINEAR=torch keeps every layer
on torch's kernel, to measure the difference or rule it out.
"""

from __future__ import annotations

import os

ENV = "MINDBENCH_LINEAR"
# The op's remaining arguments for a plain x @ W.T + b: no fused activation ("none", no scalars,
# no algorithm). One place, for the layer, the build check and benchmarks/linear_kernel.py.
PLAIN = ("none", [None], "")


def _op():
    import torch

    return getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)


def _layer_class():
    """The swapped layers' class, built on first use so that importing mindbench imports no torch."""
    if "OneDNNLinear" in globals():
        return globals()["OneDNNLinear"]
    import torch
    from torch import nn

    class OneDNNLinear(nn.Linear):
        """An nn.Linear whose forward runs oneDNN's matmul on its own dense weight."""

        def forward(self, x):
            if torch.is_grad_enabled() or x.dtype != torch.float32 or x.numel() == 0:
                return super().forward(x)
            return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, *PLAIN)

    OneDNNLinear.__module__, OneDNNLinear.__qualname__ = __name__, "OneDNNLinear"
    globals()["OneDNNLinear"] = OneDNNLinear
    return OneDNNLinear


def __getattr__(name: str):
    # pickle finds a swapped layer's class by name, also in a process that has not built it yet
    if name == "OneDNNLinear":
        return _layer_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def available() -> str | None:
    """None when the oneDNN path can run here, else why not (one line)."""
    import torch

    if os.environ.get(ENV, "").strip().lower() == "torch":
        return f"{ENV}=torch"
    if not torch.backends.mkldnn.is_available() or _op() is None:
        return "this torch build has no oneDNN linear"
    try:  # one tiny call, compared with torch's own result: a broken build must not change scores
        x, w, b = torch.randn(3, 16), torch.randn(8, 16), torch.randn(8)
        with torch.inference_mode():
            y = _op()(x, w, b, *PLAIN)
        if not torch.allclose(y, torch.nn.functional.linear(x, w, b), atol=1e-4, rtol=1e-4):
            return "oneDNN linear disagrees with torch's on a test matrix"
    except Exception as e:  # noqa: BLE001 - any failure means "not here", said in the info
        return f"oneDNN linear failed: {str(e).splitlines()[0][:120]}"
    return None


def enable(model, device: str) -> str:
    """Swap the model's fp32 CPU nn.Linear layers to the oneDNN matmul; returns what the
    engine's info records ("onednn (N layers)" or "torch (why)")."""
    import torch
    from torch import nn

    if not device.startswith("cpu"):
        return "torch (not on the CPU)"
    why = available()
    if why:
        return f"torch ({why})"
    cls, n = _layer_class(), 0
    # Every fp32 layer, small ones too: per call, torch's kernel is 0.01-0.03 ms faster on the smallest
    # matrices (SmolLM2's [576 x 576], Qwen2.5's [128 x 896] at 1 row), but keeping them on torch
    # bought nothing on the whole model (SmolLM2, 16 prompts at batch 8, 4 alternating rounds: 16.5 s
    # all layers vs 16.9 s with layers under 512 Ki weights left on torch; Qwen coder 35.6 vs 33.7 s,
    # 2 rounds: inside the noise), so one rule is kept.
    for m in model.modules():
        # Exact type: quantized layers subclass nn.Linear. A module whose forward was replaced on
        # the instance (accelerate's offload hooks) keeps it: swapping its class would bypass them.
        if (
            type(m) is nn.Linear
            and m.weight.dtype == torch.float32
            and m.weight.device.type == "cpu"
            and "forward" not in m.__dict__
        ):
            m.__class__ = cls
            n += 1
    return f"onednn ({n} layers)" if n else "torch (no fp32 linear layers)"


def disable(model) -> None:
    """Back to torch's kernel for every layer enable() swapped."""
    if "OneDNNLinear" not in globals():
        return  # never enabled in this process
    from torch import nn

    for m in model.modules():
        if type(m) is globals()["OneDNNLinear"]:
            m.__class__ = nn.Linear
