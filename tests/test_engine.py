"""The transformers engine on the real packaged model (SmolLM2-135M-Instruct), on the CPU.

Every test generates only a few tokens: the point is behaviour (batching, stops, streaming,
memory), not text quality.
"""

from __future__ import annotations

import dataclasses
import gc
import os

import psutil
import pytest

from mindbench.errors import MindbenchError, OutOfMemoryError
from mindbench.models.catalog import DEFAULT_MODEL, ModelSpec, resolve
from mindbench.runtimes import GenParams, get_engine

pytestmark = pytest.mark.slow

GREEDY = dict(temperature=0.0, repetition_penalty=1.0)
FRANCE = "What is the capital of France? Answer in one sentence."


@pytest.fixture(scope="module")
def engine():
    e = get_engine(DEFAULT_MODEL, "fp32", device="cpu")
    yield e
    e.unload()


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16", "int8", "int4"])
def test_each_precision_answers_a_factual_question(precision, engine):
    e = engine if precision == "fp32" else get_engine(DEFAULT_MODEL, precision, device="cpu")
    try:
        assert (e.runtime, e.precision, e.device) == ("transformers", precision, "cpu")
        assert e.dtype == {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}.get(precision, e.dtype)
        [g] = e.generate([e.render(FRANCE)], GenParams(max_new_tokens=12, **GREEDY))
        assert "Paris" in g.text, g
        assert 1 <= g.tokens <= 12
        if precision in ("int8", "int4"):
            # Packed bitsandbytes weights really are smaller than the fp32 ones.
            assert e.weight_bytes() < 0.6 * engine.weight_bytes()
    finally:
        if e is not engine:
            e.unload()


def test_render_uses_chat_template_and_system_prompt(engine):
    text = engine.render("Hello there", "You are terse.")
    assert engine.chat
    assert "<|im_start|>system\nYou are terse." in text and text.endswith("<|im_start|>assistant\n")
    # A base model (same weights, spec says no template) gets plain completion text.
    base = type(engine).wrap(engine.model, engine.tokenizer, ModelSpec("plain", "local", chat=False))
    assert base.render("Hello there", "You are terse.") == "You are terse.\n\nHello there"
    assert base.render("Hello there") == "Hello there"


