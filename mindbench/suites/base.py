"""What every suite is made of: a Task, a Request per model kind, a Metric, the Suite interface,
and the pieces built-in suites share (a JSONL task file checked line by line, a deterministic
subset). Nothing here imports torch, and nothing here lists suites: that is the registry
(mindbench/suites/__init__.py)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from mindbench.errors import MindbenchError
from mindbench.paths import suites_dir
from mindbench.suites import scoring

# How long one generated program may run. HumanEval's own harness uses 3 s; every canonical
# solution finishes in well under a second, so 5 s only ever cuts off loops that never end.
CODE_TIMEOUT_S = 5.0
# pandas and numpy need more address space than a plain function test.
DATA_MEMORY_MB = 2048


@dataclass(frozen=True)
class Task:
    id: str
    suite: str
    subset: str
    prompt: str  # code: signature + docstring; others: the question/instruction
    fields: dict = field(default_factory=dict, compare=False, hash=False)  # answer, checks, test, ...


# How a chat model is asked for code. "body" (the default): the assistant turn opens with the
# function's own signature and docstring inside the ```python fence (as evalplus does for chat
# models), so the model writes only the body and stops at the end of the function. "full": it is
# asked for the complete function and re-types signature and docstring first (the old prompt,
# kept so it can still be measured). Scores of the two are different experiments: the protocol
# is part of the cell key and of the quality record. Base models get completion prompts either way.
# Measured on the packaged SmolLM2 (fp32, the 20 code tasks select() picks, same tasks paired):
# body 6/20 vs full 5/20 (one task flipped, to body; exact McNemar p = 1.0), 66 vs 74 generated
# tokens per task (easy: 20 vs 38; HumanEval: 113 vs 110, where this model often rambles).
CODE_PROTOCOLS = ("body", "full")
DEFAULT_CODE_PROTOCOL = "body"


@dataclass
class Request:
    """What to send the engine for one task, and how to read the answer back."""

    prompt: str  # rendered, ready for engine.generate
    prefix: str  # text the model's output continues (part of the answer)
    stop: tuple[str, ...]
    max_new_tokens: int


@dataclass(frozen=True)
class Metric:
    """How a suite's per-item values become its score, and which way is better.

    A binary metric (the default: pass@1, accuracy) scores each item 0 or 1 (the fraction of
    samples correct) and reports 0-100 points. A continuous one takes any real value per item
    (the verdict's "value") and reports its mean in the metric's own unit (scale 1). The record
    keeps the direction and the scale, so compare, stats and recommend honour them without the
    suite being installed."""

    name: str  # "accuracy", "pass@1", ...: the record's quality[suite]["metric"]
    higher_is_better: bool = True
    continuous: bool = False

    @property
    def scale(self) -> float:
        """Points per unit of the per-item value: 100 for fractions correct, 1 otherwise."""
        return 1.0 if self.continuous else 100.0

    def item_value(self, verdict: dict) -> float:
        """One sample's value: the verdict's "value" (continuous), or 1.0/0.0 for "correct"."""
        return float(verdict["value"]) if self.continuous else float(bool(verdict["correct"]))

    def aggregate(self, values: list[list[float]], subsets: list[str]) -> dict:
        """Per-item lists of per-sample values -> the suite's score dict."""
        if self.continuous:
            out = scoring.summarize_values(values, subsets, self.name)
        else:
            out = scoring.summarize(values, subsets, self.name)
        if self.continuous or not self.higher_is_better:  # binary higher-is-better: the old layout
            out.update(scale=self.scale, higher_is_better=self.higher_is_better)
        return out


class Suite:
    """A task suite: its tasks, the request per model kind, the program its output asks to run
    (optional), the verdict, the metric. Defaults fit a plain question-and-answer suite."""

    name: str = ""
    metric: Metric = Metric("accuracy")

    def load(self) -> list[Task]:
        raise NotImplementedError

    def build_request(self, engine, task: Task, code_protocol: str = DEFAULT_CODE_PROTOCOL) -> Request:
        prompt = engine.render(task.prompt, None) if engine.chat else task.prompt
        return Request(prompt, "", (), 256)

    def program(self, task: Task, text: str, chat: bool):
        """A sandbox `Checked` for outputs that are programs; None: the text is the answer."""
        return None

    def run_programs(self, programs: list[tuple[Task, object]], sandboxed: bool, workers: int) -> list:
        from mindbench.sandbox import run_many

        return run_many([p for _, p in programs], timeout_s=CODE_TIMEOUT_S, workers=workers, sandboxed=sandboxed)

    def verdict(self, task: Task, text: str, run, chat: bool) -> dict:
        """{"correct": bool, "extracted": ...} (a continuous metric: {"value": float, ...});
        `run` is the program's SandboxResult or None."""
        raise NotImplementedError

    def protocol(self, engine, code_protocol: str) -> str | None:
        """The prompting protocol the score depends on, kept in the record (None: only one)."""
        return None


class FileSuite(Suite):
    """A built-in suite: its tasks are a file in suites/, each line checked by `validate`."""

    file: str = ""

    def validate(self, path: Path, lineno: int, obj: dict, data_dir: Path) -> Task:
        raise NotImplementedError

    def load(self) -> list[Task]:
        root = suites_dir()
        return read_jsonl(root / self.file, self.validate, root / "data")


# --- task files and subsets ---------------------------------------------------------------


def fail(path: Path, lineno: int, msg: str):
    raise MindbenchError(f"{path}:{lineno}: {msg}; fix that line (each line of a suite file is one JSON task)")


def need(path, lineno, obj, key, types):
    if key not in obj:
        fail(path, lineno, f"missing key {key!r}")
    val = obj[key]
    if not isinstance(val, types) or isinstance(val, bool):  # JSON true is not a number
        names = "/".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        fail(path, lineno, f"key {key!r} must be {names}, got {type(val).__name__}")
    if isinstance(val, str) and not val.strip():
        fail(path, lineno, f"key {key!r} is empty")
    return val


def read_jsonl(path: Path, validate, data_dir: Path) -> list[Task]:
    if not path.is_file():
        raise MindbenchError(
            f"suite file {path} is missing; restore it or point MINDBENCH_SUITES_DIR at a suites folder"
        )
    tasks, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                fail(path, ln, f"not valid JSON ({e.msg} at column {e.colno})")
            if not isinstance(obj, dict):
                fail(path, ln, "a task must be a JSON object")
            task = validate(path, ln, obj, data_dir)
            if task.id in seen:
                fail(path, ln, f"duplicate task id {task.id!r}")
            seen.add(task.id)
            tasks.append(task)
    if not tasks:
        raise MindbenchError(f"suite file {path} has no tasks")
    return tasks


def _rank(task_id: str) -> str:
    return hashlib.sha256(task_id.encode()).hexdigest()


def only_subset(tasks: list[Task], suite: str, subset: str) -> list[Task]:
    """The tasks of one subset (e.g. code's "easy"); a subset the suite lacks is a user error."""
    kept = [t for t in tasks if t.subset == subset]
    if not kept:
        names = ", ".join(sorted({t.subset for t in tasks}))
        raise MindbenchError(f"suite {suite!r} has no subset {subset!r}; choose one of {names}")
    return kept


def select(tasks: list[Task], limit: int | None) -> list[Task]:
    """A deterministic subset of `limit` tasks, the same on every run and machine.

    Within each subset tasks are ordered by a hash of their id (so the pick does not depend on
    file order), and subsets take turns, so a small limit still mixes them: --limit 4 on the code
    suite gives 2 easy and 2 HumanEval problems. The result keeps the suite's order.
    """
    if limit is None or limit >= len(tasks):
        return list(tasks)
    if limit < 1:
        raise MindbenchError(f"--limit must be at least 1, got {limit}")
    queues: dict[str, list[Task]] = {}
    for t in sorted(tasks, key=lambda t: _rank(t.id)):
        queues.setdefault(t.subset, []).append(t)
    order, picked = sorted(queues), set()
    while len(picked) < limit:
        for name in order:
            if queues[name] and len(picked) < limit:
                picked.add(queues[name].pop(0).id)
    return [t for t in tasks if t.id in picked]
