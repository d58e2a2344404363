"""The Engine interface: one loaded model on one runtime. Everything above (provider, harness,
suites, agents) talks to this and never to transformers or llama.cpp directly."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace

from mindbench.errors import MindbenchError, MissingDependencyError, PrecisionError, faults
from mindbench.measure.device import is_cuda
from mindbench.models.catalog import ModelSpec
from mindbench.store.record import Record


@dataclass(frozen=True)
class GenParams:
    max_new_tokens: int = 256
    temperature: float = 0.7  # 0 means greedy
    top_p: float = 0.95
    top_k: int = 50
    repetition_penalty: float = 1.1
    stop: tuple[str, ...] = ()  # generation of a sequence ends at the first of these
    seed: int = 0
    batch_size: int = 8

    def validate(self) -> GenParams:
        """A checked copy, numbers coerced to their types: callers pass temperature=5 or
        max_tokens=256.0 as often as 5.0 and 256, and transformers rejects an int temperature
        with a raw ValueError deep inside generate. Anything else is one clear error."""
        out = {}
        for name, kind in (
            ("max_new_tokens", int),
            ("temperature", float),
            ("top_p", float),
            ("top_k", int),
            ("repetition_penalty", float),
            ("seed", int),
            ("batch_size", int),
        ):
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
    text: str  # generated text, cut before the stop string
    tokens: int  # tokens generated (including any stop string tokens)
    finish_reason: str  # "stop" | "length" | "eos"


def slow_decode_fault(precision: str | None) -> float:
    """MINDBENCH_FAULT=slow_decode[:FRACTION][@precision] (same list syntax as the worker's): a real
    slowdown of known size for testing the speed gate, as a fraction of each decode step's own
    time (0.0: off). Bare slow_decode is 1.0, decode at half speed - the size of a lost fast path;
    slow_decode:0.05 is a 5 % slower decode, the size the gate's power is measured at."""
    for kind in faults(precision or ""):
        name, _, frac = kind.partition(":")
        if name == "slow_decode":
            return slow_decode_fraction(frac)
    return 0.0


def slow_decode_fraction(text: str) -> float:
    """The FRACTION of slow_decode:FRACTION ("" is 1.0); a clear error on anything else."""
    if not text:
        return 1.0
    try:
        f = float(text)
    except ValueError:
        f = -1.0
    if not 0 < f <= 10:
        raise ValueError(f"MINDBENCH_FAULT: slow_decode:{text}: the fraction must be a number in (0, 10]")
    return f


def end_step(started: float, steps: list, slow: float) -> None:
    """Close one timed decode step begun at `started` (perf_counter): record its duration, and
    under the slow_decode fault wait `slow` times as long again (the wait counts in the step, as
    it would in slower code). Proportional to the step's own measured time, so decode slows by
    1 + slow whatever the load. Spun, not slept: slower code keeps the CPU, and a sleeping thread
    on a busy host waits for a scheduler slice to wake (a 0.6 ms sleep took 2 ms at load 8 on 2
    cores, tripling a 3 % slowdown)."""
    took = time.perf_counter() - started
    if slow:
        until = started + took * (1.0 + slow)
        while time.perf_counter() < until:
            pass
        took = time.perf_counter() - started
    steps.append(took)


@dataclass
class Timing:
    prompt_tokens: int
    new_tokens: int
    prefill_s: float  # forward pass over the prompt
    ttft_s: float  # prompt in -> first new token out
    decode_s: float  # remaining new_tokens - 1 tokens
    step_s: list = field(default_factory=list)  # each decode step's seconds: inter-token latency

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

    # --- teacher forcing (the fidelity track, mindbench/suites/fidelity.py) -----------------------------
    def fidelity_ids(self, text: str) -> list[int]:
        """A document's ids as this runtime feeds plain text (BOS where the model wants one)."""
        raise NotImplementedError

    def vocab_pieces(self) -> list[str]:
        """Every token's string, in id order: equal lists mean equal vocabularies."""
        raise NotImplementedError

    def next_token_logprobs(self, ids: list[int], window: int = 512) -> Iterator:
        """Teacher-forced float32 log-probabilities (torch tensors [n, vocab], in order, n summing
        to len(ids) - 1): row j is the distribution of ids[j + 1] given ids[:j + 1]. Ids longer
        than `window` are cut into consecutive windows run independently (no generation)."""
        raise NotImplementedError

    def unload(self) -> None:
        raise NotImplementedError

    @property
    def chat(self) -> bool:
        return self.spec.chat


def pick_device(device: str | None, gpu_problem) -> str:
    """The one device resolution: 'auto' -> 'cuda:0' when `gpu_problem(device)` is
    None, else 'cpu'; 'cuda' -> 'cuda:0'; 'cuda:N' kept when `gpu_problem` is None, else its
    one-line reason with the fix; 'cpu' kept; anything else is an error. Each caller supplies
    only how it knows a GPU is usable (torch, llama.cpp's build, the host's NVML probe)."""
    if device in ("auto", None):
        return "cuda:0" if gpu_problem("auto") is None else "cpu"
    if device == "cpu":
        return "cpu"
    if isinstance(device, str) and is_cuda(device):
        why = gpu_problem(device)
        if why:
            raise PrecisionError(why)
        return "cuda:0" if device == "cuda" else device
    raise MindbenchError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N")


class Runtime:
    """Everything that differs between runtimes, in one object, so nothing outside runtimes/
    branches on a runtime's name. A runtime module exports one instance; the registry
    in runtimes/__init__.py maps its name to it. Import-light: the engine module (torch,
    llama_cpp) is imported only by `load`, `resolve_device` and `set_threads`, so planning a sweep
    or recommending never pays for it.

    A subclass sets the class attributes and overrides what differs from the defaults below."""

    name: str = ""
    # Every precision it runs, widest (most faithful) first: a precision's position is its quality
    # tier, and "at least as wide as the reference" is a position at or before the reference's.
    precisions: tuple[str, ...] = ()
    precision_help: str = ""  # what it takes, for one-line errors ("fp32, bf16, ...")
    requires: tuple[str, ...] = ()  # importable modules it needs
    install_hint: str = ""  # how to get them

    # --- precisions ------------------------------------------------------------------------------
    def normalize(self, precision: str | None) -> str | None:
        """The runtime's own spelling of `precision`, or None when it does not run it."""
        return precision if precision in self.precisions else None

    def takes(self, precision: str | None) -> bool:
        return self.normalize(precision) is not None

    def tier(self, precision: str) -> int | None:
        """0 = widest; None for a precision this runtime does not know."""
        p = self.normalize(precision)
        return self.precisions.index(p) if p in self.precisions else None

    def reference_precision(self, device: str) -> str | None:
        """The precision a device's quality reference runs at on this runtime (None: this runtime
        is never the reference)."""
        return None

    def is_reference(self, precision: str, device: str) -> bool:
        """At least as wide as the reference precision: lossless by definition."""
        ref = self.reference_precision(device)
        t, rt = self.tier(precision), (self.tier(ref) if ref else None)
        return t is not None and rt is not None and t <= rt

    def default_precisions(self, device: str) -> tuple[str, ...]:
        """What a sweep measures when the user names no precision ("cuda..." or "cpu")."""
        return ()

    def select_precisions(self, spec, precisions) -> list[str]:
        """The precisions of a sweep that mean something here (see harness.runtime_precisions).
        A list with nothing for this runtime is kept as given, so a wrong precision becomes a
        visible `skipped` row rather than silently vanishing."""
        precisions = list(precisions)
        return [p for p in precisions if self.takes(p)] or precisions

    def default_precision(self, device: str) -> str | None:
        """What a model loads at when nobody names a precision (None: the runtime decides, e.g.
        a GGUF file's own type)."""
        return None

    def candidate_precisions(self, device: str) -> tuple[str, ...]:
        """The precisions `recommend` estimates on a device kind, preferred first."""
        return self.precisions

    # --- devices, processes, loading -------------------------------------------------------------
    def resolve_device(self, device: str | None) -> str:
        """'auto' -> a concrete device this runtime can use here; an impossible one is an error."""
        return "cpu" if device in (None, "auto") else device

    def setup_process(self, cfg: dict) -> None:
        """Per-process set-up in a fresh worker, before anything heavy is imported (environment
        variables that native libraries read once at load)."""

    def set_threads(self, threads: int, load_kwargs: dict) -> None:
        """--threads: apply now, or add what `load` needs to `load_kwargs`."""

    def load(self, model, precision: str | None, device: str = "auto", **kwargs) -> Engine:
        raise NotImplementedError

    # --- the estimator -----------------------------------------------------------------------------
    @property
    def efficiency_family(self) -> str:
        """Records whose measured roofline efficiency can stand in for each other's: one runtime's
        kernels say nothing about another's."""
        return self.name

    def estimate_candidates(self, specs, hw, records: list[Record], context: int, bandwidth_gb_s: float):
        """(spec, precision, memory MiB, decode tok/s, estimate dict, reason excluded or None) for
        `recommend`, for models nobody has measured here. Default: none."""
        return []

    def estimate_cell(
        self,
        spec,
        precision: str,
        device_kind: str,
        *,
        context: int,
        bandwidth_gb_s: float,
        efficiency: float | None,
        batch: int = 1,
    ) -> dict:
        """What the estimator says one measured cell should have shown (estimate_check):
        {"weights", "peak memory", "decode tok/s"}; `efficiency` None means the assumed one."""
        raise MindbenchError(f"no estimator for the {self.name} runtime")

    def recommend_exclusion(self, precision: str, hw) -> str | None:
        """Why this machine cannot run `precision` on this runtime (None: it can)."""
        return None

    # --- where the weights come from -----------------------------------------------------------------
    def hub_file(self, spec, precision: str | None) -> tuple[str, str | None] | None:
        """(Hub repo, the one file a cell downloads, or None for the whole model snapshot) for
        `spec` at `precision` on this runtime; None when nothing comes from the Hub. `mindbench
        run` checks it is cached or reachable before any worker starts (sweep/preflight.py). Raises
        MindbenchError for a model source this runtime cannot load at all."""
        return (spec.repo, None) if spec.source == "hub" and spec.repo else None

    # --- dependencies --------------------------------------------------------------------------------
    def available(self) -> bool:
        import importlib.util

        return all(importlib.util.find_spec(m) is not None for m in self.requires)

    def check_available(self) -> None:
        """One line with the install hint when a module it needs is missing."""
        if not self.available():
            raise MissingDependencyError(
                f"the {self.name} runtime needs {', '.join(self.requires)}: {self.install_hint}"
            )

    def __repr__(self) -> str:
        return f"<Runtime {self.name}>"
