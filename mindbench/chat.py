"""`mindbench chat`: talk to the configuration the recommender picked, to try the choice at once.

The provider streams tokens as they are generated. The conversation goes to the model as real
turns through its chat template (the provider takes a list of messages); with a provider that
takes only a string, earlier turns are written into the prompt as a transcript (the same shapes
ChatAgent uses). Oldest turns are dropped first when the conversation would not fit the context.
"""

from __future__ import annotations

import asyncio
import math
import sys

import click

from .errors import MindbenchError
from .suites import SUITES

EXIT = ("/exit", "/quit", "/bye")
CONTEXT_TOKENS = 2048


def transcript(turns: list[tuple[str, str]], message: str, budget_tokens: int) -> str:
    """The prompt for `message` with as many recent turns as fit `budget_tokens` (chars / 4:
    about right for English with BPE tokenizers, and only used to decide what to forget)."""
    kept = list(turns)
    while True:
        if not kept:
            return message
        lines = ["The conversation so far:"] + [f"{who}: {text}" for u, a in kept
                                                 for who, text in (("User", u), ("Assistant", a))]
        prompt = "\n".join(lines) + f"\n\nReply to the user's new message:\n{message}"
        if math.ceil(len(prompt) / 4) <= budget_tokens:
            return prompt
        kept.pop(0)


def conversation(turns: list[tuple[str, str]], message: str, budget_tokens: int, count) -> list[dict]:
    """The messages for `message` with as many recent turns as fit `budget_tokens`, measured by
    `count(messages)` (the provider's exact count of the rendered template)."""
    from .agents import ChatAgent
    kept = list(turns)
    while True:
        msgs = ChatAgent.messages(kept, message)
        if not kept or count(msgs) <= budget_tokens:
            return msgs
        kept.pop(0)


async def _reply(provider, prompt: str, system: str | None, max_tokens: int, temperature: float, echo) -> str:
    parts = []
    async for chunk in provider.stream(prompt, system_prompt=system, max_tokens=max_tokens, temperature=temperature):
        parts.append(chunk)
        echo(chunk)
    return "".join(parts)


@click.command(name="chat")
@click.option("--task", type=click.Choice(SUITES), default="chat", show_default=True,
              help="Which task's recommended configuration to load.")
@click.option("--results", type=click.Path(dir_okay=False), default=None,
              help="Result file the recommendation is based on (default: every results/*.jsonl).")
@click.option("--system", "system_prompt", default="You are a helpful assistant. Answer clearly and concisely.",
              show_default=True, help="System prompt (chat models).")
@click.option("--max-tokens", type=click.IntRange(1), default=256, show_default=True, help="Longest reply.")
@click.option("--temperature", type=click.FloatRange(0), default=0.7, show_default=True, help="0 means greedy.")
def chat_command(task, results, system_prompt, max_tokens, temperature):
    """Chat with the configuration `mindbench recommend` picks for this machine.

    Replies stream as they are generated. Type /exit to leave, /reset to forget the conversation.

    \b
    Examples:
      mindbench chat
      mindbench chat --task code --max-tokens 512
      mindbench chat --results results/runs.jsonl --temperature 0
    """
    from .recommend import best_config
    cfg = best_config(task, results)
    try:
        from .provider import LocalModelProvider
    except ImportError as e:
        raise MindbenchError(f"mindbench chat needs mindbench.provider, which is not importable here ({e})")
    click.echo(f"mindbench chat: {cfg['model']} at {cfg['precision']} on {cfg['device']} ({cfg['runtime']}), "
               f"recommended for {task}. Loading...")
    provider = LocalModelProvider.from_recommendation(task=task, results_path=results)
    load = getattr(provider, "load_model", None)
    if callable(load):                        # load now, not inside the first reply
        load()
    click.echo("Ready. /exit to leave, /reset to forget the conversation.")
    stdin = sys.stdin                         # CliRunner swaps it in tests
    turns: list[tuple[str, str]] = []
    budget = CONTEXT_TOKENS - max_tokens

    def echo(chunk: str) -> None:
        click.echo(chunk, nl=False)

    try:
        while True:
            click.echo("you> ", nl=False)
            line = stdin.readline()
            if not line:                      # end of input
                click.echo()
                break
            message = line.strip()
            if not message:
                continue
            if message.lower() in EXIT:
                break
            if message.lower() == "/reset":
                turns.clear()
                click.echo("(conversation forgotten)")
                continue
            click.echo("model> ", nl=False)
            if getattr(provider, "accepts_messages", False):
                system = [{"role": "system", "content": system_prompt}] if system_prompt else []
                prompt = conversation(turns, message, budget, lambda m: provider.count_tokens(system + m))
            else:
                prompt = transcript(turns, message, budget)
            reply = asyncio.run(_reply(provider, prompt, system_prompt, max_tokens, temperature, echo))
            click.echo()
            turns.append((message, reply.strip()))
    finally:
        unload = getattr(provider, "unload_model", None)
        if callable(unload):
            unload()
    click.echo("bye")
