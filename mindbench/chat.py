"""`mindbench chat` (its command: mindbench/cli/chat.py): talk to the configuration the recommender
picked, to try the choice at once.

The provider streams tokens as they are generated. The conversation goes to the model as real
turns through its chat template (the provider takes a list of messages); with a provider that
takes only a string, earlier turns are written into the prompt as a transcript (the same shapes
ChatAgent uses). Oldest turns are dropped first when the conversation would not fit the context.
"""

from __future__ import annotations

import math

EXIT = ("/exit", "/quit", "/bye")
CONTEXT_TOKENS = 2048


def transcript(turns: list[tuple[str, str]], message: str, budget_tokens: int) -> str:
    """The prompt for `message` with as many recent turns as fit `budget_tokens` (chars / 4:
    about right for English with BPE tokenizers, and only used to decide what to forget)."""
    kept = list(turns)
    while True:
        if not kept:
            return message
        lines = ["The conversation so far:"] + [
            f"{who}: {text}" for u, a in kept for who, text in (("User", u), ("Assistant", a))
        ]
        prompt = "\n".join(lines) + f"\n\nReply to the user's new message:\n{message}"
        if math.ceil(len(prompt) / 4) <= budget_tokens:
            return prompt
        kept.pop(0)


def conversation(turns: list[tuple[str, str]], message: str, budget_tokens: int, count) -> list[dict]:
    """The messages for `message` with as many recent turns as fit `budget_tokens`, measured by
    `count(messages)` (the provider's exact count of the rendered template)."""
    from mindbench.agents import ChatAgent

    kept = list(turns)
    while True:
        msgs = ChatAgent.messages(kept, message)
        if not kept or count(msgs) <= budget_tokens:
            return msgs
        kept.pop(0)
