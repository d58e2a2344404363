"""`mindbench chat`: the command over mindbench.chat (the conversation's prompt building)."""

from __future__ import annotations

import asyncio
import sys

import click

from mindbench.chat import CONTEXT_TOKENS, EXIT, conversation, transcript
from mindbench.cli import command
from mindbench.errors import InputError, MindbenchError
from mindbench.suites import SUITES


async def _reply(provider, prompt: str, system: str | None, max_tokens: int, temperature: float, echo) -> str:
    parts = []
    async for chunk in provider.stream(prompt, system_prompt=system, max_tokens=max_tokens, temperature=temperature):
        parts.append(chunk)
        echo(chunk)
    return "".join(parts)


@command("chat")
@click.option(
    "--task",
    default="chat",
    show_default=True,
    help=f"Which task's recommended configuration to load: a suite ({', '.join(SUITES)}, or a plug-in's).",
)
@click.option(
    "--results",
    type=click.Path(dir_okay=False),
    default=None,
    help="Result file the recommendation is based on (default: every results/*.jsonl).",
)
@click.option(
    "--system",
    "system_prompt",
    default="You are a helpful assistant. Answer clearly and concisely.",
    show_default=True,
    help="System prompt (chat models).",
)
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
    from mindbench.decide.recommend import best_config
    from mindbench.suites import suite_names

    if task not in suite_names():
        raise InputError(f"unknown task {task!r}; choose one of {', '.join(suite_names())}")
    cfg = best_config(task, results)
    try:
        from mindbench.provider import LocalModelProvider
    except ImportError as e:
        raise MindbenchError(f"mindbench chat needs mindbench.provider, which is not importable here ({e})") from None
    click.echo(
        f"mindbench chat: {cfg['model']} at {cfg['precision']} on {cfg['device']} ({cfg['runtime']}), "
        f"recommended for {task}. Loading..."
    )
    provider = LocalModelProvider.from_recommendation(task=task, results_path=results)
    load = getattr(provider, "load_model", None)
    if callable(load):  # load now, not inside the first reply
        load()
    click.echo("Ready. /exit to leave, /reset to forget the conversation.")
    stdin = sys.stdin  # CliRunner swaps it in tests
    turns: list[tuple[str, str]] = []
    budget = CONTEXT_TOKENS - max_tokens

    def echo(chunk: str) -> None:
        click.echo(chunk, nl=False)

    try:
        while True:
            click.echo("you> ", nl=False)
            line = stdin.readline()
            if not line:  # end of input
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
