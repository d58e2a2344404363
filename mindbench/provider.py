"""LocalModelProvider: the user's document's API, on any mindbench runtime.

    llm = LocalModelProvider("smollm2-135m-instruct", load_in_4bit=True)
    text = await llm.generate("Write a haiku about GPUs", system_prompt="You are a poet.")
    llm.unload_model()

    llm = LocalModelProvider.from_recommendation(task="code")   # what mindbench measured best here

A prompt is a string or a conversation: a list of {"role": "system"|"user"|"assistant",
"content": str} messages, rendered through the model's own chat template (so a multi-turn chat is
the conversation the model was trained on, not a transcript pasted into one user turn).

The model loads lazily on first use (or eagerly with `load_model()`), in a worker thread, so
neither loading nor generating blocks the event loop. One lock serialises the engine: two
concurrent `generate` calls both finish, one after the other, and other coroutines keep running.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterable

from mindbench.errors import MindbenchError
from mindbench.models.catalog import DEFAULT_MODEL

DEFAULT = DEFAULT_MODEL


class LocalModelProvider:
    accepts_messages = True  # generate/stream/count_tokens take a list of chat messages too

    def __init__(
        self,
        model_name: str = DEFAULT,
        device: str = "auto",
        cache_dir=None,
        load_in_4bit: bool = False,
        load_in_8bit: bool = False,
        hf_token: str | None = None,
        precision: str | None = None,
        runtime: str = "auto",
    ):
        if load_in_4bit and load_in_8bit:
            raise MindbenchError("load_in_4bit and load_in_8bit are both set: choose one")
        implied = "int4" if load_in_4bit else "int8" if load_in_8bit else None
        if implied and precision and precision != implied:
            raise MindbenchError(f"load_in_{implied[3]}bit=True contradicts precision={precision!r}: give one of them")
        precision = implied or precision
        # The registry decides: runtime="auto" is the first runtime that runs the precision
        # ("bf16" torch's, "Q4_1" a GGUF type), so nothing here knows a runtime's vocabulary.
        from mindbench.runtimes import get_runtime, runtime_for, runtimes

        rt = runtime_for(precision) if runtime == "auto" else get_runtime(runtime)
        if precision is not None and not rt.takes(precision):
            hint = (
                "load_in_4bit/load_in_8bit are bitsandbytes options"
                if implied
                else f"{precision} is not a {rt.name} precision"
            )
            others = [o.name for o in runtimes() if o.takes(precision)]
            raise MindbenchError(
                f"{hint}: runtime={rt.name!r} takes {rt.precision_help}"
                + (f", or use runtime={others[0]!r}" if others else "")
            )
        precision = rt.normalize(precision) if precision is not None else None
        runtime = rt.name
        self.model_name = model_name
        self.device = device
        self.cache_dir = cache_dir
        self.hf_token = hf_token  # handed to the loader; never printed (see __repr__)
        self.runtime = runtime
        self.precision = precision  # None: fp16 on CUDA, fp32 on CPU (llama.cpp: the file's type)
        self._engine = None
        # A threading lock, not an asyncio one: the engine runs in worker threads, and a
        # synchronous caller (unload_model) must wait for a generation in flight to finish.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = "loaded" if self._engine is not None else "not loaded"
        return (
            f"LocalModelProvider({self.model_name!r}, runtime={self.runtime!r}, "
            f"precision={self.precision!r}, device={self.device!r}, {state})"
        )

    @classmethod
    def from_recommendation(cls, task: str = "chat", results_path=None, **kwargs) -> LocalModelProvider:
        """The configuration mindbench measured (or estimated) best for `task` on this machine."""
        from mindbench.decide.recommend import best_config

        cfg = best_config(task, results_path)
        opts = dict(
            model_name=cfg["model"],
            precision=cfg.get("precision"),
            runtime=cfg.get("runtime") or "auto",
            device=cfg.get("device") or "auto",
        )
        opts.update(kwargs)
        return cls(**opts)

    # --- the engine ------------------------------------------------------------------------------
    def load_model(self) -> LocalModelProvider:
        """Load now instead of on first use (blocking; from async code, `await provider.aload()`)."""
        with self._lock:
            self._ensure_loaded()
        return self

    async def aload(self) -> LocalModelProvider:
        return await asyncio.to_thread(self.load_model)

    def _ensure_loaded(self):
        if self._engine is None:
            from mindbench.runtimes import get_engine, get_runtime

            precision = self.precision or get_runtime(self.runtime).default_precision(self.device)
            self._engine = get_engine(
                self.model_name,
                precision,
                device=self.device,
                runtime=self.runtime,
                cache_dir=self.cache_dir,
                hf_token=self.hf_token,
            )
            self.precision = self._engine.precision
        return self._engine

    @property
    def engine(self):
        """The loaded Engine (loads it if needed)."""
        return self.load_model()._engine

    @property
    def is_loaded(self) -> bool:
        return self._engine is not None

    @property
    def context_length(self) -> int | None:
        """Tokens the model can attend to (prompt + generation); used by ChatAgent's history."""
        e = self.engine
        model = getattr(e, "model", None)
        n = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        return n or e.info.get("n_ctx")

    def count_tokens(self, text) -> int:
        """Tokens of a string, or of a conversation as rendered by the chat template (exact: the
        template's own tokens included)."""
        if isinstance(text, str):
            return self.engine.count_tokens(text)
        _check_prompt(text)
        return self.engine.count_tokens(_render(self.engine, text, None))

    def memory_footprint(self) -> int:
        """Bytes held by the model's weights and buffers (0 when not loaded)."""
        e = self._engine
        return int(e.memory_footprint()) if e is not None else 0

    def unload_model(self) -> None:
        """Free the model (waits for a generation in flight); the next call loads it again."""
        with self._lock:
            if self._engine is not None:
                self._engine.unload()
                self._engine = None

    async def __aenter__(self) -> LocalModelProvider:
        return self

    async def __aexit__(self, *exc) -> None:
        await asyncio.to_thread(self.unload_model)

    # --- generation ------------------------------------------------------------------------------
    @staticmethod
    def _params(temperature, max_tokens, top_p, top_k, repetition_penalty, stop, seed, batch_size=1):
        from mindbench.runtimes.base import GenParams

        # validate() coerces the numbers (temperature=5 -> 5.0) and rejects the rest, before
        # anything loads
        if stop is not None and not isinstance(stop, str):
            try:
                stop = tuple(stop)
            except TypeError:
                raise MindbenchError(f"stop must be a string or a list of strings, got {stop!r}") from None
        return GenParams(
            max_new_tokens=max_tokens,
            temperature=temperature,
            top_p=top_p,
            top_k=top_k,
            repetition_penalty=repetition_penalty,
            stop=stop or (),
            seed=seed,
            batch_size=batch_size,
        ).validate()

    def _run(self, prompts: list[str], system_prompt: str | None, params):
        with self._lock:
            engine = self._ensure_loaded()
            rendered = [_render(engine, p, system_prompt) for p in prompts]
            return [g.text for g in engine.generate(rendered, params)]

    async def generate(
        self,
        prompt: str | list[dict],
        system_prompt: str | None = None,
        temperature: float = 0.7,
        max_tokens: int = 256,
        top_p: float = 0.95,
        top_k: int = 50,
        repetition_penalty: float = 1.1,
        stop: Iterable[str] | str | None = None,
        seed: int = 0,
    ) -> str:
        """The model's answer to `prompt` (chat template with `system_prompt` for chat models,
        plain completion for base models), or its next turn in a conversation (a list of
        messages). temperature=0 is greedy decoding."""
        _check_prompt(prompt)
        params = self._params(temperature, max_tokens, top_p, top_k, repetition_penalty, stop, seed)
        [text] = await asyncio.to_thread(self._run, [prompt], system_prompt, params)
        return text

    async def generate_batch(
        self,
        prompts: list[str],
        system_prompt: str | None = None,
        temperature: float = 0.7,
        max_tokens: int = 256,
        top_p: float = 0.95,
        top_k: int = 50,
        repetition_penalty: float = 1.1,
        stop: Iterable[str] | str | None = None,
        seed: int = 0,
        batch_size: int = 8,
    ) -> list[str]:
        """Answers to many prompts through the engine's batched generation, in input order."""
        if isinstance(prompts, str) or (prompts and all(isinstance(p, dict) for p in prompts)):
            raise MindbenchError(
                "generate_batch takes a list of prompts; for one prompt or one conversation use generate()"
            )
        for p in prompts:
            _check_prompt(p)
        params = self._params(temperature, max_tokens, top_p, top_k, repetition_penalty, stop, seed, batch_size)
        if not prompts:
            return []
        return await asyncio.to_thread(self._run, list(prompts), system_prompt, params)

    async def stream(
        self,
        prompt: str | list[dict],
        system_prompt: str | None = None,
        temperature: float = 0.7,
        max_tokens: int = 256,
        top_p: float = 0.95,
        top_k: int = 50,
        repetition_penalty: float = 1.1,
        stop: Iterable[str] | str | None = None,
        seed: int = 0,
    ) -> AsyncIterator[str]:
        """Text pieces as they are generated: `async for piece in llm.stream(...)`.

        The engine's blocking iterator runs in a worker thread and hands pieces over through an
        asyncio.Queue; leaving the loop early stops the generation."""
        _check_prompt(prompt)
        params = self._params(temperature, max_tokens, top_p, top_k, repetition_penalty, stop, seed)
        loop = asyncio.get_running_loop()
        q: asyncio.Queue = asyncio.Queue()
        cancel = threading.Event()
        end = object()

        def put(item):
            try:
                loop.call_soon_threadsafe(q.put_nowait, item)
            except RuntimeError:  # the loop is gone; nobody is listening any more
                cancel.set()

        def work():
            try:
                with self._lock:
                    engine = self._ensure_loaded()
                    pieces = engine.stream(_render(engine, prompt, system_prompt), params)
                    try:
                        for piece in pieces:
                            if cancel.is_set():
                                break
                            put(piece)
                    finally:
                        pieces.close()
            except BaseException as e:
                put(_Failed(e))
            finally:
                put(end)

        worker = loop.run_in_executor(None, work)
        try:
            while True:
                item = await q.get()
                if item is end:
                    break
                if isinstance(item, _Failed):
                    raise item.error
                yield item
        finally:
            cancel.set()
            await asyncio.shield(worker)


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


