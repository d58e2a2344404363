"""Speed: prefill tok/s, decode tok/s and time to first token, after warm-up, repeated.

Why separate prefill and decode: prefill is compute-bound (all prompt tokens in one pass),
decode is memory-bandwidth-bound (every weight read once per token), and quantization moves
them differently. Why warm-up: the first run pays for kernel selection, lazy init and cold caches
(llama-bench and optimum-benchmark discard it too). Tokenization is never timed: the engine's
`timed_run` feeds a synthetic prompt of exactly `prompt_tokens` ids.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


@dataclass
class Stat:
    mean: float
    std: float   # sample standard deviation (n-1); 0 when n == 1
    n: int

    def to_dict(self) -> dict:
        return asdict(self)


def stat(values) -> Stat:
    vals = [float(v) for v in values]
    if not vals:
        raise ValueError("no values")
    n = len(vals)
    mean = sum(vals) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in vals) / (n - 1)) if n > 1 else 0.0
    return Stat(round(mean, 4), round(std, 4), n)


@dataclass
class SpeedResult:
    prefill_tok_s: Stat
    decode_tok_s: Stat
    ttft_ms: Stat
    prompt_tokens: int
    new_tokens: int

    def to_dict(self) -> dict:
        return {"prefill_tok_s": self.prefill_tok_s.to_dict(), "decode_tok_s": self.decode_tok_s.to_dict(),
                "ttft_ms": self.ttft_ms.to_dict()}


def measure_speed(engine, prompt_tokens: int = 512, new_tokens: int = 128, repeats: int = 3,
                  warmup: int = 1) -> SpeedResult:
    """Run `engine.timed_run` `warmup` times (discarded) then `repeats` times."""
    if repeats < 1:
        raise ValueError("repeats must be at least 1")
    if new_tokens < 2:
        raise ValueError("new_tokens must be at least 2 (decode speed needs a token after the first)")
    for _ in range(warmup):
        engine.timed_run(prompt_tokens, new_tokens)
    timings = [engine.timed_run(prompt_tokens, new_tokens) for _ in range(repeats)]
    return SpeedResult(
        prefill_tok_s=stat(t.prefill_tok_s for t in timings),
        decode_tok_s=stat(t.decode_tok_s for t in timings),
        ttft_ms=stat(t.ttft_s * 1000 for t in timings),
        prompt_tokens=prompt_tokens, new_tokens=new_tokens)
