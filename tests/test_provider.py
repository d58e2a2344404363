"""LocalModelProvider on the real packaged model: the user's document's API, async behaviour,
batching, streaming, memory. Short generations throughout."""

from __future__ import annotations

import asyncio
import gc
import os
import time

import psutil
import pytest

from mindbench.errors import MindbenchError
from mindbench.provider import LocalModelProvider

pytestmark = pytest.mark.slow

FRANCE = "What is the capital of France? Answer in one sentence."
GREEDY = dict(temperature=0.0, repetition_penalty=1.0)


@pytest.fixture(scope="module")
def llm():
    p = LocalModelProvider(device="cpu")
    yield p
    p.unload_model()


def test_generate_answers_and_loads_lazily():
    p = LocalModelProvider("smollm2-135m-instruct", device="cpu")
    assert not p.is_loaded and p.memory_footprint() == 0
    text = asyncio.run(p.generate(FRANCE, max_tokens=12, **GREEDY))
    assert "Paris" in text
    assert p.is_loaded and p.precision == "fp32"  # fp32 is the CPU default
    assert p.engine.runtime == "transformers"
    p.unload_model()


def test_system_prompt_goes_through_the_chat_template(llm):
    eng = llm.engine
    assert "You are a pirate." in eng.render("hi", "You are a pirate.")
    a = asyncio.run(llm.generate("Who are you?", system_prompt="You are a pirate named Bob.", max_tokens=16, **GREEDY))
    b = asyncio.run(llm.generate("Who are you?", max_tokens=16, **GREEDY))
    assert a != b  # the system prompt reached the model


def test_a_conversation_goes_through_the_chat_template_turn_by_turn(llm):
    one = [{"role": "user", "content": FRANCE}]
    # one user message is exactly the string prompt: same rendering, same greedy answer
    assert asyncio.run(llm.generate(one, max_tokens=12, **GREEDY)) == asyncio.run(
        llm.generate(FRANCE, max_tokens=12, **GREEDY)
    )
    convo = one + [
        {"role": "assistant", "content": "The capital of France is Paris."},
        {"role": "user", "content": "And of Italy?"},
    ]
    rendered = llm.engine.render_messages([{"role": "system", "content": "Be brief."}] + convo)
    assert rendered.count("<|im_start|>user") == 2 and "The capital of France is Paris.<|im_end|>" in rendered
    assert llm.count_tokens(convo) > llm.count_tokens("And of Italy?")
    streamed = asyncio.run(_collect(llm.stream(convo, system_prompt="Be brief.", max_tokens=12, **GREEDY)))
    assert streamed == asyncio.run(llm.generate(convo, system_prompt="Be brief.", max_tokens=12, **GREEDY))
    assert streamed.strip()


async def _collect(pieces) -> str:
    return "".join([p async for p in pieces])


@pytest.mark.parametrize("blank", ["", " ", "\n\t  ", [{"role": "user", "content": "  "}]])
def test_an_empty_prompt_is_a_clear_error_before_anything_loads(blank):
    p = LocalModelProvider(device="cpu")
    t = time.perf_counter()
    with pytest.raises(MindbenchError, match="empty"):
        asyncio.run(p.generate(blank))
    with pytest.raises(MindbenchError, match="empty"):
        asyncio.run(p.generate_batch(["What is 2 + 2?", blank] if isinstance(blank, str) else [blank]))

    async def first_piece():
        async for piece in p.stream(blank):
            return piece

    with pytest.raises(MindbenchError, match="empty"):
        asyncio.run(first_piece())
    assert not p.is_loaded and time.perf_counter() - t < 5  # refused, not generated


@pytest.mark.parametrize(
    "bad", [[], [{"role": "robot", "content": "hi"}], [{"role": "user"}], [{"role": "user", "content": 3}], 42]
)
def test_a_malformed_conversation_is_a_clear_error(bad):
    p = LocalModelProvider(device="cpu")
    with pytest.raises(MindbenchError, match="prompt must be|message 0"):
        asyncio.run(p.generate(bad))
    with pytest.raises(MindbenchError, match="generate_batch takes a list of prompts"):
        asyncio.run(p.generate_batch([{"role": "user", "content": "hi"}]))
    assert not p.is_loaded


