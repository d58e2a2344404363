"""The reasoning suite: questions with one number or option as the answer, extracted from the reply."""

from __future__ import annotations

from mindbench.suites import scoring
from mindbench.suites.base import DEFAULT_CODE_PROTOCOL, FileSuite, Metric, Request, Task, fail, need

REASONING_SHOTS = (
    "Question: Kim has 3 bags with 4 marbles each. She loses 2 marbles. How many marbles does she have?\n"
    "Answer: 10\n\n"
    "Question: Is 9 an even number? Answer yes or no.\nAnswer: no\n\n"
)


class ReasoningSuite(FileSuite):
    """Questions with one number or option as the answer, extracted from the reply."""

    name, metric = "reasoning", Metric("accuracy")
    file = "reasoning.jsonl"

    def validate(self, path, ln, o, data_dir):
        for k in ("id", "subset", "question"):
            need(path, ln, o, k, str)
        ans = need(path, ln, o, "answer", (int, float, str))
        opts = o.get("options")
        if isinstance(ans, str):
            if not isinstance(opts, list) or ans not in opts:
                fail(path, ln, "a text answer needs an 'options' list that contains it")
        return Task(o["id"], "reasoning", o["subset"], o["question"], {"answer": ans, "options": opts})

    def build_request(self, engine, task: Task, code_protocol: str = DEFAULT_CODE_PROTOCOL) -> Request:
        chat = engine.chat
        if chat:
            user = (
                f"{task.prompt}\nThink step by step, then give the final answer on the last line "
                "in the form 'Answer: <answer>'."
            )
            return Request(engine.render(user, None), "", (), 256)
        return Request(f"{REASONING_SHOTS}Question: {task.prompt}\nAnswer:", "", ("\n\n", "\nQuestion:"), 48)

    def verdict(self, task: Task, text: str, run, chat: bool) -> dict:
        ans, opts = task.fields["answer"], task.fields["options"]
        if isinstance(ans, str):
            got = scoring.extract_option(text, opts)
            return {"correct": got is not None and got.lower() == ans.lower(), "extracted": got}
        got = scoring.extract_number(text)
        return {"correct": scoring.numbers_match(got, ans), "extracted": got}


SUITE = ReasoningSuite()