def test_batched_generation_equals_one_by_one(engine):
    # Different lengths so the batch really is left-padded; a repetition penalty so that the
    # pad-aware penalty is exercised (transformers' own would penalise the pad/EOS token).
    questions = [
        "Hi",
        FRANCE,
        "List three colours of the rainbow, separated by commas.",
        "Write one short sentence about the sea and the wind that blows over it at night.",
    ]
    prompts = [engine.render(q) for q in questions]
    params = GenParams(max_new_tokens=14, temperature=0.0, repetition_penalty=1.1, batch_size=4)
    batched = engine.generate(prompts, params)
    single = [engine.generate([p], params)[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in single]
    assert [g.tokens for g in batched] == [g.tokens for g in single]
    assert "Paris" in batched[1].text  # results come back in input order
    # Batches smaller than the prompt list, in sorted-length order, still map back correctly.
    assert [
        g.text
        for g in engine.generate(
            prompts, GenParams(max_new_tokens=14, temperature=0.0, repetition_penalty=1.1, batch_size=3)
        )
    ] == [g.text for g in single]


# Twenty prompts of different lengths and kinds: short replies end (EOS) long before the long
# ones, so rows leave the running batch at different steps.
TWENTY = [
    "Hi",
    FRANCE,
    "Say yes.",
    "Count from 1 to 30, separated by commas.",
    "Write a python function that adds two numbers.",
    "What is 2 + 2? Answer with a number only.",
    "Name a fruit.",
    "Write one long sentence about the sea, the wind and the boats at night.",
    "Translate 'good morning' into French.",
    "List the days of the week.",
    "Thanks!",
    "What colour is the sky on a clear day?",
    "Write a haiku about autumn.",
    "Spell the word cat backwards.",
    "Give me three prime numbers.",
    "Who wrote Hamlet?",
    "Describe a cat in five words.",
    "What is the opposite of hot?",
    "Write a python one-liner that reverses a string s.",
    "Goodbye.",
]


def test_rows_leave_the_batch_and_outputs_equal_batch_one(engine, monkeypatch):
    from mindbench.runtimes.transformers import pool as hf_pool

    prompts = [engine.render(q) for q in TWENTY]
    params = GenParams(max_new_tokens=16, temperature=0.0, repetition_penalty=1.0, batch_size=8, stop=("\n\n",))
    # Both sides run the engine's own linear kernel: oneDNN's wherever this torch has it.
    from mindbench.runtimes.transformers import onednn

    assert engine.info["linear_kernel"].startswith("onednn (" if onednn.available() is None else "torch (")
    prefills, real = [], hf_pool.new_cache
    monkeypatch.setattr(hf_pool, "new_cache", lambda model: prefills.append(1) or real(model))
    batched = engine.generate(prompts, params)
    stats = dict(engine.pool_stats)
    # Waiting prompts joined the running batch as rows ended (static batches would prefill 3 times).
    assert len(prefills) > 3, prefills
    monkeypatch.setattr(hf_pool, "new_cache", real)
    single = [engine.generate([p], dataclasses.replace(params, batch_size=1))[0] for p in prompts]
    assert [(g.text, g.tokens, g.finish_reason) for g in batched] == [
        (g.text, g.tokens, g.finish_reason) for g in single
    ]
    # Rows really did end at different steps (otherwise nothing left the batch).
    assert len({g.tokens for g in batched}) > 3 and any(g.finish_reason == "eos" for g in batched)
    assert any(g.finish_reason == "length" for g in batched)
    # In the tail, with few rows left, rows carried prompt-lookup drafts and some were kept:
    # the outputs above are still batch 1's greedy ones.
    assert stats["drafted"] > 0 and stats["accepted"] > 0, stats


def test_compacting_the_drafts_holes_mid_generation_keeps_batch_ones_outputs(engine, monkeypatch):
    """Rejected drafts leave masked columns; compacting them away (here after every drafted step)
    moves every row's KV and ids, and the outputs still equal batch 1's."""
    from mindbench.runtimes.transformers import pool as hf_pool

    prompts = [engine.render(q) for q in TWENTY[3:7]]
    params = GenParams(max_new_tokens=24, temperature=0.0, repetition_penalty=1.0, batch_size=8)
    calls, real = [], hf_pool.compact
    monkeypatch.setattr(hf_pool, "COMPACT_SLACK", -(10**6))
    monkeypatch.setattr(hf_pool, "compact", lambda *a: calls.append(1) or real(*a))
    batched = engine.generate(prompts, params)
    assert calls and engine.pool_stats["drafted"] > engine.pool_stats["accepted"], engine.pool_stats
    single = [engine.generate([p], dataclasses.replace(params, batch_size=1))[0] for p in prompts]
    assert [(g.text, g.tokens) for g in batched] == [(g.text, g.tokens) for g in single]


def test_batched_decoding_is_transformers_own(engine):
    """The hand-written loop decodes exactly as model.generate does on the same padded batch."""
    import torch

    prompts = [engine.render(q) for q in TWENTY[:4]]
    params = GenParams(max_new_tokens=12, temperature=0.0, repetition_penalty=1.1, batch_size=4)
    ours = engine.generate(prompts, params)
    rows = [engine._encode(p) for p in prompts]
    order = sorted(range(4), key=lambda i: len(rows[i]))
    ids, mask, pads = engine._batch_tensors([rows[i] for i in order])
    with torch.inference_mode():
        out = engine.model.generate(input_ids=ids, attention_mask=mask, **engine._gen_kwargs(params, pads))
    eos = engine._eos_ids()
    for row, i in enumerate(order):
        ref = engine._finish(out[row, ids.shape[1] :].tolist(), params, eos, None)
        assert (ours[i].text, ours[i].tokens) == (ref.text, ref.tokens)


def test_stop_strings_end_each_sequence_on_its_own(engine):
    prompts = [engine.render(FRANCE), engine.render("Count from 1 to 9, separated by commas.")]
    full = engine.generate(prompts, GenParams(max_new_tokens=20, **GREEDY))
    assert "Paris" in full[0].text and "Par" not in full[1].text
    # "Par" ends inside the token " Paris": the row stops there and is cut before the string.
    cut = engine.generate(prompts, GenParams(max_new_tokens=20, stop=("Par",), **GREEDY))
    assert cut[0].text == full[0].text[: full[0].text.index("Par")]
    assert cut[0].finish_reason == "stop" and cut[0].tokens < full[0].tokens
    # The other row in the same batch is untouched by its neighbour's stop.
    assert cut[1].text == full[1].text and cut[1].finish_reason == full[1].finish_reason
    assert full[0].finish_reason == "eos"
    assert full[1].finish_reason in ("eos", "length")


def test_stream_concatenation_equals_generate(engine):
    prompt = engine.render("Write a python function that adds two numbers.")
    for stop in ((), ("return",)):
        params = GenParams(max_new_tokens=24, stop=stop, **GREEDY)
        pieces = list(engine.stream(prompt, params))
        [g] = engine.generate([prompt], params)
        assert len(pieces) > 1
        assert "".join(pieces) == g.text
        if stop:
            assert "return" not in g.text and g.finish_reason == "stop"


def test_stream_closed_early_stops_the_worker(engine):
    import threading

    it = engine.stream(engine.render(FRANCE), GenParams(max_new_tokens=200, **GREEDY))
    next(it)
    it.close()  # the generating thread is cancelled and joined
    assert not any(t.name == "mindbench-stream" for t in threading.enumerate())


def test_sampling_is_seeded(engine):
    prompt = [engine.render("Tell me a word.")]
    a = engine.generate(prompt, GenParams(max_new_tokens=10, temperature=1.0, seed=1))
    b = engine.generate(prompt, GenParams(max_new_tokens=10, temperature=1.0, seed=1))
    others = {engine.generate(prompt, GenParams(max_new_tokens=10, temperature=1.0, seed=s))[0].text for s in (2, 3, 4)}
    assert a == b
    assert len(others | {a[0].text}) > 1


@pytest.mark.parametrize(
    "bad",
    [
        dict(max_new_tokens=0),
        dict(temperature=-0.5),
        dict(top_p=0.0),
        dict(top_k=-1),
        dict(repetition_penalty=0.0),
        dict(batch_size=0),
    ],
)
def test_invalid_parameters_are_user_errors(engine, bad):
    with pytest.raises(MindbenchError):
        engine.generate(["hi"], GenParams(**bad))


def test_timed_run_times_prefill_and_decode(engine):
    t = engine.timed_run(prompt_tokens=48, new_tokens=5)
    assert (t.prompt_tokens, t.new_tokens) == (48, 5)
    assert 0 < t.prefill_s <= t.ttft_s and t.decode_s > 0
    assert t.prefill_tok_s > 0 and t.decode_tok_s > 0
    with pytest.raises(MindbenchError):
        engine.timed_run(prompt_tokens=8, new_tokens=1)
    with pytest.raises(MindbenchError):
        engine.timed_run(prompt_tokens=100_000, new_tokens=8)


def test_weight_bytes_and_footprint(engine):
    n = sum(p.numel() for p in engine.model.parameters())
    assert 130e6 < n < 140e6
    assert engine.weight_bytes() >= 4 * n
    assert engine.weight_bytes() < 4 * n * 1.01 and engine.memory_footprint() >= 4 * n


def test_fault_injection_garbles_the_prompt(engine, monkeypatch):
    clean = engine.render(FRANCE)
    monkeypatch.setenv("MINDBENCH_FAULT", "corrupt_prompt")
    bad = engine.render(FRANCE)
    assert bad == engine.render(FRANCE)  # deterministic
    assert "<|im_start|>" not in bad and bad != FRANCE  # no template, words reordered
    assert sorted(bad.split()) == sorted(FRANCE.split())
    assert clean != bad
    monkeypatch.setenv("MINDBENCH_FAULT", "oom@fp16,corrupt_prompt@int4")  # another precision only
    assert engine.render(FRANCE) == clean
    monkeypatch.setenv("MINDBENCH_FAULT", "corrupt_prompt@fp32")
    assert engine.render(FRANCE) == bad
    # generate() garbles the whole prompt it is sent, text opened for the model included
    sent = []
    monkeypatch.setattr(engine, "_encode", lambda text, _enc=engine._encode: sent.append(text) or _enc(text))
    opened = clean + "```python\ndef add(a, b):\n"
    engine.generate([opened], GenParams(max_new_tokens=2, temperature=0.0))
    assert sent and sent[-1] != opened and sorted(sent[-1].split()) == sorted(opened.split())


def test_no_weights_model_times_but_does_not_talk():
    e = get_engine(DEFAULT_MODEL, "fp32", device="cpu", no_weights=True)
    try:
        assert e.info["weights"] == "random"
        assert e.timed_run(prompt_tokens=16, new_tokens=3).decode_s > 0
        with pytest.raises(MindbenchError):
            e.generate(["hi"], GenParams(max_new_tokens=2))
    finally:
        e.unload()


def test_unknown_runtime_is_a_user_error():
    with pytest.raises(MindbenchError):
        get_engine(DEFAULT_MODEL, "fp32", runtime="onnx")


def _rss_mb() -> float:
    gc.collect()
    return psutil.Process(os.getpid()).memory_info().rss / 2**20


def test_unload_frees_memory():
    before = _rss_mb()
    e = get_engine(resolve(DEFAULT_MODEL), "fp32", device="cpu")
    e.generate([e.render("Hi")], GenParams(max_new_tokens=2, **GREEDY))
    loaded = _rss_mb()
    assert loaded - before > 300, (before, loaded)  # fp32 weights are ~540 MB
    e.unload()
    after = _rss_mb()
    assert after - before < 0.35 * (loaded - before), (before, loaded, after)
    with pytest.raises(MindbenchError):
        e.generate(["hi"], GenParams(max_new_tokens=2))


def test_empty_prompt_still_generates(engine):
    [g] = engine.generate([""], GenParams(max_new_tokens=3, **GREEDY))
    assert g.tokens >= 1 and isinstance(g.text, str)


# --- CUDA ---------------------------------------------------------------------------------------
def test_cuda_boundary_unload_empties_the_cuda_cache(engine, monkeypatch):
    """Without a GPU: unload hands the caching allocator's blocks back exactly when on CUDA."""
    import torch

    calls = []
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("empty_cache"))
    cpu = type(engine).wrap(engine.model, engine.tokenizer, engine.spec, device="cpu")
    cpu.unload()
    assert calls == [] and cpu.model is None
    gpu = type(engine).wrap(engine.model, engine.tokenizer, engine.spec, device="cuda:0")
    gpu.unload()
    gpu.unload()  # a second unload is a no-op
    assert calls == ["empty_cache"] and gpu.model is None and gpu.tokenizer is None
    assert engine.model is not None  # the fixture's engine still holds its model


