"""The llamacpp-server runtime with llama.cpp's own C++ `llama-server` (make llama-server builds it
into the venv; $MINDBENCH_LLAMA_SERVER names another): a REAL server on the packaged SmolLM2 GGUF,
127.0.0.1, a free port, started through the runtime as a cell starts it. Slots come from the
concurrency and really batch (two requests in flight decode at the same time), the health wait,
the record's server section, the process group's end, a start failure's status and log tail, and
a wrong $MINDBENCH_LLAMA_SERVER as one line before any cell.

llama-cpp-python's Python server, the fallback when no llama-server exists, is tested in
tests/test_openai_runtime.py.
"""

import http.client
import importlib.util
import json
import os
import threading
import time
from pathlib import Path

import pytest

from mindbench.errors import InputError
from mindbench.runtimes.llamacpp_server.launcher import ENV_BINARY, find_llama_server
from mindbench.store import results

MODEL = "smollm2-135m-instruct"


def _binary():
    try:
        return find_llama_server()[0]
    except InputError:  # a wrong $MINDBENCH_LLAMA_SERVER: the tests below that need none still run
        return None


BINARY = _binary()
needs_binary = pytest.mark.skipif(
    BINARY is None,
    reason="no llama.cpp llama-server binary ($MINDBENCH_LLAMA_SERVER, .venv/bin, PATH): make llama-server",
)


def _gguf():
    from mindbench.models.catalog import packaged_gguf, resolve

    return packaged_gguf(resolve(MODEL))


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def engine():
    """A served engine as a cell gets it: the runtime finds the binary and the GGUF itself."""
    from mindbench.runtimes import get_engine

    e = get_engine(MODEL, None, device="cpu", runtime="llamacpp-server", slots=2, n_ctx=1024)
    yield e
    e.unload()


# --- discovery -----------------------------------------------------------------------------------


def test_discovery_order(tmp_path, monkeypatch):
    """$MINDBENCH_LLAMA_SERVER first (a set-but-missing path is an InputError naming it, one line),
    then the venv's, then PATH."""
    fake = tmp_path / "bin" / "llama-server"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'version: 1 (test)'\n")
    fake.chmod(0o755)
    monkeypatch.setenv(ENV_BINARY, str(fake))
    assert find_llama_server() == (fake, f"${ENV_BINARY}")
    monkeypatch.setenv(ENV_BINARY, str(tmp_path / "nope"))
    with pytest.raises(InputError) as e:
        find_llama_server()
    assert str(tmp_path / "nope") in str(e.value) and "\n" not in str(e.value) and e.value.exit_code == 2
    monkeypatch.delenv(ENV_BINARY)
    monkeypatch.setenv("PATH", str(fake.parent))
    monkeypatch.setattr("sys.executable", str(tmp_path / "venv" / "bin" / "python"))  # no llama-server beside it
    assert find_llama_server() == (fake, "PATH")
    monkeypatch.setenv("PATH", str(tmp_path))
    binary, why = find_llama_server()
    assert binary is None and "no llama-server" in why


def test_wrong_binary_path_is_one_line_before_any_cell(tmp_path):
    """run and serve-bench: exit 2, one line naming the variable, nothing appended, no server."""
    from click.testing import CliRunner

    from mindbench.cli import cli

    out = tmp_path / "runs.jsonl"
    env = {ENV_BINARY: str(tmp_path / "no-such-llama-server")}
    for args in (
        ["run", "--runtimes", "llamacpp,llamacpp-server", "--models", MODEL, "--suite", "code", "--limit", "1"],
        ["serve-bench", "--runtimes", "llamacpp-server", "--models", MODEL, "--concurrency", "1"],
    ):
        t0 = time.perf_counter()
        res = CliRunner().invoke(cli, args + ["--out", str(out)], env=env)
        assert res.exit_code == 2, res.output
        assert ENV_BINARY in res.output and res.output.count("Error:") == 1 and "Traceback" not in res.output
        assert len(res.output.strip().splitlines()) == 1 and time.perf_counter() - t0 < 10
        assert not out.exists()


