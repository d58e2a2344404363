"""The `openai` runtime: a model served behind an OpenAI-compatible endpoint (vLLM, SGLang,
llama.cpp's server, llama-cpp-python's server, Ollama, LM Studio, TGI), measured from outside.

    mindbench run --runtimes openai --endpoint http://HOST:PORT/v1 --models NAME

The precision is whatever the server runs (recorded as "served"; the server's own description,
from /v1/models, /props or /version, goes into the record). The API key is read from the
environment variable named by --api-key-env (default OPENAI_API_KEY) in the process that sends
the requests, and only there: it is never part of a cell's configuration, a record or a log.
"""

from __future__ import annotations

import os
import time

from mindbench.errors import MindbenchError
from mindbench.runtimes.base import Runtime

DEFAULT_KEY_ENV = "OPENAI_API_KEY"
PROBE_TIMEOUT_S = 2.0  # per request while checking an endpoint: the whole check stays < 5 s
SERVED = "served"  # the precision label: the server decides


def api_key(env_name: str | None) -> str | None:
    return os.environ.get(env_name or DEFAULT_KEY_ENV) or None


def detect(client, models: dict) -> dict:
    """What the server is, from what it answers: llama.cpp's server (/props), vLLM (/version),
    llama-cpp-python's server (/v1/models owned_by "me"), else a generic OpenAI-compatible one."""
    from mindbench.runtimes.openai.client import EndpointError

    try:
        props = client.get_json("/props", root=True, timeout=PROBE_TIMEOUT_S)
        if isinstance(props, dict) and ("default_generation_settings" in props or "chat_template" in props):
            keep = {k: props.get(k) for k in ("build_info", "model_path", "total_slots", "n_ctx") if k in props}
            return {
                "flavor": "llama.cpp",
                "version": props.get("build_info"),
                "props": keep,
                "chat_template": props.get("chat_template") or None,
            }
    except EndpointError:
        pass
    try:
        ver = client.get_json("/version", root=True, timeout=PROBE_TIMEOUT_S)
        if isinstance(ver, dict) and ver.get("version"):
            return {"flavor": "vllm", "version": str(ver["version"])}
    except EndpointError:
        pass
    owners = {m.get("owned_by") for m in models.get("data") or [] if isinstance(m, dict)}
    if owners == {"me"}:
        return {"flavor": "llama-cpp-python", "version": None}
    return {"flavor": "openai-compatible", "version": None}


def probe(endpoint: str, model: str, api_key_env: str | None = None, timeout_s: float = PROBE_TIMEOUT_S) -> dict:
    """Check an endpoint before any cell: it answers, it lets us in, it serves `model`. Every
    failure is one line (EndpointError, exit 2). Returns what it learnt (no key)."""
    from mindbench.runtimes.openai.client import Client, EndpointError
    from mindbench.runtimes.openai.engine import check_served

    t0 = time.perf_counter()
    client = Client(endpoint, api_key(api_key_env), timeout_s=timeout_s)
    models = client.get_json("/models", timeout=timeout_s)
    if not isinstance(models, dict) or not isinstance(models.get("data"), list):
        raise EndpointError(f"{endpoint}/models did not list models: is this an OpenAI-compatible endpoint?")
    ids = [str(m.get("id")) for m in models["data"] if isinstance(m, dict)]
    check_served(ids, model, endpoint)
    server = detect(client, models)
    server["models"] = ids
    server["probe_s"] = round(time.perf_counter() - t0, 3)
    return server


def server_metrics(client) -> dict:
    """Memory and KV-cache figures the server publishes on /metrics (Prometheus text: vLLM,
    llama.cpp with --metrics), by their own names; {} when it publishes none."""
    from mindbench.runtimes.openai.client import EndpointError

    try:
        text = client.get_text("/metrics", root=True, timeout=PROBE_TIMEOUT_S)
    except EndpointError:
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name = line.split("{", 1)[0].split(" ", 1)[0]
        if any(k in name for k in ("cache_usage", "memory", "kv_cache", "gpu_cache")):
            try:
                out.setdefault(name, float(line.rsplit(" ", 1)[1]))
            except ValueError:
                pass
    return out


