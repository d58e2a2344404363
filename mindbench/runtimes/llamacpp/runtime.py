"""The llama.cpp runtime as the rest of mindbench sees it (runtimes/base.Runtime): GGUF file
types as precisions, devices through llama-cpp-python's GPU offload, the OpenMP set-up a worker
needs, and the GGUF estimator of estimate_check.py. The engine itself is runtimes/llamacpp.py."""

from __future__ import annotations

from mindbench.errors import InputError, MindbenchError, PrecisionError
from mindbench.runtimes.base import Runtime
from mindbench.runtimes.llamacpp.engine import DEFAULT_HUB_QUANT, FILE_TYPES, INSTALL, _norm_quant

# Every GGUF file type, widest first by (approximate) bits per weight: the quality tiers.
TIERS = (
    "F32",
    "BF16",
    "F16",
    "Q8_0",
    "Q6_K",
    "Q5_1",
    "Q5_K_M",
    "Q5_0",
    "Q5_K_S",
    "Q4_1",
    "Q4_K_M",
    "Q4_K_S",
    "Q4_0",
    "IQ4_NL",
    "IQ4_XS",
    "Q3_K_L",
    "Q3_K_M",
    "IQ3_M",
    "IQ3_S",
    "Q3_K_S",
    "IQ3_XS",
    "IQ3_XXS",
    "Q2_K",
    "Q2_K_S",
    "IQ2_M",
    "IQ2_S",
    "IQ2_XS",
    "IQ2_XXS",
    "TQ2_0",
    "IQ1_M",
    "IQ1_S",
    "TQ1_0",
)


# The context LlamaCppEngine.load allocates by default (a test keeps the two equal).
LOAD_CONTEXT = 4096


class LlamaCppRuntime(Runtime):
    name = "llamacpp"
    precisions = TIERS
    precision_help = (
        "GGUF types such as Q4_1, Q4_K_M, Q8_0 (packaged models: their own type, or one requantized from it)"
    )
    requires = ("llama_cpp",)
    install_hint = INSTALL

    def normalize(self, precision):
        q = _norm_quant(precision) if isinstance(precision, str) else None
        return q if q in FILE_TYPES.values() else None

    def select_precisions(self, spec, precisions):
        # No GGUF type asked for: the model's own file (packaged) or the usual Hub trade-off, so
        # `--runtimes transformers,llamacpp --precisions fp16,int4` still measures llama.cpp.
        own = [p for p in precisions if self.takes(p)]
        if spec.source == "packaged":  # a type its file cannot give: one line, exit 2, before any cell
            from mindbench.runtimes import DEFAULT_RUNTIME, get_runtime
            from mindbench.runtimes.llamacpp.engine import packaged_precision_problem

            for p in own:
                # bf16 is also a GGUF type, but in `--precisions fp32,bf16,Q4_1` it is transformers'
                if packaged_precision_problem(spec, p) and not get_runtime(DEFAULT_RUNTIME).takes(p):
                    raise InputError(packaged_precision_problem(spec, p))
            own = [p for p in own if not packaged_precision_problem(spec, p)]
        return own or [spec.gguf_quant or DEFAULT_HUB_QUANT]

    def candidate_precisions(self, device: str) -> tuple[str, ...]:
        return ()  # per model: its packaged file or Hub types

    def hub_file(self, spec, precision):
        # the file engine.locate_gguf would download, found the same way, without downloading
        from mindbench.runtimes.llamacpp.engine import HUB_GGUF, HUB_QUANTS

        if spec.source == "local" and not str(spec.path or "").lower().endswith(".gguf"):
            raise MindbenchError(
                f"{spec.id} is a transformers folder; llama.cpp needs a .gguf file: pass its "
                f"path, or use --runtimes transformers"
            )
        if spec.source != "hub":
            return None
        repo, pattern = HUB_GGUF.get(spec.id) or (spec.gguf_repo, spec.gguf_pattern)
        if not repo:
            raise MindbenchError(
                f"no GGUF file is known for {spec.id} on llama.cpp: pass a .gguf file path as "
                f"the model, or use --runtimes transformers"
            )
        quant = _norm_quant(precision) if precision else DEFAULT_HUB_QUANT
        if quant not in HUB_QUANTS:
            raise PrecisionError(f"no {quant} file for {spec.id} on llama.cpp: choose one of {', '.join(HUB_QUANTS)}")
        return repo, pattern.format(quant=quant)

    def resolve_device(self, device):
        from mindbench.runtimes.llamacpp.engine import resolve_device

        return resolve_device(device)

    # No per-process set-up: no OMP_WAIT_POLICY is forced (PASSIVE decoded 5x slower on a quiet
    # host), as users run llama.cpp with libgomp's default. A busy machine is detected and reported
    # (speed.verdict), not compensated; the record keeps the policy and threads each cell ran with
    # (speed.runtime_settings).

    def set_threads(self, threads: int, load_kwargs: dict) -> None:
        load_kwargs["n_threads"] = threads  # llama.cpp takes it at load (llama-bench's -t)

    def load(self, model, precision, device="auto", **kwargs):
        from mindbench.runtimes.llamacpp.engine import LlamaCppEngine

        return LlamaCppEngine.load(model, precision, device=device, **kwargs)

    def estimate_candidates(self, specs, hw, records, context, bandwidth_gb_s):
        # Only without a usable GPU: on a GPU the transformers candidates are the measured path
        # (`--gpu NAME` plans llama.cpp on GPUs: mindbench.decide.plan). Whether llama_cpp imports
        # here does not matter: the candidate says what to install (decide.recommend), and a
        # planned machine's picks do not change as packages come and go on this one.
        if hw.device != "cpu":
            return []
        from mindbench.runtimes.llamacpp.estimate import gguf_candidates

        return gguf_candidates(
            specs,
            hw,
            records,
            context,
            bandwidth_gb_s,
            lambda s, q, e: (s, q, e["total_mb"], e["decode_tok_s"], e, None),
            runtime=self.name,
        )

    def estimate_cell(self, spec, precision, device_kind, *, context, bandwidth_gb_s, efficiency, batch=1):
        from mindbench.models.estimate import arch_config, count_params
        from mindbench.runtimes.llamacpp.estimate import LLAMACPP_ASSUMED_EFFICIENCY, gguf_estimate

        quant = str(precision).upper()
        # A packaged model's file is known to the byte (its Q4_K_M mixes types, so bits per weight
        # would miss): the same size the recommender's candidates use.
        own = spec.source == "packaged" and quant == (spec.gguf_quant or "").upper()
        size = spec.size_bytes if own else None
        args = dict(
            bandwidth_gb_s=bandwidth_gb_s,
            file_bytes=size,
            efficiency=efficiency if efficiency is not None else LLAMACPP_ASSUMED_EFFICIENCY,
        )
        e = gguf_estimate(spec, quant, context=context, **args)
        # llama.cpp allocates the KV cache whole at load for n_ctx, whatever the run then uses: the
        # process's peak holds it, and the record's weights_mb is the engine's footprint
        # (LlamaCppEngine.memory_footprint), weights plus that cache at full length in every layer
        # (no window cap), so the estimate of a record adds the same.
        loaded = gguf_estimate(spec, quant, context=max(context, LOAD_CONTEXT), **args)
        kv_load_mb = count_params(arch_config(spec.arch)).kv_per_token * LOAD_CONTEXT * 2 / 2**20
        return {
            "weights": e["weights_mb"] + kv_load_mb,
            "peak memory": loaded["total_mb"],
            "decode tok/s": e["decode_tok_s"],
        }


RUNTIME = LlamaCppRuntime()
