"""Loading: every precision on the real packaged model, the conversion cache, and each error path.
The Hub and the CUDA device are the only boundaries faked here."""

import pytest

from mindbench import tokens
from mindbench.errors import (
    GatedModelError,
    MindbenchError,
    MissingDependencyError,
    ModelNotFoundError,
    OfflineError,
    OutOfMemoryError,
    PrecisionError,
)
from mindbench.models import catalog, hub
from mindbench.runtimes.transformers import loading

DEFAULT = catalog.DEFAULT_MODEL


@pytest.mark.parametrize(
    "precision,dtype",
    [("fp32", "float32"), ("bf16", "bfloat16"), ("fp16", "float16"), ("int8", "float32"), ("int4", "float32")],
)
def test_every_precision_loads_with_real_dtype(precision, dtype):
    import torch

    got = loading.load(DEFAULT, precision, "cpu")
    assert got.precision == precision and got.device == "cpu" and got.dtype == dtype
    assert got.info["weights"] == "pretrained" and got.info["revision"] == catalog.file_sha256(
        catalog.packaged_gguf(got.spec)
    )
    assert got.info["cold"] is False  # `make install` converted it already
    assert got.load_s > 0
    if precision in ("int8", "int4"):
        assert got.info["quant"].startswith("bitsandbytes")
        import bitsandbytes as bnb

        kind = bnb.nn.Linear8bitLt if precision == "int8" else bnb.nn.Linear4bit
        assert any(isinstance(m, kind) for m in got.model.modules())
    else:
        assert next(got.model.parameters()).dtype == getattr(torch, dtype)
    # quantized weights really are smaller: footprint ordering fp32 > fp16 > int8 > int4
    sizes = {"fp32": 530e6, "bf16": 265e6, "fp16": 265e6, "int8": 215e6, "int4": 160e6}
    assert got.model.get_memory_footprint() == pytest.approx(sizes[precision], rel=0.05)


def test_conversion_cache_is_keyed_by_file_hash_and_reused():
    spec = catalog.resolve(DEFAULT)
    folder, converted_now, _ = loading.converted_folder(spec)
    sha = catalog.file_sha256(catalog.packaged_gguf(spec))
    assert folder.name.endswith(sha[:16]) and not converted_now
    assert (folder / "model.safetensors").exists() and (folder / "tokenizer.json").exists()
    assert "quantization_config" not in (folder / "config.json").read_text()


def test_unknown_model_suggests_close_matches():
    with pytest.raises(ModelNotFoundError, match="did you mean smollm2-135m-instruct"):
        catalog.resolve("smollm2-135m-instrct")


def test_unknown_precision_and_missing_cuda():
    with pytest.raises(PrecisionError, match="unknown precision 'int3'"):
        loading.load(DEFAULT, "int3", "cpu")
    with pytest.raises(PrecisionError, match="CUDA is not available"):
        loading.load(DEFAULT, "fp16", "cuda")


def test_bitsandbytes_missing_names_the_install(monkeypatch):
    real = loading.importlib.util.find_spec
    monkeypatch.setattr(
        loading.importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a)
    )
    with pytest.raises(MissingDependencyError, match="pip install 'bitsandbytes"):
        loading.load(DEFAULT, "int4", "cpu")


def test_old_bitsandbytes_cannot_quantize_on_cpu(monkeypatch):
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.42.0")
    with pytest.raises(PrecisionError, match="no CPU backend"):
        loading.check_precision("int8", "cpu")


def test_oom_raises_advice_and_fallback_steps_down(monkeypatch, capsys):
    """The device boundary is faked: from_pretrained raises torch's real OOM error at fp32."""
    import torch
    from transformers import AutoModelForCausalLM

    real = AutoModelForCausalLM.from_pretrained

    def fake(folder, **kw):
        if kw.get("dtype") is torch.float32:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(folder, **kw)

    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", fake)
    with pytest.raises(OutOfMemoryError, match="int4"):
        loading.load(DEFAULT, "fp32", "cpu")
    got = loading.load(DEFAULT, "fp32", "cpu", fallback=True)
    assert got.precision == "fp16" and got.info["fallback_from"] == "fp32"
    assert "retrying at fp16" in capsys.readouterr().out


# --- the Hub boundary, faked ------------------------------------------------------------------------


def _http_error(cls, status):
    import httpx2 as httpx  # huggingface_hub 2.x speaks httpx2

    resp = httpx.Response(status, request=httpx.Request("GET", "https://huggingface.co/api/models/x"))
    return cls(f"{status} Client Error", response=resp)


def _raise(exc):
    def f(*a, **k):
        raise exc

    return f


