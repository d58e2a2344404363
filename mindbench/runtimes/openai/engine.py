"""The Engine interface over an OpenAI-compatible endpoint: the server owns the model (and the
GPU), mindbench owns the measurement. The suites, the worker and the speed harness call it
exactly as they call an in-process engine.

Quality: the same prompt strings as an in-process cell. Where the model's chat template is known
(llama.cpp's /props, or the GGUF file of a server mindbench started, or a packaged model's file),
mindbench renders it itself, exactly as the llama.cpp engine does, and sends the text to
/v1/completions: the suites' prompts end inside the assistant's turn (the code protocol opens the
reply with the function's signature), which /v1/chat/completions cannot say. Without a template
(a vLLM deployment of a Hub model), chat models go through /v1/chat/completions, the reply's
opening sent as a final assistant message to continue (vLLM's `continue_final_message`); the
record says which (`info["api"]`). Greedy (temperature 0, a seed), repetition penalty as asked,
up to `params.batch_size` requests in flight.

Speed: one streamed request per timed run. TTFT is request sent -> first token, as a client sees
it (HTTP and any queueing included); decode is first -> last token over the tokens the server
counted (`usage`, else one per streamed chunk, which is what llama.cpp and vLLM send); prefill
tok/s is prompt tokens / TTFT, derived, and labelled so (`info["speed_derivation"]`).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from mindbench.errors import MindbenchError
from mindbench.runtimes.base import Engine, Generation, GenParams, Timing
from mindbench.runtimes.openai.client import Client, EndpointError

# Server families, told apart by what they answer (runtime.probe): which extra request fields
# each understands beyond OpenAI's, so greedy really is greedy and a timed run really decodes
# the tokens asked for. An unknown server gets the standard fields only.
EXTRA_FIELDS = {
    "llama-cpp-python": {"top_k", "repeat_penalty", "min_tokens"},
    "llama.cpp": {"top_k", "repeat_penalty", "ignore_eos", "n_probs"},
    "vllm": {"top_k", "repetition_penalty", "ignore_eos", "min_tokens"},
}
STREAM_USAGE = {"llama.cpp", "vllm", "openai-compatible"}  # honour stream_options.include_usage
TOPK = 20  # prompt log-probabilities per position for fidelity: OpenAI's and vLLM's default cap

# A chat conversation carried through Engine.render's string (no template known): the suites add
# the reply's opening after it, which becomes a final assistant message to continue.
_MARK, _END = "\x00mindbench-messages:", "\x00"

_FILLER = (
    "The quick brown fox jumps over the lazy dog while the river runs past the old mill, "
    "and the people of the town count the hours until the market opens again. "
)


class OpenAIEngine(Engine):
    """One served model behind an OpenAI-compatible endpoint. `tokenizer` (optional) is a
    vocab-only in-process engine of the same GGUF file: it renders the chat template and counts
    tokens exactly as the llama.cpp runtime does."""

    def __init__(
        self,
        client: Client,
        served: str,
        spec,
        *,
        runtime: str = "openai",
        precision: str = "served",
        flavor: str = "openai-compatible",
        info: dict | None = None,
        template=None,
        tokenizer=None,
        weight_bytes: int | None = None,
        load_s: float = 0.0,
        server=None,
    ):
        super().__init__(
            runtime=runtime,
            spec=spec,
            precision=precision,
            device=(info or {}).get("device", "server"),
            dtype=precision,
            load_s=load_s,
            info=dict(info or {}),
        )
        self.client = client
        self.served = served
        self.flavor = flavor
        self._template = template  # compiled jinja template (runtimes/llamacpp: compile_template)
        self._special: dict = {}
        self._tokenizer = tokenizer
        self._weight_bytes = weight_bytes
        self._server = server  # a launched server (llamacpp_server) this engine owns
        # Seeded from the OS, not a constant: a second run against the same long-running server
        # must not re-send the last run's openings (its prompt cache would skip the prefill).
        self._rng = random.Random()
        self._bos_offset: int | None = None
        self._convention: dict | None = None  # logprob_convention's probe, once per engine
        self._pieces = self._lookup = None  # _token_map's vocabulary strings, built on first use
        self.info.setdefault("api", "completions" if (template or tokenizer or not spec.chat) else "chat")
        self.info["speed_derivation"] = (
            "streamed requests: TTFT = sent -> first token (HTTP included); decode tok/s "
            "= (tokens - 1) / (last - first token); prefill tok/s = prompt tokens / TTFT "
            "(derived)"
        )

    # --- prompts ---------------------------------------------------------------------------
    def render(self, prompt: str, system_prompt: str | None = None) -> str:
        if self._tokenizer is not None:
            return self._tokenizer.render(prompt, system_prompt)
        if not self.chat:
            return f"{system_prompt}\n\n{prompt}" if system_prompt else prompt
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        return self.render_messages(messages + [{"role": "user", "content": prompt}])

    def render_messages(self, messages: list[dict]) -> str:
        if self._tokenizer is not None:
            return self._tokenizer.render_messages(messages)
        if self._template is not None:
            return self._template.render(
                messages=[dict(m) for m in messages], add_generation_prompt=True, **self._special
            )
        return _MARK + json.dumps([dict(m) for m in messages]) + _END

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` alone (no BOS), as the in-process engines count them."""
        if self._tokenizer is not None:
            return self._tokenizer.count_tokens(text)
        if self._bos_offset is None:
            self._bos_offset = len(self._server_tokenize(""))  # the BOS a server adds, if any
        return len(self._server_tokenize(text)) - self._bos_offset

    def prompt_tokens(self, text: str) -> int:
        """Tokens the server will see for `text` sent as a completion prompt (BOS included)."""
        if self._tokenizer is not None:
            return len(self._tokenizer._tokenize(text))
        return len(self._server_tokenize(text))

    def _server_tokenize(self, text: str) -> list[int]:
        """Ids as the server tokenizes a completion prompt (special tokens parsed, BOS added
        where the model wants one)."""
        if self.flavor == "llama-cpp-python":
            return self.client.post_json("/extras/tokenize", {"input": text, "model": self.served}, root=True)["tokens"]
        if self.flavor == "llama.cpp":
            return self.client.post_json(
                "/tokenize", {"content": text, "add_special": True, "parse_special": True}, root=True
            )["tokens"]
        if self.flavor == "vllm":
            out = self.client.post_json(
                "/tokenize", {"model": self.served, "prompt": text, "add_special_tokens": True}, root=True
            )
            return out["tokens"]
        raise NotImplementedError("this server has no tokenize endpoint")

    # --- requests ----------------------------------------------------------------------------
    def _sampling(self, params: GenParams) -> dict:
        body = {"temperature": params.temperature, "seed": params.seed, "max_tokens": params.max_new_tokens}
        if params.temperature > 0:
            body["top_p"] = params.top_p
        extra = EXTRA_FIELDS.get(self.flavor, set())
        if "top_k" in extra and params.temperature > 0:
            body["top_k"] = params.top_k
        # llama-cpp-python's server defaults repeat_penalty to 1.1: always say what was asked
        if "repeat_penalty" in extra:
            body["repeat_penalty"] = params.repetition_penalty
        if "repetition_penalty" in extra:
            body["repetition_penalty"] = params.repetition_penalty
        if params.stop:
            body["stop"] = list(params.stop)
        return body

    def _request(self, prompt: str, params: GenParams) -> tuple[str, dict]:
        """(path, body) for one rendered prompt."""
        body = {"model": self.served, **self._sampling(params)}
        if prompt.startswith(_MARK):
            head, _, opening = prompt[len(_MARK) :].partition(_END)
            messages = json.loads(head)
            if opening:  # the reply's opening: the model continues it
                messages.append({"role": "assistant", "content": opening})
                body.update(continue_final_message=True, add_generation_prompt=False)
            return "/chat/completions", {**body, "messages": messages}
        return "/completions", {**body, "prompt": prompt}

    def _complete(self, prompt: str, params: GenParams) -> Generation:
        path, body = self._request(prompt, params)
        out = self.client.post_json(path, body)
        choice = (out.get("choices") or [{}])[0]
        text = choice.get("text")
        if text is None:
            text = (choice.get("message") or {}).get("content") or ""
        usage = out.get("usage") or {}
        tokens = usage.get("completion_tokens")
        if tokens is None:
            tokens = self.count_tokens(text) if text else 0
        finish = choice.get("finish_reason") or "stop"
        return Generation(text=text, tokens=int(tokens), finish_reason="length" if finish == "length" else finish)

    def generate(self, prompts: list[str], params: GenParams, on_result=None) -> list[Generation]:
        """Every prompt as its own request, up to params.batch_size in flight; results in input
        order, each also reported through on_result(i, generation) as it ends (the code suite
        runs each program while the rest generate)."""
        params = params.validate()
        out: list = [None] * len(prompts)
        with ThreadPoolExecutor(
            max_workers=max(1, min(params.batch_size, len(prompts) or 1)), thread_name_prefix="mindbench-openai"
        ) as pool:
            futures = {pool.submit(self._complete, p, params): i for i, p in enumerate(prompts)}
            from concurrent.futures import as_completed

            for fut in as_completed(futures):
                i = futures[fut]
                out[i] = fut.result()
                if on_result is not None:
                    on_result(i, out[i])
        return out

    def stream(self, prompt: str, params: GenParams) -> Iterator[str]:
        path, body = self._request(prompt, params.validate())
        for ev in self.client.stream(path, body):
            if ev.chunk.text:
                yield ev.chunk.text

    def timed_stream(self, prompt: str, body_extra: dict, max_tokens: int):
        """One streamed greedy request: (sent, [(arrival, text)], usage or None)."""
        body = {
            "model": self.served,
            "prompt": prompt,
            "temperature": 0.0,
            "seed": 0,
            "max_tokens": max_tokens,
            **body_extra,
        }
        if self.flavor in STREAM_USAGE:
            body["stream_options"] = {"include_usage": True}
        chunks, usage = [], None
        t0 = time.perf_counter()
        for ev in self.client.stream("/completions", body):
            if ev.chunk.usage:
                usage = ev.chunk.usage
            if ev.chunk.text:
                chunks.append((ev.t, ev.chunk.text))
        return t0, chunks, usage

    # --- measurement -------------------------------------------------------------------------
    def synthetic_prompt(self, n: int) -> str:
        """A prompt of ordinary prose that the server reads as n tokens (BOS included), opening
        with a fresh number so no server can reuse a cached prefix of the last run
        (llama-cpp-python and vLLM both would). Without any tokenizer: about n tokens."""
        text = f"{self._rng.randrange(100000, 1000000)}. " + _FILLER * (n // 8 + 2)
        words = text.split(" ")
        try:
            self.prompt_tokens("")
        except NotImplementedError:
            return " ".join(words[: max(1, int(n * 0.75))])
        lo, hi = 1, len(words)
        while lo < hi:  # the most words that stay within n tokens
            mid = (lo + hi + 1) // 2
            if self.prompt_tokens(" ".join(words[:mid])) <= n:
                lo = mid
            else:
                hi = mid - 1
        return " ".join(words[:lo])

    def timed_run(self, prompt_tokens: int, new_tokens: int) -> Timing:
        """One streamed greedy request of about `prompt_tokens` prompt tokens (exactly, where
        the tokenizer is known) asking for `new_tokens` tokens, EOS ignored where the server
        allows (min_tokens / ignore_eos)."""
        if prompt_tokens < 1 or new_tokens < 2:
            raise MindbenchError("timed_run needs at least 1 prompt token and 2 new tokens")
        prompt = self.synthetic_prompt(prompt_tokens)
        extra = {}
        fields = EXTRA_FIELDS.get(self.flavor, set())
        if "min_tokens" in fields:
            extra["min_tokens"] = new_tokens  # a fixed number of tokens, EOS or not, as llama-bench
        if "ignore_eos" in fields:
            extra["ignore_eos"] = True
        if "repeat_penalty" in fields:
            extra["repeat_penalty"] = 1.0
        t0, chunks, usage = self.timed_stream(prompt, extra, new_tokens)
        if len(chunks) < 2:
            raise MindbenchError(
                f"{self.client.base_url}: a timed request streamed {len(chunks)} chunk(s); decode "
                f"speed needs at least 2 (does the server stream token by token?)"
            )
        times = [t for t, _ in chunks]
        n_new = int((usage or {}).get("completion_tokens") or len(chunks))
        try:
            n_prompt = int((usage or {}).get("prompt_tokens") or self.prompt_tokens(prompt))
        except NotImplementedError:
            n_prompt = prompt_tokens
        self.info["speed_tokens_from"] = "usage" if usage and usage.get("completion_tokens") else "streamed chunks"
        steps = [b - a for a, b in zip(times, times[1:])]
        return Timing(
            prompt_tokens=n_prompt,
            new_tokens=n_new,
            prefill_s=times[0] - t0,
            ttft_s=times[0] - t0,
            decode_s=times[-1] - times[0],
            step_s=steps,
        )

    def contention_probe(self):
        """What others took from the CPUs while a timed request ran (measure/speed.py's verdict).
        The server's own CPU time is this measurement's work, not contention: a server on this
        host (one mindbench started, or found listening on a loopback endpoint) is counted as
        ours. A remote server's host is out of sight: contention stays unknown there."""
        pids = list(getattr(self, "contention_pids", None) or local_server_pids(self.client.host, self.client.port))
        return ServedProbe(pids)

    def weight_bytes(self) -> int:
        """Bytes of weights when known (the GGUF file a launched server runs); 0 = not known
        (a remote server's weights are not mindbench's to guess)."""
        return int(self._weight_bytes or 0)

    def memory_footprint(self) -> int:
        """Weights plus the KV cache a launched llama.cpp server allocates for its context (as
        the in-process engine counts its own); 0 = not known."""
        return int(self._weight_bytes or 0) + int(getattr(self, "kv_bytes", 0) or 0)

    # --- fidelity: prompt log-probabilities (top-k only) -------------------------------------------
    # A server returns the top-k of each position at most, so the fidelity track's full KL cannot
    # be computed here; suites/fidelity.measure_topk computes its top-k form from these methods.
    topk_fidelity = True

    def fidelity_ids(self, text: str) -> list[int]:
        if self._tokenizer is None:
            raise NotImplementedError("no tokenizer for this endpoint")
        return self._tokenizer.fidelity_ids(text)

    def vocab_pieces(self) -> list[str]:
        if self._tokenizer is None:
            raise NotImplementedError("no tokenizer for this endpoint")
        return self._tokenizer.vocab_pieces()

    def next_token_logprobs(self, ids, window: int = 512):
        raise NotImplementedError("an endpoint returns top-k log-probabilities only: see fidelity in docs/serving.md")

    def _echo(self, prompt, k: int) -> dict:
        """One greedy /v1/completions request echoing `prompt` (text, or ids where the server
        takes them) with the top-k log-probabilities of every position. max_tokens 1, never 0:
        llama-cpp-python reads 0 as "until the context is full"."""
        body = {
            "model": self.served,
            "prompt": prompt,
            "echo": True,
            "logprobs": k,
            "max_tokens": 1,
            "temperature": 0.0,
            "seed": 0,
        }
        if self.flavor == "vllm":
            body["return_tokens_as_token_ids"] = True  # keys "token_id:N": no string to map back
        return self.client.post_json("/completions", body)

    def logprob_convention(self, k: int = TOPK) -> dict:
        """Which position a server's prompt log-probabilities describe, decided once by the probe
        in runtimes/openai/logprobs.py: {"convention", "how"}, or {"absent": why}."""
        if self._convention is None:
            from mindbench.runtimes.openai import logprobs as L

            try:
                a, b = self._echo(L.PROBE, k), self._echo(L.PROBE_OTHER, k)
                conv = L.convention((a.get("choices") or [{}])[0], (b.get("choices") or [{}])[0], k)
                self._convention = {"convention": conv, "how": L.CONVENTIONS[conv]}
            except L.Absent as e:
                self._convention = {"absent": f"{self.flavor} server: {e}"}
            except EndpointError as e:  # e.g. llama-cpp-python without logits_all refuses echo + logprobs
                self._convention = {"absent": f"{self.flavor} server refused echo + logprobs: {e}"[:300]}
            except ValueError as e:
                self._convention = {"absent": f"{self.flavor} server: the probe could not tell the convention: {e}"}
        return self._convention

    def _token_map(self):
        """(string of every id, string -> id for the strings exactly one id has), detokenized as
        llama-cpp-python's server writes its top_logprobs keys."""
        if self._pieces is None:
            llm = self._tokenizer._llm
            pieces = [llm.detokenize([i]).decode("utf-8", errors="ignore") for i in range(llm.n_vocab())]
            seen: dict[str, int] = {}
            for i, s in enumerate(pieces):
                seen[s] = -1 if s in seen else i
            self._pieces, self._lookup = pieces, {s: i for s, i in seen.items() if i >= 0}
        return self._pieces, self._lookup

    def topk_window(self, ids: list[int], k: int, conv: str):
        """The served top-k for every prediction of `ids` (one window, its last id the last
        target): (rows, None) with rows[j - 1] = [(id or None when the key names no single id,
        logprob), ...] the k largest for id j, or None where the server gave no entry; or
        (None, why) when the server did not see exactly these ids."""
        from mindbench.runtimes.openai import logprobs as L

        bos = self._tokenizer is not None and ids and ids[0] == self._tokenizer._llm.token_bos()
        if self.flavor == "vllm":
            prompt, expected, lookup = list(ids), [f"token_id:{i}" for i in ids], None
        else:
            if self._tokenizer is None:
                return None, "no tokenizer to write the ids as text"
            pieces, lookup = self._token_map()
            try:  # the server adds BOS itself where the model wants one
                prompt = self._tokenizer._llm.detokenize(list(ids[1:] if bos else ids)).decode("utf-8")
            except UnicodeDecodeError:
                return None, "the window's text is not valid UTF-8 on its own (it starts inside a character)"
            expected = [pieces[i] for i in ids]
        out = self._echo(prompt, k)
        try:
            tokens, tops = L.entries((out.get("choices") or [{}])[0])
        except L.Absent as e:
            return None, str(e)
        off = L.echo_offset(tokens, expected, bool(bos))
        if off is None:
            return None, "the server split the window's text into other tokens than the reference's ids"
        rows = []
        for entry in L.predictions(tops, conv, off, len(ids)):
            rows.append(None if entry is None else [(L.key_id(key, lookup), v) for key, v in L.top(entry, k)])
        return rows, None

    def topk_windows(self, windows: list[list[int]], k: int, conv: str, on_done=None) -> list:
        """topk_window for every window, up to batch-size requests in flight, in input order;
        on_done(i) as each ends."""
        from concurrent.futures import as_completed

        out: list = [None] * len(windows)
        workers = max(1, min(getattr(self, "fidelity_concurrency", 8), len(windows) or 1))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mindbench-echo") as pool:
            futures = {pool.submit(self.topk_window, w, k, conv): i for i, w in enumerate(windows)}
            for fut in as_completed(futures):
                out[futures[fut]] = fut.result()
                if on_done is not None:
                    on_done(futures[fut])
        return out

    def unload(self) -> None:
        tok, self._tokenizer = self._tokenizer, None
        if tok is not None:
            try:
                tok.unload()
            except Exception:
                pass
        server, self._server = self._server, None
        if server is not None:
            server.stop()
            self.info.update(server.memory_report())
        elif "server_peak_rss_mb" not in self.info:
            pids = local_server_pids(self.client.host, self.client.port)
            peaks = [_peak_rss_kb(p) for p in pids]
            if pids and None not in peaks:  # a server on this host: the kernel's own figure
                self.info["server_peak_rss_mb"] = round(sum(peaks) / 1024, 1)
                self.info["server_memory_how"] = (
                    "peak resident set (VmHWM, /proc) of the process listening on the "
                    "endpoint, since it started: earlier work on it included"
                )


def check_served(models: list[str], name: str, base_url: str) -> None:
    """Unknown model name: one line listing what the server does serve."""
    if name not in models:
        raise EndpointError(
            f"{base_url} does not serve {name!r}; it serves: {', '.join(models) or 'nothing'} "
            f"(pass one of these as --models)"
        )


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    import os

    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _peak_rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def local_server_pids(host: str, port: int) -> list[int]:
    """The processes listening on a loopback endpoint's port (Linux /proc: the socket's inode in
    /proc/net/tcp, then whose file descriptors hold it); [] elsewhere."""
    import os

    if host not in ("127.0.0.1", "localhost", "::1"):
        return []
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                for line in f.readlines()[1:]:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                        inodes.add(parts[9])
        except (OSError, IndexError, ValueError):
            continue
    pids = []
    if not inodes:
        return pids
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    pids.append(int(pid))
                    break
        except OSError:
            continue
    return pids


def _served_probe_class():
    from mindbench.measure.speed import ContentionProbe

    class _ServedProbe(ContentionProbe):
        """ContentionProbe with the server's CPU time moved from "others" to "own"; with no
        server process in sight, the host's contention is not ours to judge (unknown)."""

        def __init__(self, pids: list[int]):
            super().__init__("cpu", stat_reader=_no_stat) if not pids else super().__init__("cpu")
            self.pids = pids

        def _server(self) -> float:
            return sum(_cpu_s(p) or 0.0 for p in self.pids)

        def start(self) -> dict:
            s = super().start()
            s["server_cpu"] = self._server()
            return s

        def stop(self, s: dict) -> dict:
            out = super().stop(s)
            used = self._server() - s["server_cpu"]
            out["server_cpu_s"] = round(used, 4)
            out["own_cpu_s"] = round(out["own_cpu_s"] + used, 4)
            if out.get("other_cpu_s") is not None:
                out["other_cpu_s"] = round(max(0.0, out["other_cpu_s"] - used), 4)
                wall = out["wall_s"]
                out["stolen_frac"] = (
                    round(min(1.0, (out["other_cpu_s"] + out["steal_s"]) / (wall * out["cpus"])), 4)
                    if wall > 0
                    else None
                )
            return out

    return _ServedProbe


def _no_stat(cpus):
    return None


def ServedProbe(pids: list[int]):
    return _served_probe_class()(pids)
