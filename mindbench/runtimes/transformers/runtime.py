"""The transformers runtime as the rest of mindbench sees it (runtimes/base.Runtime): torch
precisions with bitsandbytes int8/int4, devices through torch, the analytic estimator of
estimate.py. The engine itself is runtimes/hf.py; loading is loading.py."""

from __future__ import annotations

from mindbench.errors import MindbenchError
from mindbench.measure.device import is_cuda
from mindbench.runtimes.base import Runtime
from mindbench.runtimes.transformers.precisions import PRECISIONS


class TransformersRuntime(Runtime):
    name = "transformers"
    precisions = PRECISIONS  # widest first: the quality tiers
    precision_help = "fp32, bf16, fp16, int8, int4"
    requires = ("torch", "transformers")
    install_hint = "pip install 'torch>=2.1' 'transformers>=4.50' (mindbench's own dependencies: pip install mindbench)"

    def reference_precision(self, device: str) -> str:
        # The widest precision the device runs well: fp32 on a CPU (every kernel has it); on a GPU
        # bf16 where it has bf16 arithmetic (Ampere and later), else fp16 (fp32 on a GPU would
        # double the memory for no measurable gain, and it is rarely what anyone runs).
        if not is_cuda(device):
            return "fp32"
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"

    def default_precisions(self, device: str) -> tuple[str, ...]:
        # On a CPU int8 is one flag away (--precisions fp32,int8,int4), not a default: bitsandbytes
        # int8 is the slowest cell on every host measured (decode 13 tok/s vs int4's 26 on AVX-512,
        # both 5-6 on AVX2-only hosts, where the three-precision quick run took 9.5 minutes), and
        # the quick run must fit in 5 minutes on any 2-core host.
        return ("fp16", "int8", "int4") if is_cuda(device) else ("fp32", "int4")

    def candidate_precisions(self, device: str) -> tuple[str, ...]:
        # On a GPU fp16 first: every card has it, and it ties with bf16 in every estimate.
        return ("fp16", "bf16", "fp32", "int8", "int4") if is_cuda(device) else self.precisions

    def default_precision(self, device: str) -> str:
        """A model loaded with no precision given: fp16 on CUDA, fp32 on a CPU."""
        return "fp16" if is_cuda(self.resolve_device(device)) else "fp32"

    def resolve_device(self, device):
        from mindbench.runtimes.transformers.loading import resolve_device

        return resolve_device(device)

    def set_threads(self, threads: int, load_kwargs: dict) -> None:
        import torch

        torch.set_num_threads(threads)  # torch's intra-op threads

    def load(self, model, precision, device="auto", **kwargs):
        from mindbench.runtimes.transformers.engine import TransformersEngine

        return TransformersEngine.load(model, precision or "fp32", device=device, **kwargs)

    def estimate_candidates(self, specs, hw, records, context, bandwidth_gb_s):
        from mindbench.models.estimate import efficiency_for, estimate, max_context, measured_efficiency
        from mindbench.runtimes import efficiency_family

        eff = {
            k: v
            for k, v in measured_efficiency(records, self.name, family_of=efficiency_family).items()
            if k[0] == hw.device
        }
        for spec in specs:
            if not spec.arch:
                continue
            limit = max_context(spec.arch)
            why = (
                f"its context window is {limit} tokens, under --context {context}"
                if limit and context > limit
                else None
            )
            for p in self.candidate_precisions(hw.device):
                eff_p, eff_source = efficiency_for(hw.device, p, eff)
                e = estimate(
                    spec,
                    p,
                    hw.device,
                    context=context,
                    bandwidth_gb_s=bandwidth_gb_s,
                    efficiency=eff_p,
                    efficiency_source=eff_source,
                )
                yield spec, p, e.total_mb, e.decode_tok_s, e.to_dict(), why

    def estimate_cell(self, spec, precision, device_kind, *, context, bandwidth_gb_s, efficiency, batch=1):
        from mindbench.models.estimate import ASSUMED_EFFICIENCY, estimate

        eff = efficiency if efficiency is not None else ASSUMED_EFFICIENCY[(device_kind, precision)]
        e = estimate(spec, precision, device_kind, context=context, bandwidth_gb_s=bandwidth_gb_s, efficiency=eff)
        # the suites generate in batches: KV cache and activations scale with the batch
        peak = e.weights_mb + e.overhead_mb + batch * (e.kv_cache_mb + e.activations_mb)
        return {"weights": e.weights_mb, "peak memory": peak, "decode tok/s": e.decode_tok_s}

    def hub_file(self, spec, precision):
        if spec.source == "local" and str(spec.path or "").lower().endswith(".gguf"):
            raise MindbenchError(
                f"{spec.path} is a GGUF file; transformers loads model folders: run it with "
                f"--runtimes llamacpp, or give the model's folder or Hub id"
            )
        return super().hub_file(spec, precision)

    def recommend_exclusion(self, precision: str, hw) -> str | None:
        if precision in ("int8", "int4") and not hw.bnb_available:
            return "needs bitsandbytes (pip install 'bitsandbytes>=0.47')"
        if precision == "bf16" and hw.device == "cuda":
            from mindbench.models.hardware import gpu_supports_bf16

            if not gpu_supports_bf16(hw.gpu.name):
                return f"{hw.gpu.name} has no bf16 (use fp16)"
        return None


RUNTIME = TransformersRuntime()