def test_generate_does_not_block_the_event_loop(llm):
    llm.load_model()

    async def main():
        ticks = 0
        t0 = time.perf_counter()
        gens = asyncio.gather(
            llm.generate(FRANCE, max_tokens=10, **GREEDY), llm.generate("Name a colour.", max_tokens=10, **GREEDY)
        )
        task = asyncio.ensure_future(gens)
        while not task.done():
            await asyncio.sleep(0.01)
            ticks += 1
        return await task, ticks, time.perf_counter() - t0

    (a, b), ticks, elapsed = asyncio.run(main())
    assert "Paris" in a and b
    # A blocked loop would tick about once; a free one ticks every 10 ms throughout (allow
    # for a loaded machine by asking for a quarter of that).
    assert ticks > max(5, 0.25 * elapsed / 0.01), (ticks, elapsed)


def test_generate_batch_is_batched_and_ordered(llm):
    prompts = ["Name a colour.", FRANCE, "Say hello."]
    batch = asyncio.run(llm.generate_batch(prompts, max_tokens=10, batch_size=3, **GREEDY))

    async def one_by_one():
        return [await llm.generate(p, max_tokens=10, **GREEDY) for p in prompts]

    assert batch == asyncio.run(one_by_one())
    assert "Paris" in batch[1]
    with pytest.raises(MindbenchError):
        asyncio.run(llm.generate_batch("not a list"))


def test_stream_is_an_async_iterator_of_the_same_text(llm):
    async def main():
        pieces = [
            p async for p in llm.stream("Write a python function that adds two numbers.", max_tokens=20, **GREEDY)
        ]
        whole = await llm.generate("Write a python function that adds two numbers.", max_tokens=20, **GREEDY)
        return pieces, whole

    pieces, whole = asyncio.run(main())
    assert len(pieces) > 1 and "".join(pieces) == whole

    async def leave_early():
        async for _ in llm.stream(FRANCE, max_tokens=200, **GREEDY):
            break
        return await llm.generate(FRANCE, max_tokens=6, **GREEDY)  # the lock was released

    assert asyncio.run(leave_early())


def test_stop_strings(llm):
    full = asyncio.run(llm.generate(FRANCE, max_tokens=12, **GREEDY))
    cut = asyncio.run(llm.generate(FRANCE, max_tokens=12, stop=["Paris"], **GREEDY))
    assert cut == full[: full.index("Paris")]


@pytest.mark.parametrize(
    "bad",
    [
        dict(temperature=-1),
        dict(max_tokens=0),
        dict(top_p=1.5),
        dict(top_k=-2),
        dict(repetition_penalty=0),
        dict(temperature="hot"),
        dict(temperature=float("nan")),
        dict(temperature=True),
        dict(max_tokens=2.5),
        dict(temperature=None),
        dict(stop=[""]),
        dict(stop=5),
    ],
)
def test_invalid_parameters(bad):
    p = LocalModelProvider(device="cpu")
    with pytest.raises(MindbenchError):
        asyncio.run(p.generate("hi", **bad))
    assert not p.is_loaded  # rejected before anything was loaded


def test_whole_numbers_are_numbers_of_either_type(llm):
    # temperature=5 (an int) reached transformers, which raised its own ValueError
    from mindbench.runtimes.base import GenParams

    p = GenParams(temperature=5, max_new_tokens=4.0, top_p=1, repetition_penalty=1).validate()
    assert (p.temperature, p.max_new_tokens) == (5.0, 4)
    assert type(p.temperature) is float and type(p.max_new_tokens) is int
    text = asyncio.run(llm.generate("Hi", temperature=5, max_tokens=4, top_p=1, repetition_penalty=1))
    assert isinstance(text, str)
    greedy = [asyncio.run(llm.generate(FRANCE, max_tokens=8.0, temperature=t, repetition_penalty=1)) for t in (0, 0.0)]
    assert greedy[0] == greedy[1] and "Paris" in greedy[0]


