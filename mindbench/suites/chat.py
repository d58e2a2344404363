"""The chat suite: instructions with checkable constraints; every check must hold."""

from __future__ import annotations

from mindbench.suites import scoring
from mindbench.suites.base import DEFAULT_CODE_PROTOCOL, FileSuite, Metric, Request, Task, fail, need


class ChatSuite(FileSuite):
    """Instructions with checkable constraints: every check must hold."""

    name, metric = "chat", Metric("accuracy")
    file = "chat.jsonl"

    def validate(self, path, ln, o, data_dir):
        for k in ("id", "subset", "prompt"):
            need(path, ln, o, k, str)
        checks = need(path, ln, o, "checks", list)
        if not checks:
            fail(path, ln, "'checks' is empty")
        for c in checks:
            if not isinstance(c, dict) or c.get("type") not in scoring.CHECKS:
                fail(path, ln, f"unknown check {c!r}; known types: {', '.join(sorted(scoring.CHECKS))}")
            missing = [k for k in scoring.CHECKS[c["type"]][0] if k not in c]
            if missing:
                fail(path, ln, f"check {c['type']!r} needs {', '.join(missing)}")
        return Task(o["id"], "chat", o["subset"], o["prompt"], {"checks": checks})

    def build_request(self, engine, task: Task, code_protocol: str = DEFAULT_CODE_PROTOCOL) -> Request:
        chat = engine.chat
        if chat:
            return Request(engine.render(task.prompt, None), "", (), 256)
        return Request(f"### Instruction:\n{task.prompt}\n\n### Response:\n", "", ("\n### ",), 256)

    def verdict(self, task: Task, text: str, run, chat: bool) -> dict:
        ok, each = scoring.check_all(text, task.fields["checks"])
        # An empty reply follows no instruction, though it "avoids" every banned word.
        return {"correct": ok and bool(text.strip()), "extracted": None, "checks": each}


SUITE = ChatSuite()
