"""A runtime and a suite added from outside mindbench, in one file, run through `mindbench run`
and `mindbench report`: nothing in mindbench/ is edited, the file registers itself, and
the registration reaches the worker process through MINDBENCH_PLUGINS. A second check: an installed
package's entry point (group mindbench.runtimes) is found without any variable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from mindbench.errors import InputError, MindbenchError

ROOT = Path(__file__).resolve().parent.parent

# The whole plug-in: a Runtime and its Engine. Its timings are fixed numbers, so the record must
# carry exactly these figures if the sweep really ran this engine (and not a built-in one).
TOY = textwrap.dedent("""
    import os

    from mindbench.models import catalog
    from mindbench.runtimes import register_runtime
    from mindbench.runtimes.base import Engine, Generation, Runtime, Timing
    from mindbench.suites import Metric, Suite, Task, register_suite


    class ToyEngine(Engine):
        def render(self, prompt, system_prompt=None):
            return prompt

        def count_tokens(self, text):
            return len(text.split())

        def generate(self, prompts, params):
            # the narrow precision says more; TOY_PAD makes a run wordier still (a "regression")
            text = ("toy" if self.precision == "wide" else "toy toy toy") + "!" * int(os.environ.get("TOY_PAD", 0))
            return [Generation(text=text, tokens=1, finish_reason="stop") for _ in prompts]

        def timed_run(self, prompt_tokens, new_tokens):
            # 0.25 s of prefill, 0.125 s per decoded token: 4 tok/s decode whatever the machine
            return Timing(prompt_tokens, new_tokens, prefill_s=0.25, ttft_s=0.25,
                          decode_s=0.125 * (new_tokens - 1))

        def weight_bytes(self):
            return 1_000_000

        def memory_footprint(self):
            return 1_000_000

        def unload(self):
            pass


    class ToyRuntime(Runtime):
        name = "toy"
        precisions = ("wide", "narrow")
        precision_help = "wide, narrow"

        def default_precisions(self, device):
            return ("wide",)

        def load(self, model, precision, device="auto", **kwargs):
            spec = model if isinstance(model, catalog.ModelSpec) else catalog.resolve(model)
            return ToyEngine("toy", spec, precision or "wide", "cpu", "toy", 0.01, {"weights": "pretrained"})


    class ToySuite(Suite):
        # four tasks, two of which want the word the toy engine always says: a score of 50
        name = "toysuite"
        metric = Metric("accuracy")

        def load(self):
            return [Task(f"toy/{i}", "toysuite", "all", f"say a word ({i})", {"want": "toy" if i % 2 else "cat"})
                    for i in range(4)]

        def verdict(self, task, text, run, chat):
            return {"correct": task.fields["want"] in text, "extracted": text}


    class LengthSuite(Suite):
        # a continuous, lower-is-better metric: the reply's length in characters
        name = "toylen"
        metric = Metric("chars", higher_is_better=False, continuous=True)

        def load(self):
            return [Task(f"len/{i}", "toylen", "all", f"be brief ({i})") for i in range(8)]

        def verdict(self, task, text, run, chat):
            return {"value": len(text), "extracted": text}


    def register():
        register_runtime("toy", ToyRuntime())
        register_suite(ToySuite())
        register_suite(LengthSuite())
    """)


def _env(tmp_path: Path, **extra) -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]), **extra}


def _mindbench(args, env, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "mindbench.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_a_runtime_in_one_file_runs_through_run_and_report(tmp_path):
    (tmp_path / "toy_runtime.py").write_text(TOY)
    env = _env(tmp_path, MINDBENCH_PLUGINS="toy_runtime:register")
    out = tmp_path / "runs.jsonl"
    # a precision the toy does not run is refused before anything starts, naming what it takes
    bad = _mindbench(["run", "--runtimes", "toy", "--precisions", "fp32", "--out", str(out)], env)
    assert bad.returncode == 2 and "toy takes wide, narrow" in bad.stderr and not out.exists()
    bad = _mindbench(["run", "--runtimes", "toy", "--suite", "toysuit", "--out", str(out)], env)
    assert bad.returncode == 2 and "choose from code, chat, reasoning, data, toysuite" in bad.stderr
    run = _mindbench(
        [
            "run",
            "--runtimes",
            "toy",
            "--precisions",
            "wide,narrow",
            "--suite",
            "toysuite",
            "--no-fidelity",
            "--device",
            "cpu",
            "--repeats",
            "1",
            "--prompt-tokens",
            "8",
            "--new-tokens",
            "5",
            "--out",
            str(out),
            "--json",
        ],
        env,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    recs = json.loads(run.stdout)
    assert [(r["config"]["runtime"], r["config"]["precision"], r["status"]) for r in recs] == [
        ("toy", "wide", "ok"),
        ("toy", "narrow", "ok"),
    ]
    assert recs[0]["speed"]["decode_tok_s"]["mean"] == 8.0  # (5 - 1) tokens / 0.5 s: the toy's own
    assert recs[0]["roofline"]["bytes_per_token"] == 1_000_000
    q = recs[0]["quality"]["toysuite"]  # the toy suite's own verdicts, through the worker
    assert (q["score"], q["metric"], q["items"]) == (
        50.0,
        "accuracy",
        {"toy/0": 0.0, "toy/1": 1.0, "toy/2": 0.0, "toy/3": 1.0},
    )
    # no precision given: the toy's own default, from its Runtime, not the transformers list
    out2 = tmp_path / "default.jsonl"
    run2 = _mindbench(
        [
            "run",
            "--runtimes",
            "toy",
            "--suite",
            "none",
            "--no-fidelity",
            "--device",
            "cpu",
            "--repeats",
            "1",
            "--prompt-tokens",
            "8",
            "--new-tokens",
            "5",
            "--out",
            str(out2),
            "--json",
        ],
        env,
    )
    assert run2.returncode == 0, run2.stderr[-2000:]
    assert [r["config"]["precision"] for r in json.loads(run2.stdout)] == ["wide"]
    # the report reads the records with no plug-in loaded at all: a record stands on its own
    rep = _mindbench(["report", str(out), "--json"], {k: v for k, v in env.items() if k != "MINDBENCH_PLUGINS"})
    assert rep.returncode == 0, rep.stderr[-2000:]
    rows = json.loads(rep.stdout)
    rows = rows if isinstance(rows, list) else rows.get("rows", rows)
    text = json.dumps(rows)
    assert '"toy"' in text and '"narrow"' in text and "toysuite" in text


def test_an_installed_packages_entry_point_adds_a_runtime(tmp_path):
    (tmp_path / "toy_runtime.py").write_text(TOY + "\n\nRUNTIME = ToyRuntime()\n")
    dist = tmp_path / "toy_runtime-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-runtime\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[mindbench.runtimes]\ntoy = toy_runtime:RUNTIME\n")
    code = (
        "from mindbench.runtimes import RUNTIMES_REGISTRY, get_runtime, runtime_for, runtime_names;"
        "print(','.join(runtime_names()), ','.join(RUNTIMES_REGISTRY.builtin), get_runtime('toy').name,"
        " runtime_for('narrow').name)"
    )
    p = subprocess.run([sys.executable, "-c", code], env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    names, builtin, toy, narrow = p.stdout.split()
    # built-ins first, in their order, then the plug-in: registered exactly as a built-in is
    assert names == builtin + ",toy" and builtin.startswith("transformers,llamacpp")
    assert (toy, narrow) == ("toy", "toy")


def test_the_registry_owns_each_runtimes_vocabulary(monkeypatch):
    """In-process: precisions, tiers, references and missing packages come from the Runtime."""
    import pytest

    from mindbench.runtimes import get_runtime, register_runtime, runtime_for
    from mindbench.runtimes.base import Runtime
    from mindbench.runtimes.llamacpp.engine import FILE_TYPES
    from mindbench.sweep import harness

    tf, lc = get_runtime("transformers"), get_runtime("llamacpp")
    assert set(lc.precisions) == set(FILE_TYPES.values()) and len(lc.precisions) == len(FILE_TYPES)
    assert runtime_for("bf16") is tf and runtime_for("bf16".upper()) is lc and lc.normalize("q4_k_m") == "Q4_K_M"
    assert tf.is_reference("fp32", "cpu") and not tf.is_reference("bf16", "cpu")
    import torch  # the GPU boundary, faked: the reference is bf16 where the card has it, else fp16

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert tf.is_reference("bf16", "cuda:0") and not tf.is_reference("fp16", "cuda:0")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)  # e.g. a T4
    assert tf.is_reference("fp16", "cuda:0") and not tf.is_reference("int8", "cuda:0")
    assert not lc.is_reference("F32", "cpu")  # llama.cpp is never the quality reference
    with pytest.raises(MindbenchError, match="unknown runtime 'nope'"):
        get_runtime("nope")

    class Missing(Runtime):
        name, precisions, precision_help = "needs-pkg", ("p1",), "p1"
        requires, install_hint = ("no_such_module_for_mindbench",), "pip install no-such-module"

    register_runtime("needs-pkg", Missing())
    try:
        with pytest.raises(InputError, match="needs no_such_module_for_mindbench: pip install no-such-module"):
            harness._check_precisions(["p1"], ["needs-pkg"])
    finally:
        from mindbench.runtimes import unregister_runtime

        unregister_runtime("needs-pkg")


def test_a_lower_is_better_continuous_metric_runs_through_run_report_compare_and_recommend(tmp_path):
    """A plug-in suite whose metric is a length in characters (less is better) is one class: run
    scores it in its own unit, report pairs the precisions the right way round, compare calls a
    longer answer a regression, recommend --task picks the shorter configuration."""
    (tmp_path / "toy_runtime.py").write_text(TOY)
    env = _env(tmp_path, MINDBENCH_PLUGINS="toy_runtime:register")
    args = [
        "--runtimes",
        "toy",
        "--suite",
        "toylen",
        "--no-fidelity",
        "--device",
        "cpu",
        "--repeats",
        "1",
        "--prompt-tokens",
        "8",
        "--new-tokens",
        "5",
        "--json",
    ]
    base, new = tmp_path / "base.jsonl", tmp_path / "new.jsonl"
    run = _mindbench(["run", "--precisions", "wide,narrow", "--out", str(base), *args], env)
    assert run.returncode == 0, run.stderr[-2000:]
    q = {r["config"]["precision"]: r["quality"]["toylen"] for r in json.loads(run.stdout)}
    assert (q["wide"]["score"], q["narrow"]["score"]) == (3.0, 11.0)  # characters, not 0-100 points
    assert q["wide"]["higher_is_better"] is False and q["wide"]["scale"] == 1.0
    assert q["narrow"]["items"] == {f"len/{i}": 11.0 for i in range(8)}
    # report: narrow against its reference (wide), every item longer -> the reference is better
    rep = _mindbench(["report", str(base), "--json"], env)
    assert rep.returncode == 0, rep.stderr[-2000:]
    assert "wide better" in rep.stdout and "narrow better" not in rep.stdout
    # compare: the same cells, wordier -> a quality regression (exit 1), paired by task
    run2 = _mindbench(["run", "--precisions", "wide,narrow", "--out", str(new), *args], {**env, "TOY_PAD": "4"})
    assert run2.returncode == 0, run2.stderr[-2000:]
    cmp = _mindbench(["compare", str(base), str(new), "--no-speed", "--json"], env)
    assert cmp.returncode == 1, (cmp.stdout[-2000:], cmp.stderr[-2000:])
    checks = [c for c in json.loads(cmp.stdout)["checks"] if c["what"] == "toylen score"]
    assert checks and all(c["verdict"] == "regression" and c["test"] == "sign test" for c in checks)
    # ... and the other way round it is an improvement, exit 0
    better = _mindbench(["compare", str(new), str(base), "--no-speed", "--json"], env)
    assert better.returncode == 0, better.stdout[-2000:]
    # recommend --task takes the plug-in suite and picks the shorter answers
    rec = _mindbench(
        ["recommend", "--task", "toylen", "--results", str(base), "--min-tokens-per-sec", "0", "--json"], env
    )
    assert rec.returncode == 0, rec.stderr[-2000:]
    chosen = json.loads(rec.stdout)["tasks"]["toylen"]["chosen"]
    assert (chosen["runtime"], chosen["precision"]) == ("toy", "wide"), chosen
