"""The transformers engine: one model loaded by `mindbench.runtimes.transformers.loading.load`, behind the Engine interface.

What it adds on top of `model.generate`:
- continuous batching (runtimes/hf_pool.py): prompts sorted by token length, at most
  `batch_size` rows decode together, left-padded (decoder-only models continue from the right
  edge); a row leaves the batch the step it ends and the next prompt takes its slot; results
  come back in input order, and to an `on_result` callback as each one ends;
- per-sequence stop strings: each row of a batch ends at its own first stop string, even when
  the string ends inside a token (e.g. "```" inside the token "```\\n"), and the text is cut
  before it;
- a repetition penalty that ignores the left padding, so a prompt gives the same greedy text
  alone and in a batch (transformers' own penalty also penalises the pad token, which is often
  the EOS token, so padded rows would end later than the same prompt alone);
- `timed_run`: prefill and decode timed separately on a synthetic prompt, no tokenization inside
  the timed region;
- `unload` that really gives the memory back.

Fault injection: with the environment variable MINDBENCH_FAULT=corrupt_prompt (or
corrupt_prompt@int4 for one precision only; same "kind[@precision],..." list as the worker's
faults), `render()` drops the chat template and shuffles the prompt's words (deterministically).
The CI regression-gate test uses it to inject a real quality regression through the whole
pipeline; never set it otherwise.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import queue
import random
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from mindbench.errors import MindbenchError, OutOfMemoryError, faults, is_oom
from mindbench.measure.device import is_cuda
from mindbench.runtimes.base import Engine, Generation, GenParams, Timing, end_step, slow_decode_fault
from mindbench.runtimes.transformers import onednn
from mindbench.runtimes.transformers import pool as hf_pool

# A fixed English paragraph whose token ids, repeated, make the synthetic prompts of timed_run.
# Real text (not random ids) keeps attention patterns and the first-token argmax realistic.
_FILLER = (
    "The quick brown fox jumps over the lazy dog while the river runs quietly past the old "
    "mill, and the children count the boats that drift toward the sea in the late afternoon. "
)


def _fault_active(kind: str, precision: str) -> bool:
    return kind in faults(precision)


def _fault_corrupt(prompt: str) -> str:
    """MINDBENCH_FAULT=corrupt_prompt: the words of the prompt in a shuffled, repeatable order."""
    words = prompt.split()
    # Seeded by the word count, not hash(), so every process garbles the same prompt the same way.
    random.Random(len(words)).shuffle(words)
    return " ".join(words)


@dataclass
class TransformersEngine(Engine):
    model: Any = field(default=None, repr=False)
    tokenizer: Any = field(default=None, repr=False)
    # the last generate()'s batching counters (forwards, drafted, accepted): benchmarks read them
    pool_stats: dict = field(default_factory=dict, repr=False)

    # --- construction ------------------------------------------------------------------------
    @classmethod
    def load(cls, model, precision: str = "fp32", device: str = "auto", **load_kwargs) -> TransformersEngine:
        """Load `model` (name or ModelSpec) through mindbench.runtimes.transformers.loading at `precision` on `device`."""
        from mindbench.runtimes.transformers.loading import load

        return cls.from_loaded(load(model, precision, device, **load_kwargs))

    @classmethod
    def from_loaded(cls, loaded) -> TransformersEngine:
        return cls.wrap(
            loaded.model,
            loaded.tokenizer,
            loaded.spec,
            precision=loaded.precision,
            device=loaded.device,
            dtype=loaded.dtype,
            load_s=loaded.load_s,
            info=dict(loaded.info),
        )

    @classmethod
    def wrap(
        cls,
        model,
        tokenizer,
        spec,
        *,
        precision: str = "fp32",
        device: str = "cpu",
        dtype: str | None = None,
        load_s: float = 0.0,
        info: dict | None = None,
    ) -> TransformersEngine:
        """An engine around an already loaded model and tokenizer (tests, notebooks)."""
        if tokenizer is not None:
            if tokenizer.pad_token_id is None:
                # Batching needs a pad id; EOS is the usual choice and is never attended to (mask 0).
                tokenizer.pad_token = tokenizer.eos_token
            tokenizer.padding_side = "left"
        model.eval()
        dtype = dtype or str(next(model.parameters()).dtype).replace("torch.", "")
        info = dict(info or {})
        # Every path of the engine (quality, timing, fidelity, the provider) runs the same kernels,
        # so the speed it reports is the speed its answers were produced at.
        info["linear_kernel"] = onednn.enable(model, device)
        return cls(
            runtime="transformers",
            spec=spec,
            precision=precision,
            device=device,
            dtype=dtype,
            load_s=load_s,
            info=info,
            model=model,
            tokenizer=tokenizer,
        )

    # --- prompts -----------------------------------------------------------------------------
    def _need_tokenizer(self):
        if self.tokenizer is None:
            if self.model is None:
                raise MindbenchError(f"{self.spec.id} was unloaded; load it again to generate")
            raise MindbenchError(
                f"{self.spec.id} was loaded without weights or tokenizer (--no-weights): it can be "
                f"timed, not asked; load it with its weights to generate text"
            )
        return self.tokenizer

    @property
    def chat(self) -> bool:
        # Ad-hoc Hub specs say chat=True until the tokenizer is seen; a model without a template
        # is a base model whatever the spec guessed.
        return bool(self.spec.chat and getattr(self.tokenizer, "chat_template", None))

    def render(self, prompt: str, system_prompt: str | None = None) -> str:
        if _fault_active("corrupt_prompt", self.precision):
            return _fault_corrupt(f"{system_prompt}\n\n{prompt}" if system_prompt else prompt)
        self._need_tokenizer()
        if not self.chat:
            return f"{system_prompt}\n\n{prompt}" if system_prompt else prompt
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        return self.render_messages(messages + [{"role": "user", "content": prompt}])

    def render_messages(self, messages: list[dict]) -> str:
        self._need_tokenizer()
        if not self.chat:
            # A base model reads a conversation as a plain transcript and continues it.
            lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
            return "\n".join(lines) + "\nAssistant:"
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def _encode(self, text: str) -> list[int]:
        tok = self.tokenizer
        # Rendered chat prompts already carry their BOS; adding another one changes the output.
        add = not (tok.bos_token and text.startswith(tok.bos_token))
        ids = tok(text, add_special_tokens=add)["input_ids"]
        if not ids:  # an empty prompt on a tokenizer without BOS: start from BOS/EOS, as "nothing"
            ids = [tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id]
        return ids

    def count_tokens(self, text: str) -> int:
        return len(self._need_tokenizer()(text, add_special_tokens=False)["input_ids"])

    def _decode(self, ids: list[int]) -> str:
        # No space clean-up: stream() decodes growing prefixes and must agree with generate().
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    # --- generation --------------------------------------------------------------------------
    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for src in (getattr(self.model.generation_config, "eos_token_id", None), self.tokenizer.eos_token_id):
            if isinstance(src, int):
                ids.add(src)
            elif src:
                ids.update(src)
        return ids

    def _gen_kwargs(self, params: GenParams, pad_lens: list[int], extra_criteria=()) -> dict:
        """generate() kwargs: the decoding rule as our own processor list, so its order and its
        pad handling are ours (penalty first, then temperature, top-k, top-p, as transformers does)."""
        from transformers import GenerationConfig
        from transformers.generation import (
            LogitsProcessorList,
            StoppingCriteriaList,
            TemperatureLogitsWarper,
            TopKLogitsWarper,
            TopPLogitsWarper,
        )

        greedy = params.temperature == 0
        # A fresh config: the model's own defaults (max_length=20, a sampling temperature, ...)
        # must not leak into a benchmark. Neutral values keep transformers from adding its own
        # processors, which would then run twice; they are set only when sampling, because with
        # do_sample=False transformers warns about any sampling flag that differs from its default.
        neutral = {} if greedy else dict(temperature=1.0, top_k=0, top_p=1.0)
        cfg = GenerationConfig(
            max_new_tokens=params.max_new_tokens,
            do_sample=not greedy,
            repetition_penalty=1.0,
            eos_token_id=sorted(self._eos_ids()),
            pad_token_id=self.tokenizer.pad_token_id,
            bos_token_id=self.tokenizer.bos_token_id,
            **neutral,
        )
        procs = LogitsProcessorList()
        if params.repetition_penalty != 1.0:
            procs.append(_helpers().PadAwareRepetitionPenalty(params.repetition_penalty, pad_lens))
        if not greedy:
            # Sampling parameters only when sampling: they mean nothing for greedy decoding.
            if params.temperature != 1.0:
                procs.append(TemperatureLogitsWarper(params.temperature))
            if params.top_k > 0:
                procs.append(TopKLogitsWarper(params.top_k))
            if params.top_p < 1.0:
                procs.append(TopPLogitsWarper(params.top_p))
        criteria = StoppingCriteriaList(list(extra_criteria))
        return dict(generation_config=cfg, logits_processor=procs, stopping_criteria=criteria)

    @contextlib.contextmanager
    def _oom_guard(self, what: str):
        """torch's out-of-memory errors -> OutOfMemoryError carrying the user's document's advice
        (the harness records either as status "oom")."""
        try:
            yield
        except Exception as e:
            if not is_oom(e):
                raise
            if is_cuda(self.device):
                import torch

                torch.cuda.empty_cache()  # hand back what the failed step had reserved
            raise OutOfMemoryError(f"{what} with {self.spec.id} at {self.precision} on {self.device}") from e

    def _seed(self, seed: int) -> None:
        import torch

        torch.manual_seed(seed)  # seeds the CPU and every CUDA device's generator

    def _batch_tensors(self, rows: list[list[int]]):
        import torch

        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=self.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=self.device)
        return ids, mask, [width - len(r) for r in rows]

    def _fit(self, ids: list[int], max_new: int) -> list[int]:
        """Keep the end of a prompt too long for the context (its question and generation prompt)."""
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and len(ids) + max_new > limit:
            keep = max(1, limit - max_new)
            warnings.warn(
                f"prompt of {len(ids)} tokens cut to its last {keep} to fit the {limit}-token context", stacklevel=2
            )
            return ids[-keep:]
        return ids

    def generate(self, prompts: list[str], params: GenParams, on_result=None) -> list[Generation]:
        """Batched generation over rendered prompts; results in input order. `on_result(i,
        generation)` is called as each prompt finishes (the code suite hands finished programs
        to the sandbox while the rest still generate)."""
        import torch

        params.validate()
        self._need_tokenizer()
        if not prompts:
            return []
        if _fault_active("corrupt_prompt", self.precision):
            # The whole prompt as sent, not only the rendered user turn: a suite that opens the
            # reply for the model (the code suite's function header) must not hand it a clean
            # context past the garbled turn, or the fault would barely show.
            prompts = [_fault_corrupt(p) for p in prompts]
        encoded = [self._fit(self._encode(p), params.max_new_tokens) for p in prompts]
        # Similar lengths together waste the least compute on padding (prompts that join the
        # running batch together are prefilled together).
        order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]))
        results: list[Generation | None] = [None] * len(prompts)
        eos = self._eos_ids()

        def done(i: int, new: list[int], stopped_at: int | None) -> None:
            results[i] = self._finish(new, params, eos, stopped_at)
            if on_result is not None:
                on_result(i, results[i])

        self._seed(params.seed)
        with (
            torch.inference_mode(),
            self._oom_guard(
                f"generating a batch of {min(params.batch_size, len(prompts))} "
                f"(up to {params.max_new_tokens} new tokens)"
            ),
        ):
            self.pool_stats = hf_pool.decode_pool(self, [(i, encoded[i]) for i in order], params, eos, done)
        return results  # type: ignore[return-value]

    def _forward_params(self):
        import inspect

        return inspect.signature(self.model.forward).parameters

    def _finish(self, new: list[int], params: GenParams, eos: set[int], stopped_at: int | None) -> Generation:
        """One row's ids -> Generation: cut at EOS or the first stop string, count real tokens."""
        n, reason = len(new), "length"
        for j, t in enumerate(new):
            if t in eos:
                n, reason = j + 1, "eos"
                break
        if stopped_at is not None and stopped_at <= n:
            n, reason = stopped_at, "stop"
        text = self._decode(new[:n])
        cut = _first_stop(text, params.stop)
        if cut is not None:
            text, reason = text[:cut], "stop"
        return Generation(text=text, tokens=n, finish_reason=reason)

    def stream(self, prompt: str, params: GenParams) -> Iterator[str]:
        """Text pieces as they are generated (batch 1). Their concatenation equals the text of
        generate([prompt]) for greedy decoding. Closing the iterator early stops generation."""
        import torch

        params.validate()
        self._need_tokenizer()
        ids, mask, pad_lens = self._batch_tensors([self._fit(self._encode(prompt), params.max_new_tokens)])
        streamer, cancel = _helpers().QueueStreamer(), threading.Event()
        stop = _helpers().StopOnStrings(self, params.stop, ids.shape[1]) if params.stop else None
        kw = self._gen_kwargs(params, pad_lens, [c for c in (stop, _helpers().Cancelled(cancel)) if c])

        def work():
            try:
                self._seed(params.seed)
                with torch.inference_mode(), self._oom_guard("streaming"):
                    self.model.generate(input_ids=ids, attention_mask=mask, streamer=streamer, **kw)
            except BaseException as e:  # handed to the consumer, who re-raises it
                streamer.q.put(e)
            finally:
                streamer.q.put(None)

        thread = threading.Thread(target=work, name="mindbench-stream", daemon=True)
        thread.start()
        eos, got, sent = self._eos_ids(), [], 0
        # Hold back as many characters as a stop string could still be completing.
        hold = max((len(s) for s in params.stop), default=1) - 1
        try:
            while True:
                item = streamer.q.get()
                if isinstance(item, BaseException):
                    raise item
                if item is None:
                    break
                ended = False
                for t in item:
                    if t in eos:
                        ended = True
                        break
                    got.append(t)
                text = self._decode(got)
                cut = _first_stop(text, params.stop)
                if cut is not None:
                    if cut > sent:
                        yield text[sent:cut]
                    return
                if ended:
                    break
                safe = len(text) - hold
                while safe > sent and text[safe - 1] == "\ufffd":  # half of a multi-byte character
                    safe -= 1
                if safe > sent:
                    yield text[sent:safe]
                    sent = safe
            text = self._decode(got)
            if len(text) > sent:
                yield text[sent:]
        finally:
            cancel.set()
            thread.join()

    # --- timing ------------------------------------------------------------------------------
    def timed_run(self, prompt_tokens: int, new_tokens: int) -> Timing:
        """Greedy prefill + decode at batch 1 on a synthetic prompt of exactly prompt_tokens ids.

        prefill_s: one forward over the prompt (KV cache filled); ttft_s: that plus choosing the
        first token; decode_s: the remaining new_tokens - 1 single-token forwards on the cache.
        Everything is prepared before the clock starts; CUDA is synchronised at each mark.
        """
        import torch

        if prompt_tokens < 1 or new_tokens < 2:
            raise MindbenchError(
                f"timed_run needs prompt_tokens >= 1 and new_tokens >= 2, got {prompt_tokens}, {new_tokens}"
            )
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit and prompt_tokens + new_tokens > limit:
            raise MindbenchError(
                f"prompt_tokens + new_tokens = {prompt_tokens + new_tokens} exceeds the model's "
                f"{limit}-token context; use fewer --prompt-tokens or --new-tokens"
            )
        if self.model is None:
            raise MindbenchError(f"{self.spec.id} was unloaded; load it again to time it")
        if self.tokenizer is not None:
            filler = self.tokenizer(_FILLER, add_special_tokens=False)["input_ids"]
        else:  # a --no-weights model: any fixed ids inside the vocabulary will do
            filler = [(7919 * i) % self.model.config.vocab_size for i in range(1, 65)]
        ids = (filler * (prompt_tokens // len(filler) + 1))[:prompt_tokens]
        prompt = torch.tensor([ids], device=self.device)
        cuda = is_cuda(self.device)
        sync = torch.cuda.synchronize if cuda else (lambda: None)
        forward = self._forward_fn()
        with torch.inference_mode(), self._oom_guard(f"timing {prompt_tokens}+{new_tokens} tokens"):
            sync()
            t0 = time.perf_counter()
            logits, cache = forward(prompt, None)
            sync()
            t1 = time.perf_counter()
            nxt = logits[:, -1, :].argmax(-1, keepdim=True)
            sync()
            t2 = time.perf_counter()
            steps, slow = [], slow_decode_fault(self.precision)
            for _ in range(new_tokens - 1):
                ts = time.perf_counter()
                logits, cache = forward(nxt, cache)
                nxt = logits[:, -1, :].argmax(-1, keepdim=True)
                sync()  # per step, as a streaming user's host sees each token (inter-token latency)
                end_step(ts, steps, slow)
            sync()
            t3 = time.perf_counter()
        return Timing(
            prompt_tokens=prompt_tokens,
            new_tokens=new_tokens,
            prefill_s=t1 - t0,
            ttft_s=t2 - t0,
            decode_s=t3 - t2,
            step_s=steps,
        )

    def _forward_fn(self):
        """forward(ids, cache) -> (last logits, cache), across transformers' cache-argument names."""
        import inspect

        names = inspect.signature(self.model.forward).parameters
        cache_kw = "cache" if "cache" in names else "past_key_values"
        keep = {"logits_to_keep": 1} if "logits_to_keep" in names else {}

        def forward(ids, cache):
            kw = {cache_kw: cache} if cache is not None else {}
            out = self.model(input_ids=ids, use_cache=True, **keep, **kw)
            new_cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
            return out.logits, new_cache

        return forward

    # --- teacher forcing (fidelity) ----------------------------------------------------------
    def fidelity_ids(self, text: str) -> list[int]:
        return self._encode(text)

    def vocab_pieces(self) -> list[str]:
        tok = self._need_tokenizer()
        return tok.convert_ids_to_tokens(list(range(len(tok))))

    def next_token_logprobs(self, ids: list[int], window: int = 512):
        """One forward per window (no KV cache, no generation); log_softmax in float32 whatever
        the weights' dtype, so precisions differ only by what the model computed."""
        import torch

        if self.model is None:
            raise MindbenchError(f"{self.spec.id} was unloaded; load it again to score text")
        limit = getattr(self.model.config, "max_position_embeddings", None) or window
        window = max(2, min(window, limit))
        n = len(ids) - 1
        for start in range(0, n, window):
            # inputs ids[start:start+rows] predict ids[start+1:start+rows+1]
            x = torch.tensor([ids[start : start + min(window, n - start)]], device=self.device)
            with torch.inference_mode(), self._oom_guard(f"scoring {x.shape[1]} tokens"):
                logits = self.model(input_ids=x, use_cache=False).logits[0]
            yield torch.log_softmax(logits.float(), dim=-1).cpu()

    # --- memory ------------------------------------------------------------------------------
    def weight_bytes(self) -> int:
        """Bytes of weights read per decoded token: every parameter and buffer as stored (bnb
        int4/int8 weights are packed, so their real size) plus the bnb scales (4-bit absmax and
        nested state, 8-bit SCB) that get_memory_footprint() leaves out. The embedding table is
        counted whole though a token reads one row of it; most small models tie it to the LM
        head, which is read whole, and tied weights are counted once."""
        total, seen = 0, set()
        for t in list(self.model.parameters()) + list(self.model.buffers()):
            if id(t) in seen:
                continue
            seen.add(id(t))
            total += t.numel() * t.element_size()
            qs = getattr(t, "quant_state", None)
            if qs is not None:
                for part in (getattr(qs, "absmax", None), getattr(getattr(qs, "state2", None), "absmax", None)):
                    if part is not None:
                        total += part.numel() * part.element_size()
            scb = getattr(t, "SCB", None)
            if scb is not None:
                total += scb.numel() * scb.element_size()
        return total

    def memory_footprint(self) -> int:
        return int(self.model.get_memory_footprint())

    def unload(self) -> None:
        """Drop the model and give its memory back to the OS (and the GPU's caching allocator)."""
        if self.model is None:
            return
        cuda = is_cuda(self.device)
        onednn.disable(self.model)  # a model handed to wrap() by its owner goes back as it came
        self.model = None
        self.tokenizer = None
        gc.collect()
        if sys.platform.startswith("linux"):
            # glibc keeps freed heap arenas mapped for reuse, so RSS would not drop after the
            # tensors are freed; malloc_trim hands those pages back to the OS.
            try:
                import ctypes

                ctypes.CDLL("libc.so.6").malloc_trim(0)
            except (OSError, AttributeError):
                pass
        if cuda:
            import torch

            torch.cuda.empty_cache()


# --- helpers for generate -------------------------------------------------------------------
def _first_stop(text: str, stops) -> int | None:
    hits = [i for i in (text.find(s) for s in stops if s) if i >= 0]
    return min(hits) if hits else None


@functools.cache
def _helpers() -> SimpleNamespace:
    """The transformers subclasses used by generate and stream, defined on first use so that
    importing this module does not import torch or transformers."""
    import torch
    from transformers.generation import LogitsProcessor, StoppingCriteria
    from transformers.generation.streamers import BaseStreamer

    class StopOnStrings(StoppingCriteria):
        """Per-row stop strings: a row is done once its generated text contains a stop string.

        Decodes only the tail of each row (enough tokens to hold the longest string), so the
        check costs little next to a forward pass; unlike transformers' StopStringCriteria, which
        matches token suffixes, it also fires when the string ends inside a token ("```" inside
        "```\\n"). done_at[row] is the number of new tokens when the row stopped.
        """

        def __init__(self, engine, stops, prompt_len):
            self.engine, self.stops, self.prompt_len = engine, tuple(s for s in stops if s), prompt_len
            # Every token decodes to at least one byte, so this many tokens cover the longest
            # string, plus slack for a token that began before it.
            self.window = max(len(s.encode()) for s in self.stops) + 2
            self.done_at: list[int | None] = []

        def __call__(self, input_ids, scores, **kwargs):
            rows, cur = input_ids.shape[0], input_ids.shape[1] - self.prompt_len
            if not self.done_at:
                self.done_at = [None] * rows
            tails = input_ids[:, max(self.prompt_len, input_ids.shape[1] - self.window) :].tolist()
            for r in range(rows):
                if self.done_at[r] is None and any(s in self.engine._decode(tails[r]) for s in self.stops):
                    self.done_at[r] = cur
            return torch.tensor([d is not None for d in self.done_at], dtype=torch.bool, device=input_ids.device)

    class Cancelled(StoppingCriteria):
        """Ends generation when the stream's consumer has gone away."""

        def __init__(self, event: threading.Event):
            self.event = event

        def __call__(self, input_ids, scores, **kwargs):
            return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)

    class PadAwareRepetitionPenalty(LogitsProcessor):
        """transformers' repetition penalty (CTRL: divide positive logits, multiply negative ones,
        of every token already in the sequence) over the real tokens only. The left padding is
        replaced by the row's first real token, which the row contains anyway, so penalising it
        again changes nothing."""

        def __init__(self, penalty: float, pad_lens: list[int]):
            self.penalty, self.pad_lens = penalty, pad_lens

        def __call__(self, input_ids, scores):
            ids = input_ids
            if any(self.pad_lens):
                pads = torch.tensor(self.pad_lens, device=ids.device)
                pos = torch.arange(ids.shape[1], device=ids.device)[None, :]
                first = ids.gather(1, pads[:, None])
                ids = torch.where(pos < pads[:, None], first, ids)
            ids = ids.clamp(max=scores.shape[-1] - 1)
            score = scores.gather(1, ids)
            score = torch.where(score < 0, score * self.penalty, score / self.penalty)
            return scores.scatter(1, ids, score)

    class QueueStreamer(BaseStreamer):
        """Token ids into a queue; the consumer decodes (so stop strings and errors are ours)."""

        def __init__(self):
            self.q: queue.Queue = queue.Queue()
            self.prompt_seen = False

        def put(self, value):
            if not self.prompt_seen:  # generate() first hands over the prompt itself
                self.prompt_seen = True
                return
            self.q.put(value.reshape(-1).tolist())

        def end(self):
            pass  # the worker thread puts the end marker, also when generate() raises

    return SimpleNamespace(
        StopOnStrings=StopOnStrings,
        Cancelled=Cancelled,
        PadAwareRepetitionPenalty=PadAwareRepetitionPenalty,
        QueueStreamer=QueueStreamer,
    )
