"""The `mindbench` command group: fast help, lazy subcommands, a missing module is one clean line."""

import subprocess
import sys

import pytest
from click.testing import CliRunner

from mindbench import cli


def test_help_lists_every_command_without_importing_them():
    # a fresh interpreter: --help must not pull torch or transformers in (it has to answer at once)
    code = (
        "import sys; from click.testing import CliRunner; from mindbench.cli import cli; "
        "r = CliRunner().invoke(cli, ['--help']); print(r.output); "
        "print('HEAVY', sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
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
    from mindbench.cli.run import run_command

    for argv in (
        ["--model", "gemma3-270m", "--precision", "bf16", "--suite", "code"],
        ["--models", "gemma3-270m", "--precisions", "bf16", "--suite", "code"],
    ):
        ctx = run_command.make_context("run", list(argv))
        assert (ctx.params["models"], ctx.params["precisions"], ctx.params["suite"]) == ("gemma3-270m", "bf16", "code")


def test_a_suite_subset_that_does_not_exist_is_one_line():
    res = CliRunner().invoke(cli.cli, ["run", "--suite", "code:nope", "--out", "/nonexistent/x.jsonl"])
    assert res.exit_code == 2 and "has no subset 'nope'; choose one of easy, humaneval" in res.output
    assert "Traceback" not in res.output


# --- `mindbench run` checks every value before anything starts ----


@pytest.fixture
def no_sweep(monkeypatch):
    """Fails the test if run_command got as far as starting the sweep (a worker, a model load)."""
    from mindbench.sweep import harness

    monkeypatch.setattr(harness, "sweep", lambda *a, **k: pytest.fail("the sweep started"))


def _one_line_exit_2(argv):
    res = CliRunner().invoke(cli.cli, ["run", *argv])
    assert res.exit_code == 2, (argv, res.output)
    assert res.output.startswith("Error: ") and res.output.count("\n") == 1, res.output
    assert "Traceback" not in res.output
    return res.output


def test_run_rejects_impossible_values_before_any_work(tmp_path, no_sweep):
    afile = tmp_path / "afile"
    afile.write_text("x")
    store = tmp_path / "runs.jsonl"
    store.write_text('{"kept": true}\n')
    before = store.stat().st_mtime_ns
    for argv, says in (
        (["--precisions", "fp8"], "precision 'fp8' means nothing"),
        (["--runtimes", "transformers", "--precisions", "Q4_1"], "GGUF types"),
        (["--runtimes", "vllm", "--precisions", "fp16"], "unknown runtime 'vllm'"),
        (["--suite", "cod"], "unknown suite 'cod'"),
        (["--models", "no-such-model-xyz"], "unknown model"),
    ):
        assert says in _one_line_exit_2([*argv, "--out", str(store)])
    assert store.read_text() == '{"kept": true}\n' and store.stat().st_mtime_ns == before
    for out, says in (
        (afile / "out.jsonl", "is a file, not a folder"),
        ("/proc/x/out.jsonl", "cannot create files in /proc"),
    ):
        assert says in _one_line_exit_2(["--precisions", "fp32", "--out", str(out)])
    # nothing was created on the way: no store, no folders, no probe left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "runs.jsonl"]


def test_every_command_gives_a_bad_value_exit_2_in_one_line(tmp_path):
    """Exit 2 means "you asked for something that cannot work" for every command, as it does for
    run and compare (whose 1 means "regression": a missing baseline must never read as one)."""
    missing = str(tmp_path / "missing.jsonl")
    store = tmp_path / "runs.jsonl"
    store.write_text('{"kept": true}\n')
    for argv, says in (
        (["report", missing], "does not exist"),
        (["recommend", "--results", missing], "no results file"),
        (["recommend", "--max-memory", "lots", "--results", str(store)], "can't read --max-memory"),
        (["recommend", "--profile", "t4-16g", "--results", str(store)], "did you mean t4-16gb"),
        (["recommend", "--gpu", "RTX 4090", "--profile", "t4-16gb", "--results", str(store)], "not both"),
        (["hardware", "--gpu-memory", "0.1MB"], "too small"),
        (["hardware", "--ram", "lots"], "can't read --ram"),
        (["chat", "--results", missing], "no results file"),
        (["models", "--install", "no-such-model-xyz"], "unknown model"),
        (["estimate", "--model", "no-such-model-xyz", "--precision", "fp16"], "no architecture shape"),
        (["compare", missing, str(store)], "does not exist"),
        (["report", str(tmp_path)], "is a folder, not a results file"),
        (["compare", str(store), str(tmp_path)], "is a folder, not a results file"),
    ):
        res = CliRunner().invoke(cli.cli, argv, input="/exit\n")
        assert res.exit_code == 2, (argv, res.exit_code, res.output)
        assert res.output.startswith("Error: ") and res.output.count("\n") == 1, (argv, res.output)
        assert says in res.output and "Traceback" not in res.output, (argv, res.output)
    assert store.read_text() == '{"kept": true}\n'


def test_an_empty_suite_file_is_an_error_not_a_stored_row(tmp_path, monkeypatch, no_sweep):
    import shutil

    from mindbench.paths import suites_dir

    shutil.copytree(suites_dir(), tmp_path / "suites")
    (tmp_path / "suites" / "chat.jsonl").write_text("")
    monkeypatch.setenv("MINDBENCH_SUITES_DIR", str(tmp_path / "suites"))
    out = tmp_path / "runs.jsonl"
    assert "has no tasks" in _one_line_exit_2(["--suite", "chat", "--precisions", "fp32", "--out", str(out)])
    assert not out.exists()


def test_the_public_api_imports_from_the_package_lazily():
    """`from mindbench import LocalModelProvider` was an ImportError."""
    code = (
        "import sys\nimport mindbench\nassert 'mindbench.provider' not in sys.modules\n"
        "from mindbench import (LocalModelProvider, CodeAgent, ChatAgent, DataAnalysisAgent, get_engine,\n"
        "                       GenParams, run_python, MindbenchError, best_config, evaluate)\n"
        "import mindbench.provider, mindbench.agents\n"
        "assert LocalModelProvider is mindbench.provider.LocalModelProvider\n"
        "assert CodeAgent is mindbench.agents.CodeAgent and 'CodeAgent' in dir(mindbench)\n"
        "assert set(mindbench.__all__) >= {'LocalModelProvider', 'CodeAgent', 'get_engine'}\n"
        "try:\n    mindbench.no_such_name\nexcept AttributeError:\n    pass\nelse:\n    raise SystemExit(1)\n"
        "print('HEAVY', sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "HEAVY []" in res.stdout  # importing the names loads no model library
