"""The Engine interface: one loaded model on one runtime. Everything above (provider, harness,
suites, agents) talks to this and never to transformers or llama.cpp directly."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Iterator

from ..catalog import ModelSpec


@dataclass(frozen=True)
class GenParams:
    max_new_tokens: int = 256
    temperature: float = 0.7        # 0 means greedy
    top_p: float = 0.95
    top_k: int = 50
    repetition_penalty: float = 1.1
    stop: tuple[str, ...] = ()      # generation of a sequence ends at the first of these
    seed: int = 0
    batch_size: int = 8

    def validate(self) -> "GenParams":
        """A checked copy, numbers coerced to their types: callers pass temperature=5 or
        max_tokens=256.0 as often as 5.0 and 256, and transformers rejects an int temperature
        with a raw ValueError deep inside generate. Anything else is one clear error."""
        from ..errors import MindbenchError
        out = {}
        for name, kind in (("max_new_tokens", int), ("temperature", float), ("top_p", float),
                           ("top_k", int), ("repetition_penalty", float), ("seed", int),
                           ("batch_size", int)):
            v = getattr(self, name)
            label = "max_tokens" if name == "max_new_tokens" else name
            try:
                # bool is an int to Python, never a number a user meant; text is not a number
                if isinstance(v, (bool, str, bytes)) or not math.isfinite(float(v)):
                    raise ValueError
                f = float(v)
            except (TypeError, ValueError, OverflowError):
                raise MindbenchError(f"{label} must be a finite number, got {v!r}") from None
            if kind is int and not f.is_integer():
                raise MindbenchError(f"{label} must be a whole number, got {v!r}")
            out[name] = int(f) if kind is int else f
        stop = self.stop
        stop = (stop,) if isinstance(stop, str) else tuple(stop or ())
        if not all(isinstance(s, str) and s for s in stop):
            raise MindbenchError(f"stop must be non-empty strings, got {self.stop!r}")
        p = replace(self, stop=stop, **out)
        if p.max_new_tokens < 1:
            raise MindbenchError(f"max_tokens must be at least 1, got {p.max_new_tokens}")
        if p.temperature < 0:
            raise MindbenchError(f"temperature must be >= 0 (0 means greedy), got {p.temperature}")
        if not 0 < p.top_p <= 1:
            raise MindbenchError(f"top_p must be in (0, 1], got {p.top_p}")
        if p.top_k < 0:
            raise MindbenchError(f"top_k must be >= 0, got {p.top_k}")
        if p.repetition_penalty <= 0:
            raise MindbenchError(f"repetition_penalty must be > 0, got {p.repetition_penalty}")
        if p.batch_size < 1:
            raise MindbenchError(f"batch_size must be at least 1, got {p.batch_size}")
        return p


@dataclass
class Generation:
    text: str                       # generated text, cut before the stop string
    tokens: int                     # tokens generated (including any stop string tokens)
    finish_reason: str              # "stop" | "length" | "eos"


@dataclass
class Timing:
    prompt_tokens: int
    new_tokens: int
    prefill_s: float                # forward pass over the prompt
    ttft_s: float                   # prompt in -> first new token out
    decode_s: float                 # remaining new_tokens - 1 tokens

    @property
    def prefill_tok_s(self) -> float:
        return self.prompt_tokens / self.prefill_s

    @property
    def decode_tok_s(self) -> float:
        return (self.new_tokens - 1) / self.decode_s


@dataclass
class Engine:
    runtime: str
    spec: ModelSpec
    precision: str
    device: str
    dtype: str
    load_s: float
    info: dict = field(default_factory=dict)

    # --- what every runtime implements -------------------------------------------------------
    def render(self, prompt: str, system_prompt: str | None = None) -> str:
        """The prompt as the model should see it: chat template for chat models, plain for base."""
        raise NotImplementedError

    def render_messages(self, messages: list[dict]) -> str:
        """A whole conversation through the chat template (chat models only)."""
        raise NotImplementedError

    def generate(self, prompts: list[str], params: GenParams) -> list[Generation]:
        """Batched generation over already-rendered prompts, results in input order."""
        raise NotImplementedError

    def stream(self, prompt: str, params: GenParams) -> Iterator[str]:
        raise NotImplementedError

    def count_tokens(self, text: str) -> int:
        raise NotImplementedError

    def timed_run(self, prompt_tokens: int, new_tokens: int) -> Timing:
        """Time prefill and decode on a synthetic prompt of exactly prompt_tokens tokens
        (no tokenization inside the timed region), greedy, batch 1."""
        raise NotImplementedError

    def weight_bytes(self) -> int:
        """Bytes of weights read per decoded token (the roofline's numerator)."""
        raise NotImplementedError

    def memory_footprint(self) -> int:
        raise NotImplementedError

    def unload(self) -> None:
        raise NotImplementedError

    @property
    def chat(self) -> bool:
        return self.spec.chat
