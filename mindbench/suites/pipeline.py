"""One path from a suite to a score: load -> select -> requests -> engine.generate -> programs
(run in the sandbox while the rest generate) -> verdicts -> the suite's metric."""

from __future__ import annotations

import json
import time
from pathlib import Path

from mindbench.errors import MindbenchError
from mindbench.suites.base import CODE_PROTOCOLS, DEFAULT_CODE_PROTOCOL, Request, Task, only_subset, select
from mindbench.suites.registry import get_suite

# Sampling temperature when n_samples > 1 (greedy samples would all be identical).
SAMPLE_TEMPERATURE = 0.8


def load_suite(name: str) -> list[Task]:
    """All tasks of a suite, validated. The code suite is HumanEval plus suites/code_easy.jsonl."""
    return get_suite(name).load()


def build_request(engine, task: Task, code_protocol: str = DEFAULT_CODE_PROTOCOL) -> Request:
    """What to send `engine` for `task`: its suite's request for this model kind."""
    return get_suite(task.suite).build_request(engine, task, code_protocol)


# --- scoring one output -------------------------------------------------------------------------


def program_for(task: Task, text: str, chat: bool):
    """The program a task's output asks to run, as a sandbox `Checked` (code: the function, then
    the problem's check(); data: the pandas code, reporting `answer`), or None when the answer is
    plain text. Checked: a pass needs proof that the checks ran to their end, not just exit 0."""
    return get_suite(task.suite).program(task, text, chat)


def verdict(task: Task, text: str, run, chat: bool) -> dict:
    """{"correct": bool, "extracted": ..., ...} for one output; `run` is the SandboxResult of
    the task's program, or None when there was none."""
    return get_suite(task.suite).verdict(task, text, run, chat)


def run_programs(programs: list[tuple[Task, str]], sandboxed: bool, workers: int):
    """Run the programs through the sandbox, as their suite runs them (one batch is one suite's)."""
    if not programs:
        return []
    return get_suite(programs[0][0].suite).run_programs(programs, sandboxed, workers)


def evaluate(
    engine,
    suite: str,
    *,
    limit: int | None = None,
    batch_size: int = 8,
    n_samples: int = 1,
    log_samples: Path | None = None,
    sandboxed: bool = True,
    progress=None,
    workers: int = 2,
    max_new_tokens: int | None = None,
    subset: str | None = None,
    code_protocol: str = DEFAULT_CODE_PROTOCOL,
) -> dict:
    """Score `engine` on `suite` (optionally a deterministic subset of `limit` tasks).

    Greedy decoding by default; with n_samples > 1 each task is sampled n times at temperature
    0.8 and pass@k is reported. `progress(stage, done, total)` is called as work completes.
    `max_new_tokens` overrides the suite's token budget (a quick look; scores are then not
    comparable with full-budget runs). `subset` keeps one subset only (e.g. "humaneval").
    Returns the suite's score dict (docs/architecture.md, quality section).
    """
    from mindbench.runtimes.base import GenParams

    if n_samples < 1:
        raise MindbenchError(f"n_samples must be at least 1, got {n_samples}")
    tasks = load_suite(suite)
    if subset is not None:
        tasks = only_subset(tasks, suite, subset)
    tasks = select(tasks, limit)
    if code_protocol not in CODE_PROTOCOLS:
        raise MindbenchError(f"unknown code protocol {code_protocol!r}; choose one of {', '.join(CODE_PROTOCOLS)}")
    requests = [build_request(engine, t, code_protocol) for t in tasks]
    # Every task of a suite shares its stop strings and token budget for a given model kind, so
    # one GenParams serves every batch.
    params = GenParams(
        max_new_tokens=max_new_tokens or requests[0].max_new_tokens,
        stop=requests[0].stop,
        temperature=SAMPLE_TEMPERATURE if n_samples > 1 else 0.0,
        batch_size=batch_size,
        repetition_penalty=1.0,
    ).validate()
    flat = [(i, r) for i, r in enumerate(requests) for _ in range(n_samples)]
    gens, texts, programs, runs, gen_s = _generate_and_run(
        engine, tasks, flat, params, batch_size, sandboxed, workers, progress
    )

    metric = get_suite(suite).metric
    verdicts: list[list[float]] = [[] for _ in tasks]
    samples = []
    for k, ((i, req), gen, text) in enumerate(zip(flat, gens, texts)):
        v = verdict(tasks[i], text, runs.get(k), engine.chat)
        verdicts[i].append(metric.item_value(v))
        samples.append(
            {
                "suite": suite,
                "task_id": tasks[i].id,
                "subset": tasks[i].subset,
                "sample": len(verdicts[i]) - 1,
                "prompt": req.prompt,
                "output": gen.text,
                "finish_reason": gen.finish_reason,
                "tokens": gen.tokens,
                "completion": text,
                "chat": engine.chat,  # what `mindbench score` re-scores
                "program": programs[k][1],
                **v,
                "stdout": runs[k].stdout[-2000:] if k in runs else None,
            }
        )

    result = metric.aggregate(verdicts, [t.subset for t in tasks])
    # Per-task verdicts, so two cells scored on the same tasks pair by id (mindbench.measure.stats: McNemar,
    # paired bootstrap). Task ids are short (HumanEval/163): ~3 KB for all 164 HumanEval tasks.
    result["items"] = {t.id: sum(v) / len(v) for t, v in zip(tasks, verdicts)}
    # Outputs that ran to the token limit and decode to nothing: the model emitted only special
    # tokens, the mark of broken numerics (Gemma 3 at fp16 overflows and writes <pad> forever).
    # Counted so a 0 score says why instead of passing for a weak model.
    result["empty_outputs"] = sum(1 for g in gens if g.finish_reason == "length" and not g.text.strip())
    if runs:  # the isolation tier that really ran, as the sandbox reported it
        from mindbench.sandbox import isolation_summary

        result["sandbox"] = isolation_summary(runs.values())
    result["gen_tokens"] = sum(g.tokens for g in gens)
    result["gen_s"] = gen_s
    protocol = get_suite(suite).protocol(engine, code_protocol)
    if protocol:
        result["protocol"] = protocol  # compare never pairs scores of different protocols
    if log_samples is not None:
        _log(Path(log_samples), samples, engine)
    return result