def test_constructor_choices():
    assert LocalModelProvider(load_in_4bit=True).precision == "int4"
    assert LocalModelProvider(load_in_8bit=True).precision == "int8"
    assert LocalModelProvider(precision="bf16").runtime == "transformers"
    p = LocalModelProvider(precision="q4_1")
    assert (p.runtime, p.precision) == ("llamacpp", "Q4_1")
    assert LocalModelProvider(runtime="llamacpp").runtime == "llamacpp"
    for bad in (
        dict(load_in_4bit=True, load_in_8bit=True),
        dict(load_in_4bit=True, precision="fp16"),
        dict(precision="int3"),
        dict(runtime="onnx"),
        dict(runtime="transformers", precision="Q8_0"),
        dict(runtime="llamacpp", load_in_4bit=True),
    ):
        with pytest.raises(MindbenchError):
            LocalModelProvider(**bad)
    assert "hf_" not in repr(LocalModelProvider(hf_token="hf_secret"))


def test_load_in_4bit_loads_int4():
    p = LocalModelProvider(device="cpu", load_in_4bit=True)
    text = asyncio.run(p.generate(FRANCE, max_tokens=12, **GREEDY))
    assert "Paris" in text and p.engine.precision == "int4"
    fp = p.memory_footprint()
    p.unload_model()
    assert 0 < fp < 300 * 2**20  # packed 4-bit weights, far below the ~540 MB of fp32


def test_from_recommendation_builds_the_recommended_provider(monkeypatch):
    import mindbench.decide.recommend as rec

    seen = {}

    def fake_best(task, results_path=None):
        seen.update(task=task, results_path=results_path)
        return {"model": "smollm2-135m-instruct", "runtime": "transformers", "precision": "int8", "device": "cpu"}

    monkeypatch.setattr(rec, "best_config", fake_best)
    p = LocalModelProvider.from_recommendation(task="code", results_path="r.jsonl")
    assert seen == {"task": "code", "results_path": "r.jsonl"}
    assert (p.model_name, p.runtime, p.precision, p.device) == ("smollm2-135m-instruct", "transformers", "int8", "cpu")


def test_from_recommendation_through_the_real_recommender(monkeypatch, tmp_path):
    # No measurements here: the recommender falls back to its estimates; offline, it may only
    # name a model that loads without a download.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    p = LocalModelProvider.from_recommendation(task="chat")
    assert p.runtime in ("transformers", "llamacpp") and not p.is_loaded
    from mindbench.models.catalog import availability, resolve

    assert availability(resolve(p.model_name))[0]


def _rss_mb() -> float:
    gc.collect()
    return psutil.Process(os.getpid()).memory_info().rss / 2**20


def test_unload_model_frees_memory():
    p = LocalModelProvider(device="cpu", precision="fp32")
    before = _rss_mb()
    asyncio.run(p.generate("Hi", max_tokens=2, **GREEDY))
    loaded = _rss_mb()
    assert p.memory_footprint() > 500 * 2**20
    p.unload_model()
    after = _rss_mb()
    assert loaded - before > 300, (before, loaded)
    assert after - before < 0.35 * (loaded - before), (before, loaded, after)
    assert p.memory_footprint() == 0 and not p.is_loaded


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("llama_cpp") is None, reason="llama-cpp-python not installed (make extras)"
)
def test_gguf_precision_runs_on_llama_cpp():
    """runtime="auto" with a GGUF type goes to llama.cpp, through the same provider API."""
    p = LocalModelProvider(precision="Q4_1", device="cpu")
    assert p.runtime == "llamacpp"

    async def main():
        text = await p.generate(FRANCE, max_tokens=12, **GREEDY)
        pieces = [x async for x in p.stream(FRANCE, max_tokens=12, **GREEDY)]
        return text, pieces

    text, pieces = asyncio.run(main())
    assert "Paris" in text and "".join(pieces) == text
    assert p.engine.runtime == "llamacpp" and p.precision == "Q4_1" and p.memory_footprint() > 0
    p.unload_model()
    assert not p.is_loaded
