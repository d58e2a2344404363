"""Which model, runtime and precision should run on this machine, for this task?

Pure functions over a HardwareProfile, result records and the catalog: never imports torch, so
`mindbench recommend` answers at once. The policy, in order:

1. Candidates: every catalog model made for the task x every precision, on the machine's device
   (the GPU if one is usable, else the CPU), plus every configuration the results store measured
   (llama.cpp runs and ad-hoc models too).
2. Evidence: records from this hardware fingerprint first, else from the same memory class
   (similar hardware). A record with status "oom" rules its configuration out. Measured peak
   memory and decode speed replace the estimates; quality comes only from real-weight runs.
3. Fit: memory (measured, else estimated at --context) within the budget: 90% of the GPU, or
   75% of the RAM on a CPU (the OS and other programs need the rest), or --max-memory. Speed at
   least --min-tokens-per-sec (without it, configurations under 5 tok/s, about reading speed, are
   left out as unusable).
4. Choice: when some fitting candidates have a measured quality score for the task, the best
   score wins; scores within their combined standard error are a tie, broken by decode speed,
   then by memory. Only when nothing was measured does the estimate rule: the largest model
   that fits, at the highest precision that fits (fp32/bf16/fp16 > int8 > int4), then the
   fastest. Larger-at-lower-precision beating smaller-at-higher-precision at equal memory is the
   usual finding (Dettmers & Zettlemoyer, "The case for 4-bit precision", 2023) and is what the
   user's document's GPU-memory table encodes; `--explain-table` checks it row by row
   (mindbench.decide.estimate_check.explain_table).
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mindbench.decide import evidence as ev
from mindbench.errors import MindbenchError
from mindbench.measure.device import device_kind
from mindbench.models import catalog
from mindbench.models.hardware import HardwareProfile
from mindbench.runtimes import DEFAULT_RUNTIME
from mindbench.store.record import Record
from mindbench.suites import SUITES

TASKS = SUITES  # a task is a suite (suites.py holds the one list)
PRECISION_RANK = {"fp32": 2, "bf16": 2, "fp16": 2, "int8": 1, "int4": 0}  # quality tier
# Below about reading speed an answer is too slow to use interactively; the default leaves such
# configurations out (--min-tokens-per-sec 0 keeps them).
DEFAULT_MIN_TOK_S = 5.0
# The context each task's KV cache is planned for when --context is not given.
DEFAULT_CONTEXT = {"code": 8192}
# The share of memory a model may plan to use: the rest is for the allocator's fragmentation,
# the display and other processes on a GPU; for the OS and other programs on a CPU.
GPU_USABLE, CPU_USABLE = 0.90, 0.75


@dataclass
class Candidate:
    model: str
    runtime: str
    precision: str
    device: str  # "cuda" | "cpu"
    params_b: float | None = None
    quality: dict | None = None  # score, stderr, n, metric, source
    memory_mb: float | None = None
    memory_source: str = "estimated"
    decode_tok_s: float | None = None
    speed_source: str = "estimated"
    estimate: dict | None = None  # the estimator's figures and inputs, when used
    gated: bool = False
    excluded: str | None = None  # why this one cannot be the answer
    published: dict | None = None  # the catalog's published figure for the task (mindbench.decide.evidence)
    fidelity_note: str | None = None  # how its quality loss compares with the budget, when one is set
    install: str | None = None  # what must be installed to run it (None: nothing beyond mindbench)
    ready_here: bool | None = None  # installed on this machine (None: planned hardware, not this one)
    prefill_tok_s: float | None = None

    @property
    def key(self) -> tuple:
        return (self.model, self.runtime, self.precision)

    @property
    def score(self) -> float | None:
        return None if not self.quality else self.quality.get("score")

    @property
    def merit(self) -> float | None:
        """The score signed so that more is better (a lower-is-better metric's score negated)."""
        if self.score is None:
            return None
        return self.score if self.quality.get("higher_is_better", True) else -self.score

    def label(self) -> str:
        return f"{self.model} {self.precision}" + ("" if self.runtime == DEFAULT_RUNTIME else f" ({self.runtime})")

    def install_note(self) -> str | None:
        """ "not installed here: <command>" on this machine, "needs: <command>" on planned hardware."""
        if not self.install or self.ready_here:
            return None
        return ("not installed here: " if self.ready_here is False else "needs: ") + self.install

    def to_dict(self) -> dict:
        d = asdict(self)
        d["memory_mb"] = None if self.memory_mb is None else round(self.memory_mb, 1)
        d["decode_tok_s"] = None if self.decode_tok_s is None else round(self.decode_tok_s, 2)
        return d


@dataclass
class Recommendation:
    task: str
    hardware: dict
    budget_mb: float
    context: int
    min_tok_s: float | None
    bandwidth: dict
    evidence: dict  # counts of records used, by origin
    chosen: Candidate | None
    basis: str  # "measured" | "estimated"
    why: list[str] = field(default_factory=list)
    runners_up: list[Candidate] = field(default_factory=list)
    pareto: list[Candidate] = field(default_factory=list)
    pareto_quality: str = "measured score"
    to_measure: list[Candidate] = field(default_factory=list)
    excluded: list[Candidate] = field(default_factory=list)
    decided_by: list[str] = field(default_factory=list)  # suite, paired test, fidelity, published...
    published_alerts: list[dict] = field(default_factory=list)
    if_installed: dict | None = None  # the pick were everything installed here, and the command
    served: list[dict] = field(default_factory=list)  # cells measured through an endpoint (served_evidence)

    def config(self) -> dict:
        """What the provider loads: model, runtime, precision, device."""
        if self.chosen is None:
            raise MindbenchError(f"nothing fits for task {self.task!r}: " + (self.why[0] if self.why else ""))
        c = self.chosen
        return {
            "model": c.model,
            "runtime": c.runtime,
            "precision": c.precision,
            "device": "cuda:0" if c.device in ("cuda", "rocm") else c.device,
        }

    def to_dict(self) -> dict:
        return {
            "task": self.task,
            "hardware": self.hardware,
            "budget_mb": round(self.budget_mb, 1),
            "context": self.context,
            "min_tok_s": self.min_tok_s,
            "bandwidth": self.bandwidth,
            "evidence": self.evidence,
            "basis": self.basis,
            "chosen": self.chosen.to_dict() if self.chosen else None,
            "why": self.why,
            "runners_up": [c.to_dict() for c in self.runners_up],
            "pareto_quality": self.pareto_quality,
            "pareto": [c.to_dict() for c in self.pareto],
            "to_measure": [c.to_dict() for c in self.to_measure],
            "decided_by": self.decided_by,
            "published_alerts": self.published_alerts,
            "if_installed": self.if_installed,
            "served": self.served,
            "excluded": [
                {"model": c.model, "runtime": c.runtime, "precision": c.precision, "reason": c.excluded}
                for c in self.excluded
            ],
        }


# --- evidence from the store --------------------------------------------------------------------------


def split_records(hw: HardwareProfile, records: list[Record]) -> tuple[list[Record], list[Record], int]:
    """(records from this fingerprint, from the same memory class, count ignored), all on the
    device kind we are planning for."""
    here, similar, ignored = [], [], 0
    fp, cls = hw.fingerprint, hw.memory_class
    for r in records:
        if device_kind(r.config.device) != hw.device:
            ignored += 1
        elif r.hardware.fingerprint == fp:
            here.append(r)
        elif r.hardware.memory_class == cls:
            similar.append(r)
        else:
            ignored += 1
    return here, similar, ignored


def speed_evidence(rec: Record, speed_fp: str | None) -> bool:
    """A record's speed counts only from a machine with this one's speed fingerprint (CPU ISA
    features, GPU) and a measurement that was neither noisy nor contended (measure/speed.py).
    A planned machine (a profile: its CPU features unknown, speed_fp None) takes what it has."""
    return rec.speed_usable and (speed_fp is None or rec.hardware.speed_fingerprint == speed_fp)


@dataclass
class Measured:
    oom: str | None = None
    quality: dict | None = None
    memory_mb: float | None = None
    memory_origin: str = ""
    decode_tok_s: float | None = None
    speed_origin: str = ""
    tokens: int | None = None  # prompt + new tokens of the run the memory was measured in
    decode_floor: float | None = None  # speed measured while contended: the config is at least this fast
    floor_origin: str = ""


def gather(
    similar: list[Record], here: list[Record], task: str, memory_class: str, speed_fp: str | None = None
) -> dict[tuple, Measured]:
    """Per (model, runtime, precision): the evidence, field by field. Records are replayed oldest
    first, similar hardware's before this machine's, so a later record overrides an earlier one
    and this machine overrides similar ones: an "oom" rules the configuration out until a later
    "ok" run of it (the earlier failure was then circumstantial, e.g. another process's memory)."""
    out: dict[tuple, Measured] = {}
    ts = lambda r: str(r.timestamp or "")
    # (a similar machine whose speed fingerprint matches ours is the stronger tier: labelled so)
    replay = [
        (
            r,
            0,
            "on the same speed fingerprint"
            if speed_fp and r.hardware.speed_fingerprint == speed_fp
            else f"on similar hardware ({memory_class})",
        )
        for r in sorted(similar, key=ts)
    ]
    replay += [(r, 1, "here") for r in sorted(here, key=ts)]
    for rec, rank, origin in replay:
        cfg = rec.config
        key = (cfg.model, cfg.runtime or DEFAULT_RUNTIME, cfg.precision)
        if None in key:
            continue
        m = out.setdefault(key, Measured())
        if rec.status == "oom":
            m.oom = f"out of memory when measured {origin}" + (f" ({rec.error})" if rec.error else "")
            continue
        if rec.status != "ok":
            continue
        m.oom = None
        if rec.peak_mb is not None:
            m.memory_mb, m.memory_origin = float(rec.peak_mb), origin
            m.tokens = (cfg.prompt_tokens or 0) + (cfg.new_tokens or 0) or None
        tok_s = rec.speed.figure("decode_tok_s").value
        if tok_s and speed_evidence(rec, speed_fp):  # same kernels, not noisy/contended
            m.decode_tok_s, m.speed_origin = tok_s, origin
        elif (
            tok_s
            and rec.speed.verdict == "contended"
            and (speed_fp is None or rec.hardware.speed_fingerprint == speed_fp)
        ):
            # other work only slows a run down: a contended speed is a lower bound on this config's
            if tok_s > (m.decode_floor or 0):
                m.decode_floor, m.floor_origin = tok_s, origin
        q = rec.quality.get(task)
        if q and q.points is not None and rec.weights == "pretrained":
            # This machine's score over a similar one's; then the run with more problems; among
            # equals the latest. The standard error is in points (Quality.stderr_points).
            old = m.quality
            if old is None or (rank, q.n or 0) >= (old["rank"], old.get("n") or 0):
                m.quality = {
                    "score": float(q.points),
                    "stderr": q.stderr_points or 0.0,
                    "n": q.n,
                    "metric": q.metric,
                    "source": f"measured {origin}",
                    "higher_is_better": q.better_higher,
                    "rank": rank,
                }
    for m in out.values():
        if m.quality:
            m.quality.pop("rank")
    return out


def bandwidth_for(hw: HardwareProfile, here: list[Record]) -> dict:
    """Memory bandwidth for the roofline: mindbench run's measurement on this machine, else the
    profile's (spec sheet, measured now, or assumed), always labelled."""
    # A bandwidth measured while other work held the cores is as low as the speed beside it
    # (13 GB/s against 32 quiet here): the quiet runs' when there are any.
    here = [r for r in here if r.speed_usable] or here
    bws = sorted(float(r.bandwidth_gb_s) for r in here if r.bandwidth_gb_s)
    if bws:
        return {"gb_s": bws[len(bws) // 2], "source": f"measured by mindbench run on this machine ({len(bws)} runs)"}
    return {"gb_s": hw.bandwidth_gb_s, "source": hw.bandwidth_source}


def budget(hw: HardwareProfile, max_memory_mb: float | None = None) -> float:
    pd = hw.planned_device
    b = pd.usable_mb if pd is not None else hw.memory_mb * (GPU_USABLE if hw.device == "cuda" else CPU_USABLE)
    return min(b, max_memory_mb) if max_memory_mb else b


# --- the choice ------------------------------------------------------------------------------------------


def candidates(
    hw: HardwareProfile,
    records: list[Record],
    task: str | None,
    *,
    context: int = 2048,
    models: list[str] | None = None,
) -> tuple[list[Candidate], dict, dict]:
    """All candidates with their memory/speed/quality filled in (not yet filtered)."""
    from mindbench.decide.evidence import published_for
    from mindbench.runtimes import runtimes

    here, similar, ignored = split_records(hw, records)
    bw = bandwidth_for(hw, here)
    measured = gather(similar, here, task or "", hw.memory_class, getattr(hw, "speed_fingerprint", None))
    evidence = {"here": len(here), "similar": len(similar), "ignored": ignored}

    specs = (
        [catalog.CATALOG[m] if m in catalog.CATALOG else catalog.resolve(m) for m in models]
        if models
        else [s for s in catalog.CATALOG.values() if task is None or task in s.categories]
    )
    out: dict[tuple, Candidate] = {}
    if hw.planned_device is not None:
        # A device from the table: every runtime that runs there, installed here or not (decide/plan.py)
        from mindbench.decide.plan import planned
        from mindbench.models.perf import shape_of

        for row in planned(specs, hw.planned_device, context, here=hw.name == "detected"):
            spec = row["spec"]
            c = out[(spec.id, row["runtime"], row["precision"])] = Candidate(
                spec.id,
                row["runtime"],
                row["precision"],
                hw.planned_device.kind,
                spec.params_b,
                memory_mb=row["memory_mb"],
                decode_tok_s=row["decode_tok_s"],
                estimate=row["estimate"],
                gated=spec.gated,
                published=published_for(spec.id, task or ""),
                install=row["install"],
                ready_here=row["ready_here"],
                prefill_tok_s=row["prefill_tok_s"],
            )
            limit = shape_of(spec.id).max_context
            if limit and context > limit:
                c.excluded = f"its context window is {limit} tokens, under --context {context}"
    for rt in runtimes() if hw.planned_device is None else ():  # each runtime estimates its own candidates
        installed = rt.available()  # (once: find_spec walks sys.path)
        for spec, p, mem_mb, tok_s, e, why in rt.estimate_candidates(specs, hw, similar + here, context, bw["gb_s"]):
            c = out[(spec.id, rt.name, p)] = Candidate(
                spec.id,
                rt.name,
                p,
                hw.device,
                spec.params_b,
                memory_mb=mem_mb,
                decode_tok_s=tok_s,
                estimate=e,
                gated=spec.gated,
                published=published_for(spec.id, task or ""),
            )
            c.excluded = why
            if not installed:
                c.install, c.ready_here = rt.install_hint, False
    allowed = {s.id for s in specs}
    for key, m in measured.items():
        c = out.get(key)
        if c is None:
            spec = catalog.CATALOG.get(key[0])
            if models and key[0] not in allowed:
                continue
            if spec is not None and task and task not in spec.categories and not m.quality:
                continue
            if spec is None and not m.quality and task:
                continue  # an ad-hoc model is a candidate for the tasks it was scored on
            c = out[key] = Candidate(
                key[0],
                key[1],
                key[2],
                hw.device,
                spec.params_b if spec else None,
                gated=bool(spec and spec.gated),
                memory_mb=None,
                decode_tok_s=None,
            )
        if m.oom:
            c.excluded = m.oom
        if m.memory_mb is not None:
            c.memory_mb, c.memory_source = m.memory_mb, f"measured peak {m.memory_origin}"
            if c.estimate and m.tokens and context > m.tokens:
                # The run held a shorter context than planned: add the KV cache it did not hold.
                grow = c.estimate["kv_cache_mb"] * (context - m.tokens) / context
                c.memory_mb += grow
                c.memory_source += f" + {grow:.0f} MiB KV cache from {m.tokens} to {context} tokens (estimated)"
        if m.decode_tok_s is not None:
            c.decode_tok_s, c.speed_source = m.decode_tok_s, f"measured {m.speed_origin}"
        elif m.decode_floor is not None and (c.decode_tok_s is None or c.decode_tok_s < m.decode_floor):
            c.decode_tok_s = m.decode_floor
            c.speed_source = f"measured {m.floor_origin} while contended (a lower bound: the quiet speed is higher)"
        c.quality = m.quality
    return list(out.values()), bw, evidence


def _runtime_exclusion(c, hw) -> str | None:
    """What the candidate's runtime says this machine cannot run (bitsandbytes missing, no bf16)."""
    from mindbench.runtimes import get_runtime

    try:
        rt = get_runtime(c.runtime)
    except MindbenchError:  # a record of a runtime this process does not know: nothing to say
        return None
    return rt.recommend_exclusion(c.precision, hw)


def _measured_at_an_endpoint(c) -> bool:
    """A configuration measured through an endpoint (precision "served": the server decided it).
    Not a planned vLLM candidate of a device from the table (decide/plan.py): that one is a server
    to start on this GPU, judged like any other configuration."""
    from mindbench.runtimes import get_runtime
    from mindbench.runtimes.openai.runtime import SERVED

    try:
        return c.precision == SERVED and bool(getattr(get_runtime(c.runtime), "takes_endpoint", False))
    except MindbenchError:
        return False


def served_evidence(records: list[Record], task: str) -> list[dict]:
    """Cells measured through an endpoint (`--runtimes openai --endpoint`), the latest per model and
    endpoint with a score on the task: evidence like any other, but about the server's hardware,
    which this machine's budget and speed fingerprint say nothing of. So they are shown beside the
    decision (with the server, its version and its own figures), never ranked against what runs
    here; a server mindbench starts itself (llamacpp-server) runs here and is ranked as usual."""
    latest: dict[tuple, Record] = {}
    for r in sorted(records, key=lambda r: str(r.timestamp or "")):
        c = r.config
        q = r.quality.get(task)
        if r.status == "ok" and c.endpoint and q is not None and q.points is not None:
            latest[(c.model, c.endpoint)] = r
    out = []
    for (model, endpoint), r in latest.items():
        q, srv = r.quality[task], r.server or {}
        tok_s = r.speed.figure("decode_tok_s").value
        out.append(
            {
                "model": model,
                "endpoint": endpoint,
                "runtime": r.config.runtime,
                "server": " ".join(str(x) for x in (srv.get("flavor"), srv.get("version")) if x) or "unknown server",
                "quality": {"score": float(q.points), "stderr": q.stderr_points or 0.0, "n": q.n, "metric": q.metric},
                "decode_tok_s": round(tok_s, 2) if tok_s and r.speed_usable else None,
                "speed_verdict": r.speed.verdict,
                "timestamp": r.timestamp,
            }
        )
    higher = all(r.quality[task].better_higher for r in latest.values())
    return sorted(out, key=lambda d: d["quality"]["score"], reverse=higher)  # best first


def _filter(cands, hw, budget_mb):
    for c in cands:
        if c.excluded:
            continue
        if _measured_at_an_endpoint(c):
            c.excluded = "served by an endpoint: it runs on the server's hardware, not here (listed under served)"
            continue
        why = _runtime_exclusion(c, hw)
        if why:
            c.excluded = why
        elif c.memory_mb is None:
            c.excluded = "no memory figure (measured runs had none, and it can't be estimated)"
        elif c.memory_mb > budget_mb:
            c.excluded = (
                f"needs {c.memory_mb / 1024:.1f} GiB ({c.memory_source}), over the {budget_mb / 1024:.1f} GiB budget"
            )


def _too_slow(cands, floor: float, default: bool) -> list[Candidate]:
    slow = []
    for c in cands:
        if not c.excluded and c.decode_tok_s is not None and c.decode_tok_s < floor:
            c.excluded = f"{c.decode_tok_s:.2f} tok/s ({c.speed_source}) is under {floor:g} tok/s" + (
                " (the default floor; --min-tokens-per-sec 0 keeps it)" if default else ""
            )
            slow.append(c)
    return slow


def _tie(a: Candidate, b: Candidate) -> bool:
    return abs(a.score - b.score) <= math.hypot(a.quality["stderr"], b.quality["stderr"])


def _speed(c: Candidate) -> float:
    return c.decode_tok_s or 0.0


def rank_measured(ok: list[Candidate]) -> list[Candidate]:
    """Best score first; candidates tied with the best (within stderr) ordered by speed, then
    memory; the rest follow the same rule recursively."""
    rest = sorted(ok, key=lambda c: (-c.merit, -_speed(c), c.memory_mb))
    ranked = []
    while rest:
        top = rest[0]
        ties = sorted([c for c in rest if _tie(top, c)], key=lambda c: (-_speed(c), c.memory_mb))
        ranked.append(ties[0])
        rest.remove(ties[0])
    return ranked


def rank_estimated(ok: list[Candidate], instruct_first: bool = False, ties: str = "cheapest") -> list[Candidate]:
    """Largest model; between configurations of one model, the cheapest (least memory) - all of
    them are within the default quality-loss budget (4 bits or more; `--max-kld`/`--quality-loss`
    set a measured one) - then the fastest, a measured speed before an estimated one. Not
    "highest precision": fp32 of a 1.5B model at 7.4 GiB and 5 tok/s is not better than its
    Q4_K_M at 1.6 GiB and 19 tok/s without a measured quality difference. For a conversation an
    instruction-tuned model (one with a chat template) goes before any base model, whatever its
    size: a base model continues text rather than answering."""

    def chat_rank(c):
        spec = catalog.CATALOG.get(c.model)
        return 0 if not instruct_first or spec is None or spec.chat else 1

    if ties == "precision":  # the user's document's rule (recommend --explain-table checks its table with it)
        return sorted(
            ok,
            key=lambda c: (
                chat_rank(c),
                -(c.params_b or 0),
                -PRECISION_RANK.get(c.precision, 0),
                not c.speed_source.startswith("measured"),
                -_speed(c),
                c.memory_mb,
            ),
        )
    return sorted(
        ok,
        key=lambda c: (
            chat_rank(c),
            -(c.params_b or 0),
            round(c.memory_mb or 0, -1),
            -_speed(c),
            not c.speed_source.startswith("measured"),
        ),
    )


def pareto(points: list[Candidate], quality) -> list[Candidate]:
    """Not dominated on (quality up, memory down, speed up)."""
    front, seen = [], set()
    for a in points:
        point = (quality(a), round(a.memory_mb, 1), round(_speed(a), 2))
        if point in seen:  # bf16 and fp16 often estimate the same: show one
            continue
        dominated = any(
            quality(b) >= quality(a)
            and b.memory_mb <= a.memory_mb
            and _speed(b) >= _speed(a)
            and (quality(b), -b.memory_mb, _speed(b)) != (quality(a), -a.memory_mb, _speed(a))
            for b in points
        )
        if not dominated:
            front.append(a)
            seen.add(point)
    return sorted(front, key=lambda c: c.memory_mb)


def _label_installs(cands: list[Candidate]) -> None:
    """A packaged model whose pip parts are missing here says how to install them (the runtime's
    own install line is set where the candidate was made)."""
    seen: dict[str, tuple[bool, str]] = {}
    for c in cands:
        spec = catalog.CATALOG.get(c.model)
        if spec is None or spec.source != "packaged" or c.ready_here is False:
            continue
        ok, why = seen.get(spec.id) or seen.setdefault(spec.id, catalog.availability(spec))
        if not ok:
            c.install, c.ready_here = spec.install or why.removeprefix("not installed: "), False


def recommend(
    hardware: HardwareProfile,
    records: list[Record],
    task: str,
    *,
    min_tok_s: float | None = None,
    max_memory_mb: float | None = None,
    context: int | None = None,
    models: list[str] | None = None,
    available_only: bool = False,
    instruct_chat: bool = True,
    max_kld: float | None = None,
    quality_loss: str | None = None,
    prefer: str = "measured",
    installed_packages_only: bool | None = None,
    ties: str = "cheapest",
) -> Recommendation:
    """The one decision: `mindbench recommend`, best_config (the provider, the agents) and `chat`
    all come here. On this machine (hw.name "detected"; `installed_packages_only` None) only what
    loads here can be the answer - a packaged model's pip parts, the runtime's package - and when
    something not installed would have won, `if_installed` names it with the command. Planned
    hardware (a profile, `--gpu NAME`) is not this machine: nothing is excluded for what is
    installed here, and each candidate says what it needs."""
    if installed_packages_only is None:
        installed_packages_only = hardware.name == "detected"
    if context is None:  # code reads whole files: plan its KV cache for 8k tokens, the rest for 2k
        context = DEFAULT_CONTEXT.get(task, 2048)
    from mindbench.suites import suite_names  # plug-in suites are tasks too

    if task not in suite_names():
        raise MindbenchError(f"unknown task {task!r}: choose one of {', '.join(suite_names())}")
    if context < 1:
        raise MindbenchError(f"--context must be at least 1 token, got {context}")

    kld_budget, kld_label = ev.parse_budget(max_kld, quality_loss)
    hw = hardware
    cands, bw, evidence = candidates(hw, records, task, context=context, models=models)
    budget_mb = budget(hw, max_memory_mb)
    _filter(cands, hw, budget_mb)
    if kld_budget is not None:
        ev.apply_budget(cands, kld_budget, kld_label, ev.fidelity_map(records))
    _label_installs(cands)
    held_back = []
    if available_only or installed_packages_only:
        for c in cands:
            spec = catalog.CATALOG.get(c.model)
            if c.excluded or spec is None:
                continue
            if c.ready_here is False:
                c.excluded = f"not installed here: {c.install}"
                if installed_packages_only:  # (offline alone: excluded, but nothing to ask again)
                    held_back.append(c)
                continue
            if not available_only and spec.source != "packaged":
                continue
            ok, why = catalog.availability(spec)
            if not ok:
                c.excluded = f"not available offline: {why}" if available_only else why
                if not available_only:
                    held_back.append(c)
    slow = _too_slow(cands, DEFAULT_MIN_TOK_S if min_tok_s is None else min_tok_s, min_tok_s is None)
    relaxed = None
    if min_tok_s is None and slow and not any(not c.excluded for c in cands):
        # Nothing reaches the default floor on this machine: a slow answer beats none, but not
        # one many times slower than the fastest (a 7B model at 0.1 tok/s on a CPU).
        relaxed = max(c.decode_tok_s for c in slow) / 2
        for c in slow:
            if c.decode_tok_s >= relaxed:
                c.excluded = None
            else:
                c.excluded = (
                    f"{c.decode_tok_s:.2f} tok/s ({c.speed_source}): nothing here reaches "
                    f"{DEFAULT_MIN_TOK_S:g} tok/s, and this is under half the fastest"
                )
    ok = [c for c in cands if not c.excluded]
    scored = [c for c in ok if c.score is not None]
    rec = Recommendation(
        task=task,
        hardware=hw.to_dict(),
        budget_mb=budget_mb,
        context=context,
        min_tok_s=min_tok_s,
        bandwidth=bw,
        evidence=evidence,
        chosen=None,
        basis="measured" if scored else "estimated",
        excluded=sorted((c for c in cands if c.excluded), key=lambda c: (c.model, c.precision)),
        served=served_evidence(records, task),
    )
    if not ok:
        tightest = min(cands, key=lambda c: c.memory_mb or math.inf, default=None)
        rec.why = [
            f"no configuration fits {budget_mb / 1024:.1f} GiB at {context} tokens of context"
            + (f" and {min_tok_s:g} tok/s" if min_tok_s else "")
            + (f"; the smallest, {tightest.label()}, was excluded: {tightest.excluded}" if tightest else "")
            + "; try a smaller --context, a larger --max-memory, or a lower --min-tokens-per-sec"
        ]
        return rec
    # Scored configurations rank above unscored ones; the unscored follow as labelled estimates.
    instruct_first = task == "chat" and instruct_chat
    rank_est = lambda cs, first=False: rank_estimated(cs, first, ties)
    _decide(
        rec,
        ok,
        scored,
        records,
        task,
        budget=kld_budget,
        budget_label=kld_label,
        prefer=prefer,
        rank_estimated=rank_est,
        instruct_first=instruct_first,
    )
    if scored:
        rec.pareto = pareto(scored, lambda c: c.merit)
        # Bigger models that fit but were never scored here might do better: say so, with the command.
        best_per_model = {}
        # (default-runtime candidates: the `mindbench run` line suggested for them needs no --runtimes)
        for c in rank_estimated([c for c in ok if c.score is None and c.runtime == DEFAULT_RUNTIME]):
            best_per_model.setdefault(c.model, c)
        rec.to_measure = [
            c
            for c in best_per_model.values()
            if (c.params_b or 0) > (rec.chosen.params_b or 0)
            and c.model not in {a["model"] for a in rec.published_alerts}
        ][:3]
    else:
        rec.pareto_quality = "parameters (billions), as a stand-in: nothing measured for this task"
        rec.pareto = pareto(ok, lambda c: c.params_b or 0)
    rec.why = explain(rec, scored) + rec.why
    if held_back:
        # What would win were everything installed here: the same decision without that condition.
        alt = recommend(
            hardware,
            records,
            task,
            min_tok_s=min_tok_s,
            max_memory_mb=max_memory_mb,
            context=context,
            models=models,
            available_only=available_only,
            instruct_chat=instruct_chat,
            max_kld=max_kld,
            quality_loss=quality_loss,
            prefer=prefer,
            installed_packages_only=False,
            ties=ties,
        ).chosen
        if alt is not None and alt.key != rec.chosen.key and any(alt.key == c.key for c in held_back):
            spec = catalog.CATALOG.get(alt.model)
            cmd = alt.install or (spec.install if spec is not None else None)
            rec.if_installed = {
                "model": alt.model,
                "runtime": alt.runtime,
                "precision": alt.precision,
                "quality": quality_text(alt),
                "install": cmd,
                "message": f"{alt.label()} ({quality_text(alt)}) would be chosen: not installed here: {cmd}",
            }
            rec.why.append(rec.if_installed["message"])
    if relaxed is not None:
        rec.why.append(
            f"nothing here reaches {DEFAULT_MIN_TOK_S:g} tok/s (the default floor), so the floor was "
            f"lowered to {relaxed:.2f} tok/s, half the fastest; expect slow replies"
        )
    return rec


# --- the decision: ranked once, evidence as input ---------------------------------------------


def published_order(cands: list, task: str, rank_estimated, instruct_first: bool) -> list:
    """Candidates with a ranking figure for the task, best first: tier by tier over
    RANKING_BENCHMARKS (a tier needs two models publishing it), by score, then (within a model)
    the estimator's order. Each one's `published` becomes the figure it was ranked on."""
    order = {id(c): i for i, c in enumerate(rank_estimated(cands, instruct_first))}
    benches = ev.RANKING_BENCHMARKS.get(task, ())
    out, placed = [], set()
    for i, bench in enumerate(benches):
        group = [(c, ev.figure(c.model, bench)) for c in cands if id(c) not in placed]
        group = [(c, f) for c, f in group if f]
        if len({c.model for c, _ in group}) < 2 and i < len(benches) - 1:
            continue
        for c, f in sorted(group, key=lambda t: (-t[1]["score"], order[id(t[0])])):
            c.published = f
            out.append(c)
            placed.add(id(c))
    return out


def rank_unscored(ok: list, task: str, rank_estimated, instruct_first: bool) -> list:
    """Unmeasured candidates: those with a published ranking figure for the task first
    (published_order), then the rest by the estimate rule."""
    pub = published_order(ok, task, rank_estimated, instruct_first)
    return pub + [c for c in rank_estimated(ok, instruct_first) if c not in pub]


def _decide(
    rec,
    ok: list,
    scored: list,
    records: list[Record],
    task: str,
    *,
    budget: float | None,
    budget_label: str | None,
    prefer: str,
    rank_estimated,
    instruct_first: bool,
) -> None:
    """The ranking, done once, with every tier of evidence as input: measured scores (paired
    between precisions of one model by ev.same_model_decision), the fidelity budget, and
    published figures (which rank the unmeasured, or choose with prefer="published")."""
    fids, items = ev.fidelity_map(records), ev.items_map(records, task)
    unscored = rank_unscored([c for c in ok if c.score is None], task, rank_estimated, instruct_first)
    ranked = rank_measured(scored) + unscored
    preferred = False
    if prefer == "published":
        # every fitting configuration, measured here or not: the best published figure wins (the
        # measured 0.5B coder must not beat the 1.5B that publishes more because the 1.5B was measured too)
        pub = published_order(ok, task, rank_estimated, instruct_first)
        if pub:
            ranked = pub + [c for c in ranked if c not in pub]
            rec.basis, preferred = "published", True
            rec.why.append(
                f"--prefer published: chosen on its published figure, {ev.fmt_published(pub[0].published)}"
                + ("; also measured here" if pub[0].score is not None else "; not measured here")
            )
    elif (
        not scored
        and unscored
        and unscored[0].published
        and unscored[0].published["benchmark"] in ev.RANKING_BENCHMARKS.get(task, ())
    ):
        rec.basis = "published"
    top = ranked[0]
    # Between precisions of the chosen model, the suite's tie is settled by a paired test or by
    # fidelity, and the why says which.
    if top.score is not None:
        for o in [c for c in scored if c.model == top.model and c is not top]:
            w, kind, sentence = ev.same_model_decision(top, o, fids, items)
            if kind:
                rec.decided_by.append(kind)
            winner, loser = (o, top) if w == 1 else (top, o)
            if w == 1:
                ranked.remove(o)
                ranked.insert(0, o)
                top = o
            rec.why.append(f"{winner.label()} over {loser.label()}: {sentence}")
    if budget is not None:
        cheap = ev.cheapest_within(top, ok)
        if cheap is not top:
            ranked.remove(cheap)
            ranked.insert(0, cheap)
        rec.decided_by.append("fidelity budget")
        rec.why.append(
            f"quality-loss budget {budget_label}: {cheap.label()} is the cheapest configuration of "
            f"{cheap.model} within it ({cheap.fidelity_note or 'reference precision'})"
        )
    rec.chosen, rec.runners_up = ranked[0], ranked[1:4]
    if preferred:
        rec.decided_by.insert(0, "published (--prefer published)")
    elif rec.chosen.score is not None:
        rec.decided_by.insert(0, "suite")
        for c, p, mine in ev.stronger_published(rec.chosen, ok, task):
            cmd = f"mindbench run --models {c.model} --precisions {c.precision} --suite {task}" + (
                "" if c.runtime == DEFAULT_RUNTIME else f" --runtimes {c.runtime}"
            )
            if mine:
                msg = (
                    f"{c.model} fits and its published {p['benchmark']} is {p['score']:.1f} against "
                    f"{mine['score']:.1f} published for {rec.chosen.model} (same benchmark, the makers' "
                    f"protocols; not comparable with the score measured here); measure it: {cmd}"
                )
            else:
                msg = (
                    f"{c.model} fits and publishes {ev.fmt_published(p)}; {rec.chosen.model} has no published "
                    f"{p['benchmark']} figure to compare with, and a published score is not comparable with "
                    f"the suite score measured here; measure it: {cmd}"
                )
            rec.published_alerts.append(
                {
                    "model": c.model,
                    "precision": c.precision,
                    "published": p,
                    "chosen_published": mine,
                    "command": cmd,
                    "message": msg,
                }
            )
        rec.published_alerts = rec.published_alerts[:3]
    elif rec.basis == "published":
        rec.decided_by.insert(0, "published")
        rec.why.insert(
            0,
            f"quality: nothing measured here for {task} that fits; ranked on published figures: "
            f"{ev.fmt_published(rec.chosen.published)} (a different protocol from mindbench's suite)",
        )


def explain(rec: Recommendation, scored: list[Candidate]) -> list[str]:
    c = rec.chosen
    why = []
    if c.score is not None:
        q = c.quality
        why.append(
            f"quality: {q.get('metric') or 'score'} {c.score:.1f} ± {q['stderr']:.1f} on {rec.task} "
            f"(n={q.get('n')}), {q['source']}; the best of {len(scored)} scored configurations that fit"
        )
        ties = [o for o in scored if o.model != c.model and _tie(c, o) and o.merit >= c.merit]
        if ties:
            why.append(
                f"ties within standard error with {', '.join(o.label() for o in ties)}; chosen for speed, then memory"
            )
    else:
        left_out = [o for o in rec.excluded if o.score is not None]
        if left_out and not any("--prefer published" in w for w in rec.why):
            why.append(
                "scored configurations were left out: " + "; ".join(f"{o.label()} ({o.excluded})" for o in left_out[:3])
            )
        if not c.published:
            why.append(
                f"quality: nothing measured for {rec.task} that fits, so the largest "
                + (
                    "instruction-tuned "
                    if rec.task == "chat" and getattr(catalog.CATALOG.get(c.model), "chat", False)
                    else ""
                )
                + f"model that fits wins ({c.params_b}B), at the highest precision that fits ({c.precision})"
            )
    head = rec.budget_mb - c.memory_mb
    why.append(
        f"memory: {c.memory_mb / 1024:.2f} GiB ({c.memory_source}) of a {rec.budget_mb / 1024:.1f} GiB "
        f"budget, {head / 1024:.2f} GiB headroom at {rec.context} tokens of context"
    )
    if c.decode_tok_s is not None:
        fac = (c.estimate or {}).get("inputs", {}).get("factors")
        why.append(
            f"speed: {c.decode_tok_s:.1f} tok/s decode"
            + (f", {c.prefill_tok_s:.0f} tok/s prefill" if c.prefill_tok_s else "")
            + f" ({c.speed_source}"
            + (
                f"; {rec.bandwidth['gb_s']:g} GB/s bandwidth, {rec.bandwidth['source']}"
                if c.speed_source == "estimated"
                else ""
            )
            + (f"; efficiency {fac}" if fac else "")
            + ")"
        )
    if c.gated:
        why.append(f"{c.model} is gated on the Hugging Face Hub: request access and set HF_TOKEN before first use")
    note = c.install_note()
    if note:
        why.append(note)
    return why


def quality_text(c: Candidate) -> str:
    """The quality a candidate is chosen on, as the why-lines and the table say it."""
    if c.score is None and c.published:
        return f"{c.published['benchmark']} {c.published['score']:.1f} (published)"
    if c.score is None:
        return "not measured"
    return f"{c.quality.get('metric') or 'score'} {c.score:.1f} ± {c.quality['stderr']:.1f}"


# --- records and the one-call API for the provider and agents --------------------------------------------


def load_records(paths: list[str | os.PathLike] | None = None) -> tuple[list[Record], list[str]]:
    """Records from the given files (each must exist), or from every results/*.jsonl (none is fine)."""
    from mindbench.paths import default_results
    from mindbench.store import results

    if paths:
        files = [Path(p) for p in paths]
    else:
        files = sorted(default_results().parent.glob("*.jsonl"))
    recs = []
    for f in files:
        # records of fault-injection runs (tests of the CI gate) say nothing about the model
        recs.extend(r for r in results.read(f) if not r.config.fault)
    return recs, [str(f) for f in files]


def with_cpu_bandwidth(hw: HardwareProfile, records: list[Record]) -> HardwareProfile:
    """This machine's CPU, with no run of its own in the store: measure its bandwidth (once, then
    cached) rather than assume one. The CLI and best_config both do this so they agree."""
    if (
        hw.device == "cpu"
        and hw.cpu_bandwidth_gb_s is None
        and hw.name == "detected"
        and not any(r.hardware.fingerprint == hw.fingerprint for r in records)
    ):
        from mindbench.models.hardware import cached_cpu_bandwidth

        hw.cpu_bandwidth_gb_s, hw.cpu_bandwidth_source = cached_cpu_bandwidth(hw.fingerprint)
    return hw


def best_config(
    task: str = "chat", results_path: str | os.PathLike | None = None, *, hardware: HardwareProfile | None = None
) -> dict:
    """The configuration to load for `task` on this machine: dict(model, runtime, precision, device).

    Used by LocalModelProvider.from_recommendation and the agents, which load what this returns:
    a packaged model whose pip packages are not installed is never returned (nothing fetches them
    on first use, unlike a Hub download), and with HF_HUB_OFFLINE=1 only models that load without
    a download are considered."""
    from mindbench.models.hardware import detect

    records, _ = load_records([results_path] if results_path else None)
    hw = hardware or with_cpu_bandwidth(detect(), records)
    return recommend(hw, records, task, available_only=offline()).config()


def offline() -> bool:
    """HF_HUB_OFFLINE=1: only models that load without a download (the CLI and best_config alike)."""
    return os.environ.get("HF_HUB_OFFLINE") == "1"
