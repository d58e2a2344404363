"""The `llamacpp-server` runtime: mindbench starts a llama.cpp OpenAI-compatible server on a GGUF
file itself (launcher.py) and measures it through the openai runtime's engine, so a served cell
and an in-process llama.cpp cell of the same file sit side by side in one table.

The server is llama.cpp's own C++ `llama-server` wherever one is found (launcher.find_llama_server:
$MINDBENCH_LLAMA_SERVER, the venv's, PATH), with as many slots as requests will be in flight
(`slots`: run's --batch-size, serve-bench's largest concurrency); else llama-cpp-python's Python
server, which runs one request at a time. The record says which (`server`, `slots`).

The GGUF types, packaged files, requantization and Hub files are the llama.cpp runtime's own
(runtimes/llamacpp), so `--runtimes llamacpp,llamacpp-server` runs the same file both ways. The
prompts are rendered from that file's template by the same code (a vocabulary-only llama.cpp
engine in this process), so both cells send identical prompt strings.
"""

from __future__ import annotations

import time

from mindbench.errors import MindbenchError
from mindbench.runtimes.llamacpp.runtime import LlamaCppRuntime

# llama-cpp-python's server needs its [server] extra; llama-server needs llama_cpp only (the
# vocabulary-only engine that renders prompts and counts tokens in this process)
SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")
SERVER_INSTALL = (
    "run `make extras` (it also builds llama.cpp's llama-server), or: pip install 'uvicorn>=0.22.0' "
    "'fastapi>=0.100.0' 'pydantic-settings>=2.0.1' 'sse-starlette>=1.6.1' 'starlette-context>=0.3.6,<0.4' "
    "'PyYAML>=5.1' (llama-cpp-python's server extra)"
)


class LlamaCppServerRuntime(LlamaCppRuntime):
    name = "llamacpp-server"
    install_hint = SERVER_INSTALL
    full_logprobs = False  # measured through the server: no full distributions, no fidelity track
    takes_slots = True  # load(slots=N): the requests a cell keeps in flight (the worker passes --batch-size)

    @property
    def requires(self) -> tuple[str, ...]:
        from mindbench.runtimes.llamacpp_server.launcher import find_llama_server

        try:
            binary, _ = find_llama_server()
        except MindbenchError:  # a wrong $MINDBENCH_LLAMA_SERVER: check_available says so
            binary = None
        return ("llama_cpp",) if binary else SERVER_MODULES

    def check_available(self) -> None:
        """A set-but-wrong $MINDBENCH_LLAMA_SERVER is one line (InputError, exit 2) before any
        cell; then the modules the server found needs."""
        from mindbench.runtimes.llamacpp_server.launcher import find_llama_server

        find_llama_server()
        super().check_available()

    @property
    def efficiency_family(self) -> str:
        return "llamacpp"  # the same kernels as the in-process cell

    def estimate_candidates(self, specs, hw, records, context, bandwidth_gb_s):
        return []  # recommend's llama.cpp candidates come from the llamacpp runtime

    def load(
        self,
        model,
        precision,
        device="auto",
        *,
        n_threads: int | None = None,
        hf_token=None,
        cache_dir=None,
        no_weights: bool = False,
        n_ctx: int = 4096,
        slots: int = 1,
        **_,
    ):
        from mindbench.runtimes.llamacpp.engine import (
            _resolve_spec,
            default_threads,
            gpu_layers,
            locate_gguf,
            resolve_device,
        )
        from mindbench.runtimes.llamacpp_server.launcher import LlamaCppServer, binary_version, find_llama_server
        from mindbench.runtimes.openai.runtime import open_engine, probe

        if no_weights:
            raise MindbenchError(
                "llama.cpp runs real GGUF files only: random weights (--no-weights) are a transformers-runtime option"
            )
        self.check_available()
        binary, found = find_llama_server()
        spec = _resolve_spec(model)
        path, want, info = locate_gguf(spec, precision, hf_token=hf_token, cache_dir=cache_dir)
        dev = resolve_device(device)
        t0 = time.perf_counter()
        server = LlamaCppServer(
            path,
            alias=spec.id,
            binary=binary,
            slots=slots,
            threads=n_threads or default_threads(),
            n_ctx=n_ctx,
            n_gpu_layers=gpu_layers(dev),
        ).start()
        try:
            served = probe(server.base_url, spec.id)
            import llama_cpp

            if binary:  # /props gave llama.cpp's build; the binary says its own version and build
                served.update(binary=str(binary), found=found, binary_version=binary_version(binary))
                how = f"llama.cpp llama-server {served.get('version') or ''} ({binary})"
                slot_note = (
                    f"{server.slots}: llama.cpp's llama-server --parallel {server.slots} (continuous batching), "
                    f"{n_ctx} tokens of context each"
                )
            else:
                served.update(version=f"llama-cpp-python {llama_cpp.__version__}", found=found)
                how = f"llama-cpp-python {llama_cpp.__version__} (python -m llama_cpp.server)"
                slot_note = "1: llama-cpp-python's server runs one request at a time; the rest queue"
            # the record's server section (run's and serve-bench's): which server, how it was set
            served.update(slots=slot_note, settings={"server": server.name, **server.settings})
            engine = open_engine(
                server.base_url,
                spec.id,
                served,
                runtime=self.name,
                gguf=path,
                spec=spec,
                load_s=time.perf_counter() - t0,
                launched=server,
                extra_info={
                    **info,
                    "device": dev,
                    "n_threads": server.n_threads,
                    "server_settings": served["settings"],
                    "slots": slot_note,
                    "server_start_s": round(server.start_s, 2),
                },
            )
        except BaseException:
            server.stop()
            raise
        engine.precision = engine.dtype = want or _file_type(engine)
        engine.info["source"] = f"{info['source']} served by {how}"
        engine.info["revision"] = _revision(path, info)
        engine.contention_pids = [server.proc.pid]
        # the server allocates its KV cache for n_ctx per slot at load, as the in-process engine
        # does for its one sequence; the vocabulary-only engine knows its shape (F16 K and V, every
        # layer) at its own context
        tok = engine._tokenizer
        engine.kv_bytes = tok.kv_cache_bytes() * n_ctx * server.slots // max(1, tok._llm.n_ctx())
        return engine


def _file_type(engine) -> str:
    from mindbench.runtimes.llamacpp.engine import FILE_TYPES

    llm = engine._tokenizer._llm
    return FILE_TYPES.get(int(llm.metadata.get("general.file_type", -1)), "unknown")


def _revision(path, info) -> str:
    from mindbench.runtimes.llamacpp.engine import _revision as rev

    return rev(path, info["source"])


RUNTIME = LlamaCppServerRuntime()
