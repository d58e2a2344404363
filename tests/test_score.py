"""`mindbench score`: completions made anywhere, scored by the suites' own path (sandbox, trusted
checker, metric); human-eval's, evalplus's and --log-samples' formats; pass@k; one-line errors."""

import json

import pytest
from click.testing import CliRunner

from mindbench.cli import cli
from mindbench.suites import scoring
from mindbench.suites.registry import get_suite

CODE = {t.id: t for t in get_suite("code").load()}
IDS = ["HumanEval/0", "HumanEval/32", "HumanEval/38", "easy/0"]
ANY = "    from unittest.mock import ANY\n    return ANY\n"


def _write(path, lines):
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def _score(*args):
    res = CliRunner().invoke(cli, ["score", *map(str, args)])
    return res.exit_code, res.output


def test_human_eval_samples_give_pass_at_k_and_verdicts_with_reasons(tmp_path):
    # human-eval's format: the completion continues the prompt. Per task: the canonical body and
    # a cheat, so every task's pass@1 is 1/2 and pass@2 is 1.
    lines = []
    for tid in IDS:
        lines += [
            {"task_id": tid, "completion": CODE[tid].fields["canonical_solution"]},
            {"task_id": tid, "completion": ANY},
        ]
    samples = _write(tmp_path / "samples.jsonl", lines)
    code, out = _score(samples, "--json")
    assert code == 0, out
    res = json.loads(out[out.index("{") :])
    assert res["n"] == 4 and res["samples"] == 8 and res["value"] == 0.5
    assert res["pass@k"]["pass@2"]["value"] == 1.0 and res["pass@k"]["pass@1"]["value"] == 0.5
    assert res["items"] == {tid: 0.5 for tid in IDS}
    assert res["sandbox"]["mode"] in ("uid", "userns", "plain")  # the tier that really ran
    verdicts = [json.loads(x) for x in (tmp_path / "samples.jsonl_results.jsonl").read_text().splitlines()]
    assert [v["passed"] for v in verdicts] == [True, False] * 4
    assert all("returned a _ANY, not data" in v["reason"] for v in verdicts[1::2])
    assert [v["line"] for v in verdicts] == list(range(1, 9))
    # the table: one row per subset and per pass@k
    code, table = _score(samples, "--out", tmp_path / "v.jsonl")
    assert code == 0 and "pass@2" in table and "humaneval" in table and "50.00" in table


def test_evalplus_solutions_and_log_samples_lines(tmp_path):
    # evalplus writes the whole function as "solution"; a --log-samples line carries its suite,
    # model and the text the run scored as "completion" (a chat reply: a fenced block)
    lines = [{"task_id": tid, "solution": CODE[tid].prompt + CODE[tid].fields["canonical_solution"]} for tid in IDS]
    code, out = _score(_write(tmp_path / "evalplus.jsonl", lines), "--json")
    assert code == 0 and json.loads(out[out.index("{") :])["value"] == 1.0
    t = CODE["easy/0"]
    logged = [
        {
            "suite": "code",
            "task_id": t.id,
            "model": "m",
            "runtime": "r",
            "precision": "p",
            "chat": True,
            "output": "ignored",
            "completion": f"```python\n{t.prompt}{t.fields['canonical_solution']}```",
        },
        {
            "suite": "data",
            "task_id": "sales-1",
            "model": "m",
            "runtime": "r",
            "precision": "p",
            "completion": "whatever",
        },
    ]
    code, out = _score(_write(tmp_path / "log.jsonl", logged), "--json")
    res = json.loads(out[out.index("{") :])
    assert code == 0 and res["value"] == 1.0 and res["samples"] == 1 and res["skipped_lines"] == 1


def test_data_suite_scores_the_answer_value(tmp_path):
    tasks = get_suite("data").load()[:2]
    lines = [
        {
            "task_id": t.id,
            "completion": f"import pandas as pd\ndf = pd.read_csv({t.fields['file']!r})\nanswer = {t.fields['ref']}",
        }
        for t in tasks
    ]
    lines.append({"task_id": tasks[0].id, "completion": f"answer = {tasks[0].fields['answer'] + 1}"})
    code, out = _score(_write(tmp_path / "d.jsonl", lines), "--suite", "data", "--json")
    res = json.loads(out[out.index("{") :])
    assert code == 0 and res["items"] == {tasks[0].id: 0.5, tasks[1].id: 1.0}


@pytest.mark.parametrize(
    "line,message",
    [
        ('{"task_id": "HumanEval/0", "completion": "x"', "bad.jsonl:2: not valid JSON"),
        ('["HumanEval/0"]', "bad.jsonl:2: a sample must be a JSON object"),
        ('{"task_id": "HumanEval/999", "completion": "x"}', "bad.jsonl:2: unknown task id 'HumanEval/999'"),
        ('{"task_id": "HumanEval/1"}', "bad.jsonl:2: missing string 'completion'"),
    ],
)
def test_bad_lines_are_one_line_errors_naming_the_line(tmp_path, line, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "HumanEval/0", "completion": "    return True\\n"}\n' + line + "\n")
    code, out = _score(bad)
    assert code == 2 and message in out and "Traceback" not in out
    assert len(out.strip().splitlines()) == 1


def test_bad_arguments_exit_2(tmp_path):
    assert _score(tmp_path / "missing.jsonl")[0] == 2
    ok = _write(tmp_path / "ok.jsonl", [{"task_id": "easy/0", "completion": "    return 0\n"}])
    code, out = _score(ok, "--suite", "nope")
    assert code == 2 and "unknown suite 'nope'" in out
    mixed = _write(
        tmp_path / "mixed.jsonl",
        [
            {"task_id": "easy/0", "completion": "x", "model": "a"},
            {"task_id": "easy/0", "completion": "x", "model": "b"},
        ],
    )
    code, out = _score(mixed)
    assert code == 2 and "several configurations" in out


def test_pass_at_k_is_the_unbiased_estimator():
    assert scoring.pass_at_k(2, 1, 1) == 0.5 and scoring.pass_at_k(2, 1, 2) == 1.0
    assert scoring.pass_at_k(5, 2, 2) == pytest.approx(1 - (3 * 2) / (5 * 4))


@pytest.mark.slow
def test_a_real_runs_log_scores_as_the_run_did(tmp_path):
    """`mindbench score` on what `--log-samples` wrote gives the run's own score and items."""
    from mindbench.runtimes import get_engine
    from mindbench.suites.pipeline import evaluate

    eng = get_engine("smollm2-135m-instruct", "fp32", device="cpu", runtime="transformers")
    try:
        log = tmp_path / "log.jsonl"
        run = evaluate(eng, "code", limit=4, n_samples=2, batch_size=4, log_samples=log)
    finally:
        eng.unload()
    code, out = _score(log, "--json")
    res = json.loads(out[out.index("{") :])
    assert code == 0 and res["items"] == run["items"] and res["value"] == run["value"]
    assert res["pass@k"] == run["pass@k"]
