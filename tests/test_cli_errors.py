"""Every bad command-line value is one line and exit 2, click's own range and type errors
included (they used to print the 4-line usage block)."""

import click
import pytest
from click.testing import CliRunner

from mindbench import cli


def _one_line_2(argv):
    res = CliRunner().invoke(cli.cli, argv)
    assert res.exit_code == 2, (argv, res.output)
    assert res.output.startswith("Error: ") and res.output.count("\n") == 1, (argv, res.output)
    assert "Usage:" not in res.output and "Traceback" not in res.output
    return res.output


@pytest.mark.parametrize("option", ["--limit", "--threads", "--batch-size", "--repeats", "--timeout"])
def test_run_range_errors_are_one_line(option):
    out = _one_line_2(["run", option, "0"])
    assert f"Invalid value for '{option}': 0" in out and "is not in the range" in out


def test_unknown_option_and_bad_type_are_one_line():
    assert "No such option '--limt'" in _one_line_2(["run", "--limt", "3"])
    assert "Invalid value for '--limit'" in _one_line_2(["run", "--limit", "abc"])
    assert "Invalid value for '--code-protocol'" in _one_line_2(["run", "--code-protocol", "x"])


def _bad_values(param: click.Option):
    t = param.type
    if isinstance(t, (click.IntRange, click.FloatRange)) and t.min is not None:
        yield str(t.min - 1)
    if isinstance(t, (click.types.IntParamType, click.types.FloatParamType)):
        yield "not-a-number"
    if isinstance(t, click.Choice):
        yield "no-such-choice"


def test_every_numeric_and_choice_option_of_every_command_is_one_line():
    checked = 0
    for name in cli.COMMANDS:
        cmd = cli.cli.get_command(None, name)
        for p in cmd.params:
            if not isinstance(p, click.Option) or p.is_flag:
                continue
            for bad in _bad_values(p):
                out = _one_line_2([name, p.opts[0], bad])
                # the bad value's own message, or an argument the command needs first
                assert p.opts[0] in out or "Missing argument" in out, (name, p.opts[0], out)
                checked += 1
    assert checked >= 20, checked


def test_help_still_prints_help():
    res = CliRunner().invoke(cli.cli, ["run", "--help"])
    assert res.exit_code == 0 and "Usage:" in res.output and "--limit" in res.output
