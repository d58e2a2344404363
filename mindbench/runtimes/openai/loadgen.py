"""serve-bench's load generator: streamed requests of named shapes at a fixed concurrency (N users,
each sending its next request when the last one ends) or at a request rate with Poisson arrivals,
each request timed chunk by chunk (measure/serving.py turns the timings into figures).

Why a small client of our own rather than GuideLLM or `vllm bench serve`: see docs/serving.md
(in short: neither installs here without pulling in a second ML stack, and both measure exactly
what this does: TTFT, ITL, E2E, goodput from streamed OpenAI requests). Threads, not asyncio:
`http.client` reads each chunk the moment it arrives, and a thread per request in flight costs
nothing next to a token's milliseconds at the concurrencies a sweep uses (<= 64).

Every prompt opens with a fresh number, so no server answers from a cached prefix of an earlier
request (vLLM's prefix caching and llama-cpp-python's prompt reuse would otherwise turn every
prefill after the first into a lookup). Output length is forced where the server allows
(min_tokens / ignore_eos), so each request of a shape costs the same.
"""

from __future__ import annotations

import queue
import random
import re
import threading
import time

from mindbench.errors import InputError
from mindbench.measure.serving import RequestResult

# name -> (prompt tokens, output tokens): the shapes vLLM's and GuideLLM's docs use most.
SHAPES = {"chat": (512, 128), "code": (256, 256), "long": (2048, 128)}


def parse_shapes(text: str) -> list[tuple[str, int, int]]:
    """ "chat,code" or "mine=300/40" (prompt/output tokens) -> [(name, prompt, output)]."""
    out = []
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        if part in SHAPES:
            out.append((part, *SHAPES[part]))
            continue
        m = re.fullmatch(r"([A-Za-z][\w-]*)=(\d+)/(\d+)", part)
        if not m or int(m.group(2)) < 1 or int(m.group(3)) < 2:
            raise InputError(
                f"--shape {part!r}: use {', '.join(SHAPES)} or NAME=PROMPT/OUTPUT tokens "
                f"(e.g. short=128/32, output at least 2)"
            )
        out.append((m.group(1), int(m.group(2)), int(m.group(3))))
    if not out:
        raise InputError(f"--shape: give at least one of {', '.join(SHAPES)}")
    return out


def parse_levels(text: str | None, kind: str, *, integer: bool) -> list:
    """ "1,2,4,8" -> [1, 2, 4, 8] (positive); one line on anything else."""
    vals = []
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        try:
            v = int(part) if integer else float(part)
        except ValueError:
            v = None
        if v is None or v <= 0:
            raise InputError(
                f"--{kind} {text!r}: give positive {'whole numbers' if integer else 'numbers'}, e.g. "
                f"{'1,2,4,8' if integer else '0.5,1,2'}"
            )
        vals.append(v)
    return vals


class PromptMaker:
    """Prompts of one shape: a base text of the shape's length (measured once), each request's
    copy opening with its own number. The number changes a few tokens, so the prompt length of
    each request is counted again where the server's usage does not say it."""

    def __init__(self, engine, prompt_tokens: int, seed: int = 0):
        self.engine = engine
        self.rng = random.Random(seed)
        base = engine.synthetic_prompt(prompt_tokens)
        self.body = base.split(". ", 1)[1] if ". " in base else base

    def next(self) -> str:
        return f"{self.rng.randrange(100000, 1000000)}. {self.body}"


def _extra(engine, output_tokens: int) -> dict:
    from mindbench.runtimes.openai.engine import EXTRA_FIELDS

    fields = EXTRA_FIELDS.get(engine.flavor, set())
    extra = {}
    if "min_tokens" in fields:
        extra["min_tokens"] = output_tokens
    if "ignore_eos" in fields:
        extra["ignore_eos"] = True
    if "repeat_penalty" in fields:
        extra["repeat_penalty"] = 1.0
    return extra


def one_request(engine, prompt: str, output_tokens: int, shape: str) -> RequestResult:
    """Send one streamed request; failures are kept as results with their error."""
    r = RequestResult(start=time.perf_counter(), shape=shape)
    try:
        t0, chunks, usage = engine.timed_stream(prompt, _extra(engine, output_tokens), output_tokens)
        r.start = t0
        r.end = time.perf_counter()
        r.chunk_times = [t for t, _ in chunks]
        r.first = r.chunk_times[0] if r.chunk_times else None
        r.output_tokens = int((usage or {}).get("completion_tokens") or len(chunks))
        if usage and usage.get("prompt_tokens"):
            r.prompt_tokens = int(usage["prompt_tokens"])
        if r.first is None:
            r.error = "no token streamed"
    except Exception as e:  # noqa: BLE001 - a failed request is a figure of the level, not a crash
        r.end = None
        r.error = f"{type(e).__name__}: {str(e)[:160]}"
    return r


def run_concurrency(
    engine, shape: tuple[str, int, int], concurrency: int, requests: int, *, seed: int = 0, progress=None
) -> list[RequestResult]:
    """`concurrency` users, each sending its next request as soon as its last one ends, until
    `requests` have been sent."""
    name, p, o = shape
    maker = PromptMaker(engine, p, seed)
    prompts = [maker.next() for _ in range(requests)]
    todo: queue.Queue = queue.Queue()
    for pr in prompts:
        todo.put(pr)
    results: list[RequestResult] = []
    lock = threading.Lock()

    def user():
        while True:
            try:
                pr = todo.get_nowait()
            except queue.Empty:
                return
            r = one_request(engine, pr, o, name)
            with lock:
                results.append(r)
                if progress:
                    progress(len(results), requests)

    threads = [threading.Thread(target=user, name=f"mindbench-user-{i}", daemon=True) for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _count_prompts(engine, results, prompts)
    return results


def run_rate(
    engine, shape: tuple[str, int, int], rate: float, requests: int, *, seed: int = 0, progress=None
) -> list[RequestResult]:
    """Requests arriving as a Poisson process of `rate` per second (exponential gaps, seeded),
    each sent at its time whatever is still in flight (an open loop, as users arrive)."""
    name, p, o = shape
    maker = PromptMaker(engine, p, seed)
    prompts = [maker.next() for _ in range(requests)]
    rng = random.Random(seed + 1)
    results: list[RequestResult] = []
    lock = threading.Lock()

    def send(pr):
        r = one_request(engine, pr, o, name)
        with lock:
            results.append(r)
            if progress:
                progress(len(results), requests)

    threads = []
    t_next = time.perf_counter()
    for pr in prompts:
        delay = t_next - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        th = threading.Thread(target=send, args=(pr,), daemon=True)
        th.start()
        threads.append(th)
        t_next += rng.expovariate(rate)
    for th in threads:
        th.join()
    _count_prompts(engine, results, prompts)
    return results


def _count_prompts(engine, results, prompts) -> None:
    """Prompt tokens of requests whose server did not report usage, counted after the level
    (never inside its timing)."""
    missing = [r for r in results if r.prompt_tokens is None]
    if not missing:
        return
    try:
        n = engine.prompt_tokens(prompts[0])
    except Exception:
        return
    for r in missing:
        r.prompt_tokens = n
