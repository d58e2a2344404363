"""The `mindbench` command group: fast help, lazy subcommands, a missing module is one clean line."""

import subprocess
import sys

from click.testing import CliRunner

from mindbench import cli


def test_help_lists_every_command_without_importing_them():
    # a fresh interpreter: --help must not pull torch or transformers in (it has to answer at once)
    code = ("import sys; from click.testing import CliRunner; from mindbench.cli import cli; "
            "r = CliRunner().invoke(cli, ['--help']); print(r.output); "
            "print('HEAVY', sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    for name in cli.COMMANDS:
        assert name in out
    assert "HEAVY []" in out


def test_a_subcommand_whose_module_is_missing_fails_cleanly(monkeypatch):
    monkeypatch.setitem(cli.COMMANDS, "ghost", ("mindbench.no_such_module:cmd", "A command that is not there."))
    res = CliRunner().invoke(cli.cli, ["ghost"])
    assert res.exit_code == 1
    assert "`mindbench ghost` is unavailable" in res.output and "no_such_module" in res.output
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit)
    # the other commands still answer
    assert CliRunner().invoke(cli.cli, ["models", "--help"]).exit_code == 0


def test_the_run_commands_mindbench_suggests_parse():
    # recommend and the estimator print `mindbench run --model X --precision Y` for the user to paste
    from mindbench.harness import run_command
    for argv in (["--model", "gemma3-270m", "--precision", "bf16", "--suite", "code"],
                 ["--models", "gemma3-270m", "--precisions", "bf16", "--suite", "code"]):
        ctx = run_command.make_context("run", list(argv))
        assert (ctx.params["models"], ctx.params["precisions"], ctx.params["suite"]) == ("gemma3-270m", "bf16", "code")


def test_a_suite_subset_that_does_not_exist_is_one_line():
    res = CliRunner().invoke(cli.cli, ["run", "--suite", "code:nope", "--out", "/nonexistent/x.jsonl"])
    assert res.exit_code == 1 and "has no subset 'nope'; choose one of easy, humaneval" in res.output
    assert "Traceback" not in res.output