ROLES = ("system", "user", "assistant")


def _check_prompt(prompt) -> None:
    # An empty or blank prompt would load the model and generate up to max_tokens from nothing:
    # refused before anything loads, like every other malformed prompt.
    if isinstance(prompt, str):
        if not prompt.strip():
            raise MindbenchError(
                "prompt is empty" + (" (only whitespace)" if prompt else "") + ": give the text the model should answer"
            )
        return
    if not isinstance(prompt, (list, tuple)) or not prompt:
        raise MindbenchError(
            f"prompt must be a string or a non-empty list of chat messages, got {type(prompt).__name__}"
        )
    for i, m in enumerate(prompt):
        if not (isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str)):
            raise MindbenchError(f"message {i} must be a dict with role in {ROLES} and string content, got {m!r:.80}")
    if not any(m["content"].strip() for m in prompt):
        raise MindbenchError("every message of the conversation is empty: give the text the model should answer")


def _render(engine, prompt, system_prompt: str | None) -> str:
    """A string through engine.render; a conversation through the chat template, with
    `system_prompt` put first unless the conversation already has a system message."""
    if isinstance(prompt, str):
        return engine.render(prompt, system_prompt)
    messages = [dict(m) for m in prompt]
    if system_prompt and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": system_prompt})
    return engine.render_messages(messages)