@pytest.fixture(autouse=True)
def head(monkeypatch):
    """The HEAD request `hub.download` sends before listing a repo: answers yes unless a test sets
    `head["raise"]`; requests are recorded."""
    state = {"raise": None, "calls": []}

    def fake(url, token=None, timeout=None, **kw):
        state["calls"].append((url, timeout))
        if state["raise"] is not None:
            raise state["raise"]
        return object()

    monkeypatch.setattr("huggingface_hub.get_hf_file_metadata", fake)
    return state


def test_an_unreachable_hub_is_said_at_once_without_listing_or_downloading(monkeypatch, head):
    """Offline, huggingface_hub retries its listing for ~25 s; one HEAD (no retries) says it."""
    import httpx2 as httpx
    from huggingface_hub import errors as hfe

    monkeypatch.setattr(hub, "cached_snapshot", lambda *a, **k: None)
    monkeypatch.setattr("huggingface_hub.list_repo_files", lambda *a, **k: pytest.fail("listed the repo"))
    head["raise"] = httpx.ConnectError("no route")
    with pytest.raises(OfflineError, match="cannot reach the Hugging Face Hub .* within 10 s"):
        hub.download("org/model", token=None)
    assert head["calls"] == [("https://huggingface.co/org/model/resolve/main/config.json", 10.0)]
    head["raise"] = _http_error(hfe.RevisionNotFoundError, 404)
    with pytest.raises(ModelNotFoundError, match="has no revision 'v9'"):
        hub.download("org/model", token=None, revision="v9")
    assert head["calls"][-1][0] == "https://huggingface.co/org/model/resolve/v9/config.json"


def test_gated_repo_explains_the_three_steps(monkeypatch):
    from huggingface_hub import errors as hfe

    monkeypatch.setattr("huggingface_hub.list_repo_files", _raise(_http_error(hfe.GatedRepoError, 403)))
    monkeypatch.setattr(hub, "cached_snapshot", lambda *a, **k: None)
    with pytest.raises(GatedModelError) as e:
        loading.load("llama-2-7b-chat", "int4", "cpu", hf_token="hf_secretsecretsecret")
    msg = e.value.format_message()
    assert "request access" in msg and "settings/tokens" in msg and "HF_TOKEN" in msg
    assert "hf_secret" not in msg


def test_not_found_and_offline(monkeypatch):
    from huggingface_hub import errors as hfe

    monkeypatch.setattr(hub, "cached_snapshot", lambda *a, **k: None)
    monkeypatch.setattr("huggingface_hub.list_repo_files", _raise(_http_error(hfe.RepositoryNotFoundError, 404)))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(tokens, "resolve_token", lambda t=None: (None, "none"))
    with pytest.raises(ModelNotFoundError, match="not found on the Hugging Face Hub"):
        loading.load("someone/missing-model", "fp32", "cpu")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="HF_HUB_OFFLINE=1"):
        loading.load("someone/missing-model", "fp32", "cpu")


def test_network_failure_is_offline_error(monkeypatch):
    import httpx2 as httpx  # huggingface_hub 2.x speaks httpx2

    monkeypatch.setattr(hub, "cached_snapshot", lambda *a, **k: None)
    monkeypatch.setattr("huggingface_hub.list_repo_files", _raise(httpx.ConnectError("no route")))
    with pytest.raises(OfflineError, match="cannot reach the Hugging Face Hub"):
        loading.load("tinyllama-1.1b-chat", "fp32", "cpu", hf_token="hf_abcdefghijklmnop")


def test_hub_download_passes_token_and_prefers_safetensors(monkeypatch, tmp_path):
    seen = {}
    monkeypatch.setattr(
        "huggingface_hub.list_repo_files", lambda repo, **k: ["config.json", "model.safetensors", "pytorch_model.bin"]
    )

    def fake_snapshot(repo, **k):
        seen.update(k, repo=repo)
        return str(tmp_path)

    monkeypatch.setattr("huggingface_hub.snapshot_download", fake_snapshot)
    assert hub.download("org/model", token="hf_tok12345678") == str(tmp_path)
    assert seen["token"] == "hf_tok12345678" and "*.safetensors" in seen["allow_patterns"]
    assert "*.bin" not in seen["allow_patterns"]


