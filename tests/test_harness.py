"""The sweep, end to end on the real packaged model: records, faults (a real OOM, a real segfault,
a hang), SIGKILL + --resume, perf-only mode, the CLI.

Kept lean for a shared 2-core machine: small prompts (64 tokens in, 16 out), 2 tasks of one suite.
"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from mindbench.errors import MindbenchError
from mindbench.models.catalog import DEFAULT_MODEL
from mindbench.runtimes.transformers import onednn
from mindbench.store import results
from mindbench.sweep import harness

pytestmark = pytest.mark.slow
SMALL = dict(repeats=2, prompt_tokens=64, new_tokens=16, batch_size=2, progress=False)
# One compute thread per worker: on this shared 2-core machine two OpenMP threads stall each
# other whenever a core is busy elsewhere (measured: 10x slower). Tests check behaviour, not speed.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
SUITE = "code"


def _suites_ready() -> bool:
    try:
        from mindbench.suites import evaluate  # noqa: F401

        return True
    except ImportError:
        return False


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    out = tmp_path_factory.mktemp("three") / "runs.jsonl"
    suites = [SUITE] if _suites_ready() else []
    recs = harness.sweep(
        [DEFAULT_MODEL],
        ["fp32", "fp16", "int4"],
        suites=suites,
        out=out,
        limit=2,
        device="cpu",
        env=ONE_THREAD,
        **SMALL,
    )
    return out, recs, suites


def test_three_precisions_every_field(three):
    out, recs, suites = three
    assert [r.config.precision for r in recs] == ["fp32", "fp16", "int4"]
    assert results.read(out) == recs  # what was returned is exactly what was stored
    weights = {}
    for r in recs:
        assert r.status == "ok", r.error
        assert r.error is None and r.schema == results.SCHEMA and r.run_id and r.timestamp
        c = r.config
        assert r.cell == results.cell_key(c, r.hardware.fingerprint)
        assert (c.model, c.runtime, c.device, c.weights) == (DEFAULT_MODEL, "transformers", "cpu", "pretrained")
        assert c.source.startswith("packaged") and c.revision
        assert c.dtype in ("float32", "float16", "bfloat16")
        assert (c.limit, c.repeats, c.prompt_tokens, c.new_tokens, c.suites) == (2, 2, 64, 16, suites)
        assert c.threads == 1
        hw, sw = r.hardware, r.software
        assert hw.fingerprint and hw.cores >= 1 and hw.ram_mb > 0 and hw.gpus == []
        assert sw.mindbench and sw.python and sw.torch and sw.extra["transformers"] and sw.extra["bitsandbytes"]
        assert sw.commit is None or len(sw.commit) >= 40
        assert r.load.load_s > 0 and isinstance(r.load.cold, bool)
        m = r.memory
        assert m.weights_mb > 10 and m.peak_rss_mb > m.weights_mb
        assert m.nvml_global_mb is None and m.torch_max_allocated_mb is None  # CPU
        for k in ("prefill_tok_s", "decode_tok_s", "ttft_ms"):
            s = r.speed.figure(k)
            # at least --repeats; more until the CI target or the time cap
            assert s.n >= 2 and s.n == r.speed.repeats and s.mean > 0 and s.std >= 0
        assert r.speed.verdict in ("ok", "noisy", "contended") and r.speed.itl_ms["p50"] > 0
        # the kernel the linear layers ran on is part of what a CPU speed means (runtimes/onednn.py);
        # fp16 weights keep torch's kernel
        kernel = r.speed.runtime_settings["linear_kernel"]
        assert (
            kernel.startswith("torch (no fp32")
            if c.precision == "fp16"
            else kernel.startswith("onednn (" if onednn.available() is None else "torch (")
        )
        roof = r.roofline
        assert roof.bandwidth_method.startswith("read:")
        assert roof.bandwidth_gb_s > 0 and roof.bytes_per_token > 1e6
        assert roof.efficiency == pytest.approx(
            r.speed.decode_tok_s.mean * roof.bytes_per_token / (roof.bandwidth_gb_s * 1e9), rel=1e-3
        )
        assert 0 < roof.efficiency < 5
        for suite in suites:
            q = r.quality[suite]
            assert q.n == 2 and 0 <= q.value <= 1 and q.score == pytest.approx(100 * q.value, abs=0.01)
            assert q.metric == "pass@1" and q.stderr >= 0
        weights[c.precision] = m.weights_mb
    # the precisions really differ in what they hold
    # (int4 keeps embeddings and norms unquantized, so it is ~60% of fp16 for this small model)
    assert weights["fp32"] > 1.8 * weights["fp16"] and weights["fp16"] > 1.3 * weights["int4"]
    # bandwidth measured once, by the first cell, and passed on
    assert len({r.roofline.bandwidth_gb_s for r in recs}) == 1


def test_table_shows_each_precision(three):
    _, recs, suites = three
    from mindbench.present.table import text as table_text  # run's summary: the one table, report's too

    text = table_text(recs, "simple")
    for p in ("fp32", "fp16", "int4"):
        assert p in text
    for col in ("peak MB", "prefill tok/s", "decode tok/s", "TTFT ms", "roofline", *suites):
        assert col in text
    assert " ± " in text


def test_real_oom_and_segfault_cells_do_not_stop_the_sweep(tmp_path):
    out = tmp_path / "faults.jsonl"
    # fp16: a real allocation the device can't give, after load; bf16: a real null dereference.
    recs = harness.sweep(
        [DEFAULT_MODEL],
        ["fp16", "bf16", "fp32"],
        suites=[],
        out=out,
        limit=1,
        device="cpu",
        env={**ONE_THREAD, "MINDBENCH_FAULT": "oom@fp16,segfault@bf16"},
        **{**SMALL, "repeats": 1},
    )
    status = {r.config.precision: r for r in recs}
    assert status["fp16"].status == "oom"
    assert "allocate memory" in status["fp16"].error or "MemoryError" in status["fp16"].error
    assert status["fp16"].memory.weights_mb > 0  # what was measured before the OOM is kept
    assert status["bf16"].status == "crashed" and "SIGSEGV" in status["bf16"].error
    assert status["bf16"].hardware.fingerprint and status["bf16"].config.model == DEFAULT_MODEL
    assert status["fp32"].status == "ok"  # the sweep went on after both
    # a cell an injected fault hit says so (recommend skips it); the untouched one does not
    assert status["fp16"].config.fault == "oom" and status["fp32"].config.fault is None
    assert "fault" not in status["fp32"].to_json()["config"]  # absent from the stored line, not null
    assert [r.status for r in results.read(out)] == ["oom", "crashed", "ok"]


def test_hang_becomes_timeout_and_worker_is_killed(tmp_path):
    out = tmp_path / "hang.jsonl"
    t = time.perf_counter()
    recs = harness.sweep(
        [DEFAULT_MODEL],
        ["fp32"],
        suites=[],
        out=out,
        device="cpu",
        timeout_s=4,
        env={"MINDBENCH_FAULT": "hang"},
        **SMALL,
    )
    assert time.perf_counter() - t < 30
    assert recs[0].status == "timeout" and "4 s" in recs[0].error
    assert results.read(out)[0].status == "timeout"


def test_unavailable_model_is_skipped(tmp_path):
    out = tmp_path / "skip.jsonl"
    # a Hub model that is not cached, with the Hub declared unreachable: it can't be had here
    recs = harness.sweep(
        ["tinyllama-1.1b-chat"],
        ["fp32"],
        suites=[],
        out=out,
        device="cpu",
        env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")},
        **SMALL,
    )
    assert recs[0].status == "skipped", recs[0].error
    assert "HF_HUB_OFFLINE" in recs[0].error and recs[0].speed.decode_tok_s is None


def test_threads_option_reaches_both_runtimes(tmp_path):
    import importlib.util

    runtimes = ["transformers"] + (["llamacpp"] if importlib.util.find_spec("llama_cpp") else [])
    out = tmp_path / "threads.jsonl"
    # no OMP_NUM_THREADS here: --threads alone must set what each runtime computes with
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "mindbench.cli",
            "run",
            "--suite",
            "none",
            "--precision",
            "fp32,Q4_1",
            "--runtimes",
            ",".join(runtimes),
            "--device",
            "cpu",
            "--repeats",
            "1",
            "--prompt-tokens",
            "16",
            "--new-tokens",
            "4",
            "--threads",
            "1",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert res.returncode == 0, res.stderr
    recs = results.read(out)
    assert [r.to_json() for r in recs] == json.loads(res.stdout)  # --json prints what was stored
    assert sorted(r.config.runtime for r in recs) == sorted(runtimes)
    assert all(r.status == "ok" and r.config.threads == 1 for r in recs), [r.config for r in recs]
    n = len(runtimes)
    assert f"[{n}/{n}] " in res.stderr  # the progress lines count cells


def test_one_subset_of_a_suite_is_scored_under_its_own_name(tmp_path):
    out = tmp_path / "sub.jsonl"
    (rec,) = harness.sweep(
        [DEFAULT_MODEL],
        ["int4"],
        suites=["code:easy"],
        out=out,
        limit=2,
        device="cpu",
        env=ONE_THREAD,
        log_samples=str(tmp_path / "samples"),
        **SMALL,
    )
    assert rec.status == "ok", rec.error
    assert list(rec.quality) == ["code:easy"] and rec.quality["code:easy"].n == 2
    assert list(rec.quality["code:easy"].subsets) == ["easy"]
    (log,) = (tmp_path / "samples").iterdir()
    assert {json.loads(x)["subset"] for x in log.read_text().splitlines()} == {"easy"}
    assert "|code:easy|" in rec.cell  # never the same cell as the whole suite


def test_an_unexpected_exception_keeps_its_traceback_in_the_record():
    from mindbench.sweep import worker

    (cfg,) = harness.plan([DEFAULT_MODEL], ["fp32"], suites=[], device="cpu", repeats=1, prompt_tokens=16, new_tokens=2)
    cfg.update(bandwidth_gb_s=1.0, speed_ci="tight")  # a bug's stand-in: a wrong type deep inside
    rec = worker.run_cell(cfg)
    assert rec.status == "error" and rec.error.startswith("TypeError")
    assert "measure_speed" in rec.traceback and rec.traceback.rstrip().endswith(rec.error.split(" (")[0])


def test_no_weights_perf_only(tmp_path):
    out = tmp_path / "nw.jsonl"
    recs = harness.sweep(
        [DEFAULT_MODEL], ["fp32"], suites=[SUITE], out=out, device="cpu", no_weights=True, env=ONE_THREAD, **SMALL
    )
    r = recs[0]
    assert r.status == "ok", r.error
    assert r.config.weights == "random" and r.quality == {} and r.config.suites == []
    assert r.speed.decode_tok_s.mean > 0 and r.memory.weights_mb > 100
    assert "|random|" in r.cell


def _two_cell_run(out):
    return [
        sys.executable,
        "-m",
        "mindbench.cli",
        "run",
        "--suite",
        "none",
        "--precisions",
        "fp32,fp16",
        "--device",
        "cpu",
        "--repeats",
        "1",
        "--prompt-tokens",
        "32",
        "--new-tokens",
        "4",
        "--out",
        str(out),
    ]


def _wait_for_first_cell(out):
    deadline = time.time() + 180
    while time.time() < deadline and not (out.exists() and out.read_text().count("\n") >= 1):
        time.sleep(0.2)
    assert out.exists(), "first cell never finished"


def test_sigkill_mid_sweep_then_resume_without_duplicates(tmp_path):
    out = tmp_path / "resume.jsonl"
    args = _two_cell_run(out)
    env = {**os.environ, **ONE_THREAD}
    parent = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    _wait_for_first_cell(out)
    import psutil

    workers = psutil.Process(parent.pid).children(recursive=True)
    assert workers, "the second cell's worker should be running"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    # the orphaned worker notices its parent is gone and exits (it would skew the resumed run)
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive
    with open(out, "a") as f:
        f.write('{"schema": 1, "cell": "torn')  # a crash mid-write, for good measure
    done = subprocess.run(args + ["--resume", "--json"], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    assert "skipping corrupt line" in done.stderr
    # off a terminal, progress is plain lines: the resumed run shows only the cell it still runs
    assert "[2/2] smollm2-135m-instruct transformers fp16: speed" in done.stderr and "[1/2]" not in done.stderr
    printed = json.loads(done.stdout)
    assert [r["config"]["precision"] for r in printed] == ["fp32", "fp16"]
    recs = results.read(out, warn=False)
    assert [r.config.precision for r in recs] == ["fp32", "fp16"]  # fp32 was not run again
    assert len({r.cell for r in recs}) == 2 and all(r.status == "ok" for r in recs)
    # a second resume has nothing left to do
    again = subprocess.run(args + ["--resume", "--json"], capture_output=True, text=True, timeout=120, env=env)
    assert again.returncode == 0 and len(results.read(out, warn=False)) == 2


def test_ctrl_c_mid_sweep_says_what_is_stored_and_how_to_finish(tmp_path):
    """Ctrl-C reaches the whole foreground process group, as a terminal sends it: the run stops
    with exit 130, says how many cells it stored and that --resume finishes; no worker is left."""
    import psutil

    out = tmp_path / "int.jsonl"
    env = {**os.environ, **ONE_THREAD}
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:  # a file, not a pipe nobody reads while the run goes on
        parent = subprocess.Popen(
            _two_cell_run(out),
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
            start_new_session=True,
            # as from a terminal: a test run started in the background (a CI job behind `&`)
            # inherits SIGINT ignored, and Python then never raises KeyboardInterrupt
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    _wait_for_first_cell(out)
    workers = psutil.Process(parent.pid).children(recursive=True)
    os.killpg(parent.pid, signal.SIGINT)
    parent.wait(timeout=60)
    stderr = log.read_text()
    assert parent.returncode == 130, stderr[-2000:]
    assert "interrupted after" in stderr and "1 finished cell(s) stored in" in stderr and "--resume" in stderr
    assert "Traceback" not in stderr and "Aborted!" not in stderr, stderr[-2000:]
    assert [r.config.precision for r in results.read(out)] == ["fp32"]
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert not alive


def test_cli_options_and_errors(tmp_path):
    from mindbench.cli import cli

    r = CliRunner().invoke(cli, ["run", "--help"])
    assert r.exit_code == 0 and "--resume" in r.output and "Examples" in r.output
    for argv, msg in (
        (["--suite", "poetry"], "unknown suite"),
        (["--full", "--limit", "3"], "--full"),
        (["--executor", "carrier-pigeon"], "unknown executor"),
        (["--models", "no-such-model-xyz"], "unknown model"),
    ):
        r = CliRunner().invoke(cli, ["run", *argv, "--out", str(tmp_path / "x.jsonl")])
        assert r.exit_code != 0 and msg in r.output, (argv, r.output)
        assert "Traceback" not in r.output


def test_missing_executor_is_one_line():
    with pytest.raises(MindbenchError, match="not available"):
        harness.EXECUTORS.register("ghost", "mindbench.no_such_module:X")
        try:
            harness.get_executor("ghost")
        finally:
            harness.EXECUTORS._targets.pop("ghost")


def test_plan_gives_each_runtime_its_own_precisions():
    """bitsandbytes precisions go to transformers, GGUF types to llama.cpp (the file's own by default)."""
    from mindbench.sweep import harness

    cells = harness.plan(
        ["smollm2-135m-instruct", "tinyllama-1.1b-chat"], ["fp16", "int4"], ["transformers", "llamacpp"]
    )
    assert [(c["model"], c["runtime"], c["precision"]) for c in cells] == [
        ("smollm2-135m-instruct", "transformers", "fp16"),
        ("smollm2-135m-instruct", "transformers", "int4"),
        ("smollm2-135m-instruct", "llamacpp", "Q4_1"),
        ("tinyllama-1.1b-chat", "transformers", "fp16"),
        ("tinyllama-1.1b-chat", "transformers", "int4"),
        ("tinyllama-1.1b-chat", "llamacpp", "Q4_K_M"),
    ]
    mixed = harness.plan(["smollm2-135m-instruct"], ["fp16", "Q4_1"], ["transformers", "llamacpp"])
    assert [(c["runtime"], c["precision"]) for c in mixed] == [("transformers", "fp16"), ("llamacpp", "Q4_1")]
    # nothing meaningful for a runtime: kept as given, so the mistake shows as a skipped row
    assert [c["precision"] for c in harness.plan(["smollm2-135m-instruct"], ["Q8_0"], ["transformers"])] == ["Q8_0"]


def test_a_local_model_folder_runs_from_any_directory_and_reports(tmp_path):
    """the folder used to reach the worker as its basename: "unknown model"."""
    from mindbench.models import catalog
    from mindbench.runtimes.transformers import loading

    src, _, _ = loading.converted_folder(catalog.resolve(DEFAULT_MODEL))
    model = tmp_path / "models" / "model_dir"
    model.mkdir(parents=True)
    for f in src.iterdir():
        (model / f.name).symlink_to(f)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "local.jsonl"
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": os.pathsep.join(sys.path)}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "mindbench.cli",
            "run",
            "--models",
            "../models/model_dir",
            "--suite",
            "none",
            "--precisions",
            "fp32",
            "--device",
            "cpu",
            "--repeats",
            "1",
            "--prompt-tokens",
            "16",
            "--new-tokens",
            "4",
            "--out",
            str(out),
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=elsewhere,
    )
    assert res.returncode == 0, res.stderr
    [rec] = json.loads(res.stdout)
    assert rec["status"] == "ok", rec.get("error")
    assert rec["config"]["model"] == str(model)
    rep = subprocess.run(
        [sys.executable, "-m", "mindbench.cli", "report", str(out), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )
    assert rep.returncode == 0, rep.stderr
    assert [r["config"]["model"] for r in json.loads(rep.stdout)] == [str(model)]


def test_progress_lines_show_tok_s_and_the_run_says_what_it_took(capsys):
    from mindbench.sweep.harness import _took
    from mindbench.sweep.progress import Progress

    bars = Progress(2, done=0, enabled=None)  # stderr is not a terminal here: plain lines
    cell = {"model": "m", "precision": "int4"}
    bars.event(
        cell,
        {
            "event": "progress",
            "suite": "code",
            "stage": "generate",
            "done": 8,
            "total": 10,
            "tokens": 640,
            "seconds": 32.0,
        },
    )
    bars.close()
    assert "[1/2] m int4: suite code generate 8/10, 20.0 tok/s" in capsys.readouterr().err
    assert (_took(59.4), _took(272.0)) == ("59 s", "4 min 32 s")