def test_cuda_boundary_batching_asks_for_the_engine_device(engine, monkeypatch):
    """Not yet run on a GPU. Without one: every tensor the batched decoder creates is asked for
    the engine's device (a CPU index tensor meeting CUDA tensors is the classic failure there),
    and the outputs are those of the CPU engine. torch.tensor is faked at the boundary: it notes
    the device asked for and builds on the CPU."""
    import sys

    import torch

    real, asked = torch.tensor, []

    def fake(*a, device=None, **k):
        where = sys._getframe(1).f_globals.get("__name__")
        if where in ("mindbench.runtimes.transformers.engine", "mindbench.runtimes.transformers.pool"):
            asked.append((where, str(device)))
        return real(*a, **k)

    # 4 prompts at batch 3: a row leaves and the fourth prompt joins the running batch
    prompts = [engine.render(q) for q in TWENTY[:4]]
    # (no repetition penalty: its pad tensor follows the ids' device, which is the CPU here)
    params = GenParams(max_new_tokens=10, temperature=0.0, repetition_penalty=1.0, batch_size=3)
    want = engine.generate(prompts, params)
    monkeypatch.setattr(torch, "tensor", fake)
    gpu = type(engine).wrap(engine.model, engine.tokenizer, engine.spec, device="cuda:0")
    got = gpu.generate(prompts, params)
    assert [g.text for g in got] == [g.text for g in want]
    assert len({g.tokens for g in want}) > 1  # a row left the batch: the index tensor was made
    assert gpu.pool_stats["drafted"] > 0  # the tail's draft tensors were made too
    assert {d for _, d in asked} == {"cuda:0"}, asked
    assert {w for w, _ in asked} == {
        "mindbench.runtimes.transformers.engine",
        "mindbench.runtimes.transformers.pool",
    }, asked


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp16", "int4"])
def test_on_cuda_generates_times_and_frees(precision):
    import torch

    if not _cuda():
        pytest.skip("needs a CUDA GPU")
    base = torch.cuda.memory_allocated()
    e = get_engine(DEFAULT_MODEL, precision, device="cuda")
    assert e.device == "cuda:0" and torch.cuda.memory_allocated() > base + 50 * 2**20
    prompts = [e.render(FRANCE), e.render("Hi"), e.render("Count from 1 to 5.")]
    gens = e.generate(prompts, GenParams(max_new_tokens=12, batch_size=3, **GREEDY))
    assert "Paris" in gens[0].text
    assert "".join(e.stream(prompts[0], GenParams(max_new_tokens=12, **GREEDY))) == gens[0].text
    t = e.timed_run(prompt_tokens=256, new_tokens=16)
    assert t.prefill_tok_s > 0 and t.decode_tok_s > 0, t
    e.unload()
    assert torch.cuda.memory_allocated() < base + 8 * 2**20


def test_out_of_memory_while_generating_carries_the_advice(engine, monkeypatch):
    """The allocator's failure (faked at the device boundary) becomes the user-facing error."""
    import torch

    def oom(*a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(engine.model, "forward", oom)  # generate() and stream() both call it
    with pytest.raises(OutOfMemoryError, match="int4"):
        engine.generate(["hi"], GenParams(max_new_tokens=2))
    with pytest.raises(OutOfMemoryError):
        "".join(engine.stream("hi", GenParams(max_new_tokens=2)))

    def other(*a, **k):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(engine.model, "forward", other)
    with pytest.raises(RuntimeError, match="shape mismatch"):  # other errors pass through untouched
        engine.generate(["hi"], GenParams(max_new_tokens=2))