def test_token_order(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr("huggingface_hub.get_token", lambda: "hf_stored0000000")
    assert tokens.resolve_token() == ("hf_stored0000000", "huggingface_hub login")
    (tmp_path / ".env").write_text("HF_TOKEN=hf_fromdotenv0000\n")
    assert tokens.resolve_token() == ("hf_fromdotenv0000", ".env")
    monkeypatch.setenv("HF_TOKEN", "hf_fromenv00000000")
    assert tokens.resolve_token() == ("hf_fromenv00000000", "HF_TOKEN")
    assert tokens.resolve_token("hf_argument0000000") == ("hf_argument0000000", "argument")
    import os

    assert os.environ["HF_TOKEN"] == "hf_fromenv00000000"  # .env read without touching the environment


def test_redact_hides_tokens():
    assert tokens.redact("401 for hf_abcdefghijkl123 and mysecret", "mysecret") == "401 for hf_*** and ***"


def test_no_weights_builds_random_model_from_shipped_arch():
    got = loading.load(DEFAULT, "fp32", "cpu", no_weights=True)
    assert got.info["weights"] == "random" and got.tokenizer is None
    n = sum(p.numel() for p in got.model.parameters())
    assert n == pytest.approx(catalog.resolve(DEFAULT).params_b * 1e9, rel=0.05)


def test_cli_models_json_and_bad_model(tmp_path):
    import json

    from click.testing import CliRunner

    from mindbench.cli import cli

    r = CliRunner().invoke(cli, ["models", "--json"])
    assert r.exit_code == 0
    rows = {x["id"]: x for x in json.loads(r.output)}
    assert rows[DEFAULT]["available"] is True and rows["llama-2-7b-chat"]["gated"] is True
    assert len(rows) == len(catalog.CATALOG)


# --- local folders -------------------------------------------------------


def _local_copy(folder):
    """A local model folder: the packaged model's converted files, linked (no 500 MB copy)."""
    src, _, _ = loading.converted_folder(catalog.resolve(DEFAULT))
    folder.mkdir(parents=True)
    for f in src.iterdir():
        (folder / f.name).symlink_to(f)
    return folder


def test_a_local_folder_travels_as_its_full_path(tmp_path, monkeypatch):
    from mindbench.sweep import harness

    model = _local_copy(tmp_path / "work" / "model_dir")
    monkeypatch.chdir(tmp_path / "work")
    [cell] = harness.plan(["model_dir"], ["fp32"], suites=[])
    assert cell["model"] == str(model)  # on main: "model_dir", unknown to the worker
    monkeypatch.chdir(tmp_path)  # the worker, report and recommend resolve it anywhere
    spec = catalog.resolve(cell["model"])
    assert (spec.source, spec.path, spec.id, spec.chat) == ("local", str(model), str(model), True)


def test_an_empty_or_broken_model_folder_is_one_line_before_loading(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError, match="is empty; point at a folder written by save_pretrained"):
        loading.load(str(empty), "fp32", "cpu")
    broken = _local_copy(tmp_path / "broken")
    (broken / "config.json").unlink()
    (broken / "config.json").write_text('{"model_type": "llama",')
    with pytest.raises(MindbenchError, match=r"config.json is not valid JSON .*save_pretrained") as e:
        loading.load(str(broken), "fp32", "cpu")
    assert "\n" not in e.value.message
    (broken / "tokenizer.json").unlink()
    (broken / "config.json").write_text('{"model_type": "llama"}')
    with pytest.raises(ModelNotFoundError, match="no tokenizer files"):
        loading.load(str(broken), "fp32", "cpu")
    # and `mindbench run` says so before any process starts: one line, exit 2
    from click.testing import CliRunner

    from mindbench.cli import cli

    for folder, says in ((empty, "is empty"), (broken, "no tokenizer files")):
        r = CliRunner().invoke(
            cli,
            [
                "run",
                "--models",
                str(folder),
                "--precisions",
                "fp32",
                "--suite",
                "none",
                "--out",
                str(tmp_path / "runs.jsonl"),
            ],
        )
        assert r.exit_code == 2 and says in r.output and r.output.count("\n") == 1, r.output
    assert not (tmp_path / "runs.jsonl").exists()


@pytest.mark.slow
def test_the_first_conversion_says_what_it_does(tmp_path, capfd):
    """`make install` converted the packaged GGUF for ~38 s without a word."""
    spec = catalog.resolve(DEFAULT)
    folder, converted_now, convert_s = loading.converted_folder(spec, cache_dir=tmp_path)
    assert converted_now and (folder / "model.safetensors").exists()
    out, err = capfd.readouterr()
    lines = [ln for ln in err.splitlines() if ln.startswith("mindbench:")]
    assert "converting its packaged GGUF" in lines[0] and "once" in lines[0]
    assert [ln.split("]")[0].split("[")[1] for ln in lines[1:-1]] == ["1/4", "2/4", "3/4", "4/4"]
    assert "de-quantizing" in err and lines[-1].startswith("mindbench:   done in")
    assert "mindbench:" not in out  # stdout stays clean for tables and JSON
    # the second time nothing is converted and nothing is said
    assert loading.converted_folder(spec, cache_dir=tmp_path)[1] is False
    assert "mindbench:" not in capfd.readouterr().err
