"""The data suite: questions about a CSV file; the model writes one pandas expression, the sandbox
runs it against the real file, and the number it reports is the answer."""

from __future__ import annotations

from pathlib import Path

from mindbench.suites import scoring
from mindbench.suites.base import (
    CODE_TIMEOUT_S,
    DATA_MEMORY_MB,
    DEFAULT_CODE_PROTOCOL,
    FileSuite,
    Metric,
    Request,
    Task,
    fail,
    need,
)


def _csv_preview(task: Task, rows: int = 5) -> tuple[str, int]:
    lines = Path(task.fields["path"]).read_text(encoding="utf-8").splitlines()
    return "\n".join(lines[: rows + 1]), len(lines) - 1


class DataSuite(FileSuite):
    """Questions about a CSV file: the model writes one pandas expression, the sandbox runs it
    against the real file, the number it reports is the answer."""

    name, metric = "data", Metric("accuracy")
    file = "data.jsonl"

    def validate(self, path, ln, o, data_dir):
        for k in ("id", "subset", "file", "question", "ref"):
            need(path, ln, o, k, str)
        need(path, ln, o, "answer", (int, float))
        tol = need(path, ln, o, "tol", (int, float))
        if tol < 0:
            fail(path, ln, "'tol' must be >= 0")
        csv = data_dir / o["file"]
        if not csv.is_file():
            fail(path, ln, f"data file {csv} does not exist")
        return Task(
            o["id"],
            "data",
            o["subset"],
            o["question"],
            {"file": o["file"], "path": str(csv), "ref": o["ref"], "answer": o["answer"], "tol": tol},
        )

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
            user = (
                f"The file {name} has {nrows} rows. Its first rows are:\n```\n{preview}\n```\n"
                f"Question: {task.prompt}\n"
                f"Write Python code that reads '{name}' with pandas and puts the answer in `answer`."
            )
            prefix = f"```python\n{script}answer ="
            return Request(engine.render(user, None) + prefix, prefix, ("\n",), 96)
        commented = "\n".join("# " + ln for ln in preview.splitlines())
        prefix = f"# {name} ({nrows} rows), first rows:\n{commented}\n{script}# Question: {task.prompt}\nanswer ="
        return Request(prefix, prefix, ("\n",), 96)

    def program(self, task: Task, text: str, chat: bool):
        # The value of `answer` crosses the sandbox boundary as data and is compared here.
        from mindbench.sandbox.checked import Checked

        return Checked(text.removeprefix("```python\n") + "\n", answer="answer", packages=("pandas",))

    def run_programs(self, programs, sandboxed: bool, workers: int) -> list:
        # data programs each need their own file; run them in a small thread pool
        from concurrent.futures import ThreadPoolExecutor

        from mindbench.sandbox import run_python

        def one(tp):
            t, p = tp
            return run_python(
                p,
                timeout_s=CODE_TIMEOUT_S * 2,
                files={t.fields["file"]: t.fields["path"]},
                memory_mb=DATA_MEMORY_MB,
                sandboxed=sandboxed,
            )

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, programs))

    def verdict(self, task: Task, text: str, run, chat: bool) -> dict:
        # The number is the value of `answer` as it crossed the boundary (sandbox.wire): a number,
        # or text holding exactly one. Never a number the code printed, nor one in the text: the
        # text is an expression (and, for a base model, the CSV preview), so any number in it
        # would be credit the code did not earn.
        got = answer_number(run.answer) if run is not None and run.passed and run.proved else None
        return {
            "correct": scoring.numbers_match(got, task.fields["answer"], task.fields["tol"]),
            "extracted": got,
            "reason": run.reason if run is not None else None,
        }


def answer_number(value) -> float | None:
    """The number an `answer` value states: an int or float (not a bool), or text whose last
    line holds exactly one number ("2746.05", "Total: 2746.05")."""
    if type(value) in (int, float):
        try:
            return float(value)
        except OverflowError:  # an int beyond any float
            return None
    if type(value) is str:
        return scoring.last_printed_number(value)
    return None


SUITE = DataSuite()