def test_serve_bench_slots_follow_the_concurrency():
    from mindbench.sweep.serve_bench import AUTO_MAX, server_slots

    assert server_slots("concurrency", [1, 2, 4, 8], 0) == 8
    assert server_slots("concurrency", [4, 1], 0) == 4
    assert server_slots("concurrency", "auto", 0) == AUTO_MAX
    assert server_slots("rate", [0.5, 2], 0) == 20  # every request of a level (20 by default) may be in flight
    assert server_slots("rate", [1], 500) == AUTO_MAX


# --- a real llama-server -------------------------------------------------------------------------


@needs_binary
def test_started_ready_and_recorded(engine):
    """start() returned only once /health said 200 (it answers 503 while loading); the server is
    llama.cpp's, with the slots asked for, and the record's server section says which binary,
    its version and build, and how it was set."""
    server = engine._server
    assert _get(server.port, "/health")[0] == 200
    props = json.loads(_get(server.port, "/props")[1])
    assert props["total_slots"] == 2
    assert props["default_generation_settings"]["n_ctx"] == 1024  # per slot: -c n_ctx * slots
    info = engine.info
    assert info["server"]["flavor"] == "llama.cpp" and info["server"]["version"] == props["build_info"]
    assert info["server"]["binary"] == str(BINARY) and "version" in info["server"]["binary_version"]
    assert info["server"]["settings"]["parallel"] == 2 and info["server"]["settings"]["flash-attn"] == "off"
    assert info["slots"].startswith("2: llama.cpp's llama-server --parallel 2")
    assert "served by llama.cpp llama-server" in info["source"] and engine.precision == "Q4_1"
    cmd = server.command()
    for flag, value in (("--parallel", "2"), ("--ctx-size", "2048"), ("--host", "127.0.0.1"), ("--seed", "0")):
        assert cmd[cmd.index(flag) + 1] == value
    assert "--metrics" in cmd and engine.info["api"] == "completions"


@needs_binary
def test_slots_batch_two_requests_at_once(engine):
    """Two streamed requests sent together decode at the same time on a 2-slot server: each one's
    tokens arrive while the other's are still coming (a server without slots, llama-cpp-python's,
    finishes one before the other's first token)."""
    prompt = engine.render("Count from one to one hundred in words.")
    spans = [None, None]
    go = threading.Barrier(2)

    def one(i):
        go.wait()
        _, chunks, _ = engine.timed_stream(prompt, {"ignore_eos": True}, 48)
        spans[i] = (chunks[0][0], chunks[-1][0], len(chunks))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    (a0, a1, na), (b0, b1, nb) = spans
    assert na == nb == 48
    assert a0 < b1 and b0 < a1  # the two decode spans overlap
    assert min(a1, b1) - max(a0, b0) > 0.5 * min(a1 - a0, b1 - b0)  # by most of the shorter one


@needs_binary
def test_greedy_answers_match_the_in_process_engine(engine):
    """The same rendered prompts, greedy, several in flight: llama-server writes what the
    in-process llama.cpp engine writes (flash attention off and batch 512, as llama-cpp-python)."""
    from mindbench.runtimes import get_engine
    from mindbench.runtimes.base import GenParams

    local = get_engine(MODEL, None, device="cpu", runtime="llamacpp")
    try:
        questions = ["Write a Python function that adds two numbers.", "What is the capital of Germany?"]
        prompts = [local.render(q) for q in questions]
        assert [engine.render(q) for q in questions] == prompts
        params = GenParams(max_new_tokens=16, temperature=0.0, repetition_penalty=1.0, batch_size=2)
        assert [g.text for g in engine.generate(prompts, params)] == [g.text for g in local.generate(prompts, params)]
    finally:
        local.unload()


@needs_binary
def test_timed_run_counts_from_usage(engine):
    t = engine.timed_run(48, 8)
    assert t.prompt_tokens == 48 and t.new_tokens == 8 and len(t.step_s) == 7
    assert t.decode_tok_s > 0 and engine.info["speed_tokens_from"] == "usage"


