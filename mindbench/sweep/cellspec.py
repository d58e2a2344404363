"""One cell of a sweep, parsed once: the planner (harness.plan, after the CLI's checks) builds a
frozen CellSpec from the user's strings; the worker receives it serialized (to_dict/from_dict,
JSON) and reads typed fields, never splitting a "suite:subset" string again.

The serialized form keeps every key the worker's job file always had ("suites" as the text the
record and the cell key show, e.g. "code:easy", so keys and --resume of older stores are
unchanged) and adds "suite_choices", the same suites already split, which the worker reads.
Light: no torch, no click.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass(frozen=True)
class SuiteChoice:
    """A suite and, optionally, one subset of it (`--suite code:easy`)."""

    name: str
    subset: str | None = None

    @classmethod
    def parse(cls, text: str) -> SuiteChoice:
        """The one place a --suite value is split on ':'."""
        name, _, subset = text.partition(":")
        return cls(name, subset or None)

    @property
    def text(self) -> str:
        """As the user wrote it and as records store it (the quality section's key)."""
        return f"{self.name}:{self.subset}" if self.subset else self.name


@dataclass(frozen=True)
class CellSpec:
    """Everything a worker needs to measure one (model, runtime, precision) cell."""

    model: str
    runtime: str
    precision: str
    device: str
    weights: str = "pretrained"  # or "random" (--no-weights)
    suites: tuple[SuiteChoice, ...] = ()
    limit: int | None = None  # tasks per suite; None: every task
    repeats: int = 3
    prompt_tokens: int = 256
    new_tokens: int = 64
    batch_size: int = 8
    seed: int = 0
    run_id: str | None = None
    log_samples: str | None = None  # folder for per-sample logs
    sandboxed: bool = True
    cache_dir: str | None = None
    bandwidth_gb_s: float | None = None  # measured by an earlier cell on this device
    threads: int | None = None
    fidelity: bool = False
    fidelity_tokens: int | None = None
    # a reference cell: will another cell of the sweep compare with its distributions? When not,
    # it records itself as the reference without computing them (harness._reference_wanted)
    reference_wanted: bool = True
    speed_ci: float | None = None
    speed_max_s: float | None = None
    llama_bench: bool = False
    code_protocol: str | None = None
    endpoint: str | None = None  # a served model's base URL (runtimes/openai)
    api_key_env: str | None = None  # the variable holding its API key: the name, never the key
    cell: str | None = None  # the key (results.cell_key), set by the planner
    extra: dict = field(default_factory=dict, compare=False)  # keys a newer planner added

    def to_dict(self) -> dict:
        """The worker's job file (JSON): the record's config keys, plus suite_choices."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("suites", "extra")}
        d["suites"] = [s.text for s in self.suites]
        d["suite_choices"] = [asdict(s) for s in self.suites]
        if not self.code_protocol:  # absent, as before: keys of records without it stay the same
            d.pop("code_protocol")
        if self.cell is None:
            d.pop("cell")
        for k in ("endpoint", "api_key_env"):  # absent unless served: other cells' job files stay as they were
            if d[k] is None:
                d.pop(k)
        return {**self.extra, **d}

    @classmethod
    def from_dict(cls, d: dict) -> CellSpec:
        known = {f.name for f in fields(cls)} - {"suites", "extra"}
        kw = {k: d[k] for k in known if k in d and d[k] is not None}
        if d.get("suite_choices") is not None:
            suites = tuple(SuiteChoice(**s) for s in d["suite_choices"])
        else:  # a job written by hand (tests) or before suite_choices: the text form, split once
            suites = tuple(SuiteChoice.parse(s) for s in d.get("suites") or [])
        extra = {k: v for k, v in d.items() if k not in known and k not in ("suites", "suite_choices")}
        return cls(suites=suites, extra=extra, **kw)