def _generate_and_run(engine, tasks, flat, params, batch_size, sandboxed, workers, progress):
    """Generate every request and run the programs, overlapped: each program goes to the
    sandbox (a background thread) as soon as its output is complete, while the rest generate.
    An engine whose generate() takes on_result (transformers: continuous batching) gets every
    prompt in one call and reports each as it ends; any other gets one batch at a time, shortest
    prompts first (a batch of alike lengths pads least).

    Returns (gens, texts, programs [(task, program or None)], runs {k: SandboxResult}, gen_s),
    indexed like `flat`."""
    import inspect
    from concurrent.futures import ThreadPoolExecutor

    order = sorted(range(len(flat)), key=lambda k: len(flat[k][1].prompt))
    gens: list = [None] * len(flat)
    texts: list = [None] * len(flat)
    programs: list = [None] * len(flat)
    pending, gen_s, tokens = [], 0.0, 0
    each = "on_result" in inspect.signature(engine.generate).parameters
    step = len(order) if each else max(batch_size, 1)
    # One program per task, `workers` at a time, as run_many ran a batch of them.
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="mindbench-sandbox") as runner:
        for start in range(0, len(order), step):
            ks = order[start : start + step]
            t0, finished = time.perf_counter(), []

            def on_result(j, g, ks=ks, t0=t0, finished=finished):
                nonlocal tokens
                k = ks[j]
                i, req = flat[k]
                gens[k], texts[k] = g, req.prefix + g.text
                programs[k] = (tasks[i], program_for(tasks[i], texts[k], engine.chat))
                tokens += g.tokens
                finished.append(k)
                if programs[k][1] is not None:
                    pending.append(([k], runner.submit(run_programs, [programs[k]], sandboxed, workers)))
                if progress and each:
                    progress(
                        "generate",
                        start + len(finished),
                        len(flat),
                        tokens=tokens,
                        seconds=gen_s + time.perf_counter() - t0,
                    )

            prompts = [flat[k][1].prompt for k in ks]
            if each:
                engine.generate(prompts, params, on_result=on_result)
            else:
                for j, g in enumerate(engine.generate(prompts, params)):
                    on_result(j, g)
            gen_s += time.perf_counter() - t0
            if progress and not each:
                progress("generate", start + len(ks), len(flat), tokens=tokens, seconds=gen_s)
        runs = {}
        for todo, fut in pending:
            runs.update(zip(todo, fut.result()))
    if progress and runs:
        progress("execute", len(runs), len(runs))
    return gens, texts, programs, runs, gen_s


def _log(path: Path, samples: list[dict], engine) -> None:
    """Append every prompt, output, extracted answer and verdict as JSON lines (for inspection,
    not for scoring: the score dict is computed from the same verdicts)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tag = {"model": engine.spec.id, "runtime": engine.runtime, "precision": engine.precision, "device": engine.device}
    with open(path, "a", encoding="utf-8") as f:
        for s in samples:
            f.write(json.dumps({**tag, **s}, default=str) + "\n")