@needs_binary
def test_no_serve_bench_level_is_answered_from_the_prompt_cache(engine):
    """Each level (and shape) draws its own prompts: llama-server counts the prompt tokens it took
    from its cache, and two levels of the same shape leave that count where it was (but for a
    shared first digit). With one seed for every level, the second level's prompts were the
    first's again and came from the cache whole (TTFT 45 ms instead of a prefill)."""
    from mindbench.sweep.serve_bench import bench_engine

    def cached() -> float:
        text = _get(engine._server.port, "/metrics")[1].decode()
        return float(next(ln.split()[-1] for ln in text.splitlines() if ln.startswith("llamacpp:prompt_tokens_cached")))

    before = cached()
    # seed 1: the engine's own timed runs (an earlier test) drew their numbers from seed 0
    bench_engine(engine, shapes=[("tiny", 64, 4)], mode="concurrency", levels=[1, 1], requests=3, slo={}, seed=1)
    assert cached() - before <= 3 * 6  # 6 requests of 64 tokens: a few digits at most, never a prompt


@needs_binary
def test_stop_ends_the_process_group(tmp_path):
    from mindbench.runtimes.llamacpp_server.launcher import LlamaCppServer

    log = tmp_path / "server.log"
    s = LlamaCppServer(_gguf(), alias="m", binary=BINARY, slots=1, n_ctx=256, log_path=log).start()
    pid, pgid = s.proc.pid, os.getpgid(s.proc.pid)
    assert pgid == pid != os.getpgid(0)  # its own group, not ours
    s.stop(copy_log=False)
    assert s.proc.poll() is not None and not Path(f"/proc/{pid}").exists()  # ended and reaped
    with pytest.raises(ProcessLookupError):  # nothing of its group is left
        os.killpg(pgid, 0)
    assert "llama_server" in log.read_text() or "main:" in log.read_text()  # its own output went to the log
    s.stop()  # idempotent


def _python_server_ready() -> bool:
    from mindbench.runtimes.llamacpp_server.runtime import SERVER_MODULES

    return all(importlib.util.find_spec(m) is not None for m in SERVER_MODULES)


@pytest.mark.parametrize(
    "binary",
    [
        pytest.param(BINARY, marks=needs_binary, id="llama-server"),
        pytest.param(
            None,
            marks=pytest.mark.skipif(not _python_server_ready(), reason="llama-cpp-python's server extra: make extras"),
            id="llama-cpp-python",
        ),
    ],
)
def test_a_server_that_cannot_start_says_why(tmp_path, binary):
    """Either server: the error carries its exit status and its log's last lines, on one line."""
    from mindbench.runtimes.llamacpp_server.launcher import LlamaCppServer, ServerStartError

    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    t0 = time.perf_counter()
    with pytest.raises(ServerStartError) as e:
        LlamaCppServer(bad, alias="broken", binary=binary, start_timeout_s=60).start()
    msg = str(e.value)
    assert "exited with status" in msg and "|" in msg and "\n" not in msg  # status + the log's last lines
    assert time.perf_counter() - t0 < 60


@needs_binary
def test_a_run_cell_gets_its_slots_from_the_batch_size(tmp_path):
    """Through `mindbench run`: the served cell's server has --batch-size slots and the record's
    server section names the binary (a file that cannot be served is a row:
    tests/test_openai_runtime.py, through whichever server the runtime finds)."""
    from click.testing import CliRunner

    from mindbench.cli import cli

    out = tmp_path / "runs.jsonl"
    base = ["run", "--runtimes", "llamacpp-server", "--repeats", "1", "--json", "--out", str(out)]
    env = {ENV_BINARY: str(BINARY)}
    res = CliRunner().invoke(
        cli,
        base
        + ["--models", MODEL, "--suite", "code", "--limit", "2", "--batch-size", "3"]
        + ["--prompt-tokens", "16", "--new-tokens", "4", "--speed-max-s", "1"],
        env=env,
    )
    assert res.exit_code == 0, res.output
    rec = results.read(out)[-1]
    assert rec.status == "ok", rec.error
    assert rec.server["flavor"] == "llama.cpp" and rec.server["settings"]["parallel"] == 3
    assert rec.server["binary"] == str(BINARY) and rec.server["binary_version"]
    assert rec.quality["code"].n == 2 and rec.speed.decode_tok_s.mean > 0
    assert rec.memory.extra["server"]["peak_rss_mb"] > 50