class OpenAIRuntime(Runtime):
    name = "openai"
    precisions = (SERVED,)
    precision_help = "nothing: the server decides (leave --precisions out; recorded as 'served')"
    requires = ()
    install_hint = "nothing to install: pass --endpoint http://HOST:PORT/v1"
    takes_endpoint = True  # the sweep plans one cell per --endpoint, under the server's model name
    full_logprobs = False  # a server returns top-k log-probabilities at most: no full-KL fidelity track
    topk_logprobs = True  # but its top-k form, with --fidelity (suites/fidelity.measure_topk)

    def normalize(self, precision):
        return SERVED if precision in (None, SERVED) else None

    def select_precisions(self, spec, precisions):
        return [SERVED]

    def default_precision(self, device):
        return SERVED

    def candidate_precisions(self, device):
        return ()

    def resolve_device(self, device):
        return "server"

    def load(
        self, model, precision=None, device="auto", *, endpoint: str | None = None, api_key_env: str | None = None, **_
    ):
        if not endpoint:
            raise MindbenchError("the openai runtime needs --endpoint http://HOST:PORT/v1")
        name = model.id if hasattr(model, "id") else str(model)
        t0 = time.perf_counter()
        server = probe(endpoint, name, api_key_env)
        return open_engine(endpoint, name, server, api_key_env=api_key_env, load_s=time.perf_counter() - t0)


def open_engine(
    endpoint: str,
    name: str,
    server: dict,
    *,
    api_key_env=None,
    runtime="openai",
    precision=SERVED,
    gguf=None,
    spec=None,
    load_s=0.0,
    launched=None,
    extra_info=None,
):
    """An OpenAIEngine on a probed endpoint. The chat template and tokenizer come from the GGUF
    file when one is known (a server mindbench launched, a packaged catalog model served under its
    own name), else from llama.cpp's /props, else the chat endpoint is used."""
    from mindbench.models.catalog import ModelSpec
    from mindbench.models.catalog import resolve as resolve_model
    from mindbench.runtimes.openai.client import Client
    from mindbench.runtimes.openai.engine import OpenAIEngine

    client = Client(endpoint, api_key(api_key_env))
    if spec is None:
        try:
            spec = resolve_model(name)
        except Exception:
            spec = ModelSpec(name, "endpoint", chat=True)
    if gguf is None and spec.source == "packaged":
        from mindbench.models.catalog import packaged_gguf

        try:
            gguf = packaged_gguf(spec)
        except Exception:
            gguf = None
    tokenizer = template = None
    if gguf is not None:
        tokenizer = gguf_tokenizer(gguf, spec)
        spec = tokenizer.spec
    elif server.get("chat_template"):
        from mindbench.runtimes.llamacpp.engine import compile_template

        template = compile_template(server["chat_template"])
    elif spec.source == "endpoint":
        spec = ModelSpec(name, "endpoint", chat=True)
    version = server.get("version")
    info = {
        "source": f"{server['flavor']}{' ' + version if version else ''} at {endpoint}",
        "revision": (tokenizer.info.get("revision") if tokenizer else None) or version,
        "server": {k: v for k, v in server.items() if k != "chat_template"},
        "served_model": name,
        "weights": "pretrained",
        "cold": None,
        "device": "server",
        "endpoint": endpoint,
    }
    info.update(extra_info or {})
    # the GGUF's tensor bytes, as the in-process llama.cpp engine counts them (its roofline numerator)
    weight_bytes = (tokenizer._llm._model.size() or tokenizer.info.get("file_bytes")) if tokenizer else None
    engine = OpenAIEngine(
        client,
        name,
        spec,
        runtime=runtime,
        precision=precision,
        flavor=server["flavor"],
        info=info,
        template=template,
        tokenizer=tokenizer,
        weight_bytes=weight_bytes,
        load_s=load_s,
        server=launched,
    )
    metrics = server_metrics(client)
    engine.info["server_memory"] = metrics or "not reported"
    return engine


def gguf_tokenizer(path, spec):
    """The llama.cpp engine on the vocabulary of `path` only: it renders the chat template and
    counts tokens exactly as an in-process llama.cpp cell does, without loading weights."""
    from pathlib import Path

    from mindbench.runtimes.llamacpp.engine import LlamaCppEngine, _llama_cpp, _revision

    llama_cpp = _llama_cpp()
    path = Path(path)
    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, n_ctx=64, verbose=False)
    template = llm.metadata.get("tokenizer.chat_template")
    from dataclasses import replace

    if spec.source in ("local", "endpoint"):
        spec = replace(spec, chat=bool(template))
    info = {"file": str(path), "file_bytes": path.stat().st_size, "revision": _revision(path, "local")}
    return LlamaCppEngine(llm, spec, "vocab", "cpu", 0.0, info, template if spec.chat else None)


RUNTIME = OpenAIRuntime()
