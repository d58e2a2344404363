"""The results store: append-only JSONL, one record per benchmark cell, schema-versioned.

Why JSONL with a lock instead of a database: results are written by many short-lived processes
(sweeps, resumed sweeps, parallel runs on the same disk) and read by humans, `git diff` and CI.
One line per record, written under an exclusive `fcntl.flock` with flush+fsync, means two runs
appending to one file at once lose nothing, and a run killed mid-write leaves at most one torn
last line, which `read` skips with a warning.

The record layout is documented in docs/architecture.md ("The result record").
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mindbench.errors import MindbenchError
from mindbench.measure.device import is_cuda

# 2 added sections only (quality[suite].items, fidelity, hardware.speed_fingerprint, speed.verdict);
# schema-1 records still read, the missing sections meaning "unknown".
SCHEMA = 2

# Final statuses of a cell: ok, oom, crashed, timeout, skipped, error. "ok", "oom" and "skipped"
# are facts about this machine and model: rerunning gives the same answer, so --resume treats them
# as done. "crashed", "timeout" and "error" may be transient (a loaded machine, a flaky driver),
# so --resume runs them again.
DONE_STATUSES = ("ok", "oom", "skipped")


def _lock(f, exclusive: bool) -> None:
    try:
        import fcntl
    except ImportError:  # Windows: no flock; appends of one small line are still near-atomic
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)


def _unlock(f) -> None:
    try:
        import fcntl
    except ImportError:
        return
    fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def append(path: str | os.PathLike, record: dict) -> None:
    """Append one record as one JSON line, atomically with respect to other appenders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = dict(record)
    record.setdefault("schema", SCHEMA)
    # Serialise before taking the lock: a record that can't be encoded must fail loudly here,
    # not leave half a line behind. default=str keeps odd values (Paths, numpy scalars) readable.
    line = json.dumps(record, default=str, sort_keys=False, separators=(",", ":")) + "\n"
    with open(path, "a+b") as f:
        _lock(f, exclusive=True)
        try:
            # A previous writer killed mid-line leaves no trailing newline; start on a fresh line
            # so our record is not glued to the torn one (which read() then skips on its own).
            f.seek(0, os.SEEK_END)
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    f.seek(0, os.SEEK_END)
                    f.write(b"\n")
            f.seek(0, os.SEEK_END)
            f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        finally:
            _unlock(f)


def read(path: str | os.PathLike, *, warn: bool = True) -> list[dict]:
    """All records in the file, oldest first. Corrupt or truncated lines are skipped (with a
    warning on stderr); a missing file or a newer schema than ours is a user error."""
    path = Path(path)
    if not path.exists():
        raise MindbenchError(f"no results file at {path}; run `mindbench run --out {path}` first")
    with open(path, "rb") as f:
        _lock(f, exclusive=False)  # don't read a line while another process is writing it
        try:
            data = f.read()
        finally:
            _unlock(f)
    records = []
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw.decode("utf-8"))
            if not isinstance(rec, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as e:
            if warn:
                print(f"mindbench: warning: skipping corrupt line {lineno} of {path} ({e})", file=sys.stderr)
            continue
        schema = rec.get("schema", SCHEMA)
        if isinstance(schema, int) and schema > SCHEMA:
            raise MindbenchError(
                f"{path} line {lineno} has results schema {schema}, newer than this "
                f"mindbench understands ({SCHEMA}); upgrade mindbench"
            )
        records.append(rec)
    return records


def cell_key(config: dict, fingerprint: str | None) -> str:
    """The identity of a cell: model|runtime|precision|device|weights|suites|limit|fingerprint.

    Two records with the same key measured the same thing on the same machine; --resume and the
    report use it to tell a repeat from a different experiment."""
    suites = ",".join(config.get("suites") or [])
    limit = config.get("limit")
    parts = [
        config.get("model"),
        config.get("runtime"),
        config.get("precision"),
        config.get("device"),
        config.get("weights", "pretrained"),
        suites,
        "all" if limit is None else limit,
        fingerprint,
    ]
    # How a chat model was asked for code (suites.CODE_PROTOCOLS) makes a different experiment;
    # keys of records from before the switch (no code_protocol) stay as they were.
    if config.get("code_protocol") and any(s.split(":")[0] == "code" for s in config.get("suites") or []):
        parts.insert(6, f"protocol={config['code_protocol']}")
    # A served model (runtimes/openai) is also where it is served: two endpoints are two cells.
    if config.get("endpoint"):
        parts.insert(-1, f"endpoint={config['endpoint']}")
    return "|".join("" if p is None else str(p) for p in parts)


def read_all(paths) -> list[dict]:
    """All records of the given stores, through the store's own reader (skips corrupt lines)."""
    records = []
    for p in paths:
        if not Path(p).exists():
            raise MindbenchError(f"results file {p} does not exist; run `mindbench run --out {p}` first")
        records.extend(read(p))
    return records


def record_key(rec: dict) -> str:
    """Identity of a cell: its config and the machine it ran on (so reruns replace each other)."""
    return rec.get("cell") or cell_key(rec.get("config") or {}, (rec.get("hardware") or {}).get("fingerprint"))


def latest(records: list[dict]) -> list[dict]:
    """Keep the newest record of each cell (a store that was appended to by reruns).

    Order of first appearance is kept so the table follows the sweep's order.
    """
    keep: dict[str, dict] = {}
    for rec in records:
        k = record_key(rec)
        old = keep.get(k)
        if old is None or str(rec.get("timestamp") or "") >= str(old.get("timestamp") or ""):
            keep[k] = rec
    order = list(dict.fromkeys(record_key(r) for r in records))
    return [keep[k] for k in order]


def _num(x):
    return x if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


def _figure(d) -> tuple:
    """A speed figure {"mean","std","n"} (or a bare number) -> (mean, std, n)."""
    if isinstance(d, dict):
        return _num(d.get("mean")), _num(d.get("std")), d.get("n")
    return _num(d), None, None


def quality_points(q: dict) -> tuple:
    """A suite's quality dict -> (score, standard error in the score's unit, n, metric).

    The suites module reports `value` (a binary metric: 0-1) with `stderr` on that same scale (as
    lm-evaluation-harness does) and `score` = scale * value: 100 for a binary metric (points),
    the record's `scale` (1) for a continuous one, so the standard error in points is scale * stderr.
    """
    scale = _num(q.get("scale")) or 100.0
    score = _num(q.get("score"))
    value = _num(q.get("value"))
    if score is None and value is not None:
        score = scale * value
    se = _num(q.get("stderr"))
    return score, (None if se is None else scale * se), q.get("n"), q.get("metric")


def higher_is_better(q: dict) -> bool:
    """Which way a suite's score is better; records before metrics had a direction were all
    higher-is-better (pass@1, accuracy)."""
    return q.get("higher_is_better", True) is not False


def _estimated(rec: dict) -> set:
    marks = set(rec.get("estimated") or ())
    for section in ("speed", "memory", "roofline", "load"):
        for k, v in (rec.get(section) or {}).items():
            if isinstance(v, dict) and v.get("estimated"):
                marks.add(f"{section}.{k}")
    return marks


def view(rec: dict) -> dict:
    """One record as a flat dict of the figures the table, plots and compare use."""
    from mindbench.models.catalog import CATALOG

    c = rec.get("config") or {}
    hw = rec.get("hardware") or {}
    mem = rec.get("memory") or {}
    speed = rec.get("speed") or {}
    spec = CATALOG.get(c.get("model"))
    peak, peak_src = peak_memory(mem, c.get("device"))
    v = {
        "model": c.get("model"),
        "params_b": spec.params_b if spec else None,
        "runtime": c.get("runtime"),
        "precision": c.get("precision"),
        "dtype": c.get("dtype"),
        "device": c.get("device"),
        "weights": c.get("weights", "pretrained"),
        "fault": c.get("fault"),
        "status": rec.get("status"),
        "error": rec.get("error"),
        "fingerprint": hw.get("fingerprint"),
        "memory_class": hw.get("memory_class"),
        # speed is compared only on the same speed fingerprint, and only when usable
        "speed_fingerprint": hw.get("speed_fingerprint"),
        "cpu_features": hw.get("cpu_features"),
        "cpu_model_id": hw.get("cpu_model_id"),
        "gpu_ids": [[g.get("name"), g.get("compute_capability")] for g in hw.get("gpus") or []],
        "speed_verdict": speed.get("verdict"),
        "bandwidth_method": (rec.get("roofline") or {}).get("bandwidth_method"),
        "bandwidth_gb_s": _num((rec.get("roofline") or {}).get("bandwidth_gb_s")),
        "timestamp": rec.get("timestamp"),
        "run_id": rec.get("run_id"),
        "load_s": _num((rec.get("load") or {}).get("load_s")),
        "weights_mb": _num(mem.get("weights_mb")),
        "peak_mb": _num(peak),
        "peak_source": peak_src,
        "efficiency": _num((rec.get("roofline") or {}).get("efficiency")),
        # Speed figures are comparable only at the same prompt length, decode length and threads.
        "speed_config": [c.get("prompt_tokens"), c.get("new_tokens"), c.get("threads")],
        "use": ", ".join(spec.categories) if spec else "",
        "estimated": sorted(_estimated(rec)),
        "quality": {},
        "fidelity": rec.get("fidelity"),  # mindbench/suites/fidelity.py; None in schema-1 records
    }
    for name in ("decode_tok_s", "prefill_tok_s", "ttft_ms"):
        mean, std, n = _figure(speed.get(name))
        v[name], v[name + "_std"], v[name + "_n"] = mean, std, n
    for suite, q in (rec.get("quality") or {}).items():
        if isinstance(q, dict):
            score, se, n, metric = quality_points(q)
            v["quality"][suite] = {
                "score": score,
                "stderr": se,
                "n": n,
                "metric": metric,
                "empty": q.get("empty_outputs") or 0,
                "protocol": q.get("protocol"),
                "higher_is_better": higher_is_better(q),
                "scale": _num(q.get("scale")) or 100.0,
            }
    return v


# --- one record, typed (recommend reads these; view() above is the flat form for tables) ----------


@dataclass(frozen=True)
class Stat:
    """A repeated measurement: mean, standard deviation, repeats (None where not measured)."""

    mean: float | None = None
    std: float | None = None
    n: int | None = None


@dataclass(frozen=True)
class Quality:
    """One suite's score: 0-100 points, its standard error in points, tasks, metric, and the
    per-task verdicts (schema 2; None in older records)."""

    score_pct: float | None
    stderr_pct: float | None
    n: int | None
    metric: str | None
    items: dict | None = None
    higher_is_better: bool = True
    scale: float = 100.0  # score units per unit of an item's value (100: fractions correct)


@dataclass(frozen=True)
class Record:
    """A stored record read once into typed fields, units in the names. Any schema up to SCHEMA:
    a section an older record lacks reads as None (unknown), never as zero. `raw` keeps the
    stored dict for what has no field yet."""

    raw: dict = field(repr=False)
    schema: int
    status: str | None
    error: str | None
    timestamp: str
    model: str | None
    runtime: str | None
    precision: str | None
    device: str | None
    weights: str  # "pretrained" or "random"
    fault: str | None  # fault injection (tests): says nothing of the model
    prompt_tokens: int | None
    new_tokens: int | None
    fingerprint: str | None  # the machine (hardware.fingerprint)
    memory_class: str | None
    speed_fingerprint: str | None  # what decides speed; None: unknown CPU features
    weights_mb: float | None
    peak_mb: float | None  # the one "memory needed" figure (peak_memory)
    peak_source: str | None
    decode_tok_s: Stat
    prefill_tok_s: Stat
    ttft_ms: Stat
    speed_verdict: str | None  # ok | noisy | contended; None in older records
    bandwidth_gb_s: float | None
    quality: dict  # suite -> Quality

    @classmethod
    def of(cls, rec: dict) -> Record:
        c, hw = rec.get("config") or {}, rec.get("hardware") or {}
        mem, speed = rec.get("memory") or {}, rec.get("speed") or {}
        peak, src = peak_memory(mem, c.get("device"))
        quality = {}
        for suite, q in (rec.get("quality") or {}).items():
            if isinstance(q, dict):
                score, se, n, metric = quality_points(q)
                quality[suite] = Quality(
                    score, se, n, metric, q.get("items"), higher_is_better(q), _num(q.get("scale")) or 100.0
                )
        return cls(
            raw=rec,
            schema=rec.get("schema", 1),
            status=rec.get("status"),
            error=rec.get("error"),
            timestamp=str(rec.get("timestamp") or ""),
            model=c.get("model"),
            runtime=c.get("runtime"),
            precision=c.get("precision"),
            device=c.get("device"),
            weights=c.get("weights") or "pretrained",
            fault=c.get("fault"),
            prompt_tokens=c.get("prompt_tokens"),
            new_tokens=c.get("new_tokens"),
            fingerprint=hw.get("fingerprint"),
            memory_class=hw.get("memory_class"),
            speed_fingerprint=hw.get("speed_fingerprint"),
            weights_mb=_num(mem.get("weights_mb")),
            peak_mb=_num(peak),
            peak_source=src,
            **{k: Stat(*_figure(speed.get(k))) for k in ("decode_tok_s", "prefill_tok_s", "ttft_ms")},
            speed_verdict=speed.get("verdict"),
            bandwidth_gb_s=_num((rec.get("roofline") or {}).get("bandwidth_gb_s")),
            quality=quality,
        )

    @property
    def speed_usable(self) -> bool:
        """May its speed be evidence? Not when its own measurement said noisy or contended."""
        from mindbench.measure.speed import usable

        return usable(self.raw)


def peak_memory(mem: dict | None, device: str | None) -> tuple:
    """(MiB, tracker) -- the one "how much memory did this need" figure, for every table, the
    recommender, compare and the estimator check: the memory a user must have free.

    On CUDA the NVML per-process figure is what the card really gave this process (it includes
    the CUDA context that torch's counters miss); torch reserved is next best. On CPU it is the
    worker's peak resident set size."""
    mem = mem or {}
    order = ("nvml_process_mb", "torch_max_reserved_mb", "nvml_global_mb", "peak_rss_mb")
    if not is_cuda(device or ""):
        order = ("peak_rss_mb",) + order[:3]
    for k in order:
        v = mem.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            return v, k
    return None, None


def peak_mb(mem: dict | None, device: str | None):
    return peak_memory(mem, device)[0]
