"""The oneDNN linear kernel (mindbench/runtimes/transformers/onednn.py): which layers it swaps, that it
computes what nn.Linear computes, and that the real packaged model gives the same logits and
the same greedy text with it as with torch's kernel."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from mindbench.runtimes.transformers import onednn

needs_onednn = pytest.mark.skipif(onednn.available() is not None, reason=f"no oneDNN linear: {onednn.available()}")


class _Quantized(nn.Linear):
    """Stands in for bitsandbytes' layers: a subclass of nn.Linear with its own kernel."""


def _model():
    torch.manual_seed(0)
    m = nn.Sequential(
        nn.Linear(32, 64),
        nn.ReLU(),
        nn.Linear(64, 16, bias=False),
        _Quantized(16, 8),
        nn.Linear(8, 8).to(torch.bfloat16),
    )
    m.eval()
    return m


@needs_onednn
def test_swaps_exactly_the_fp32_cpu_linears_and_computes_the_same():
    m = _model()
    x = torch.randn(5, 3, 32)
    with torch.inference_mode():
        ref = m[:4](x)
    weights = [p.data_ptr() for p in m.parameters()]
    assert onednn.enable(m, "cpu") == "onednn (2 layers)"
    assert [type(layer).__name__ for layer in m] == ["OneDNNLinear", "ReLU", "OneDNNLinear", "_Quantized", "Linear"]
    # Same parameters, not copies: memory and tied weights are untouched.
    assert [p.data_ptr() for p in m.parameters()] == weights
    with torch.inference_mode():
        out = m[:4](x)
    assert torch.allclose(out, ref, atol=1e-5, rtol=1e-4)
    # With autograd on, the stock path runs (the oneDNN op has no backward).
    y = m[0](x.requires_grad_())
    assert y.grad_fn is not None
    # A swapped model pickles and comes back swapped (torch.save of a model mid-benchmark).
    back = pickle.loads(pickle.dumps(m))
    assert type(back[0]) is type(m[0]) and torch.equal(back[0].weight, m[0].weight)
    onednn.disable(m)
    assert [type(layer) for layer in m][:4] == [nn.Linear, nn.ReLU, nn.Linear, _Quantized]


def test_off_the_cpu_or_when_asked_nothing_changes(monkeypatch):
    m = _model()
    assert onednn.enable(m, "cuda:0") == "torch (not on the CPU)"
    monkeypatch.setenv(onednn.ENV, "torch")
    assert onednn.enable(m, "cpu") == "torch (MINDBENCH_LINEAR=torch)"
    assert [type(layer) for layer in m] == [nn.Linear, nn.ReLU, nn.Linear, _Quantized, nn.Linear]


def test_a_broken_op_is_found_before_any_layer_changes(monkeypatch):
    """A build whose oneDNN op fails or disagrees keeps torch's kernel and says why."""

    def wrong(x, w, b, *a):
        return torch.nn.functional.linear(x, w, b) + 1.0

    monkeypatch.setattr(onednn, "_op", lambda: wrong)
    m = _model()
    assert onednn.enable(m, "cpu").startswith("torch (oneDNN linear disagrees")
    assert type(m[0]) is nn.Linear


@needs_onednn
@pytest.mark.slow
def test_the_packaged_model_gives_the_same_logits_and_text():
    from mindbench.models.catalog import DEFAULT_MODEL
    from mindbench.runtimes import GenParams, get_engine

    e = get_engine(DEFAULT_MODEL, "fp32", device="cpu")
    try:
        n = sum(type(m).__name__ == "OneDNNLinear" for m in e.model.modules())
        assert n and e.info["linear_kernel"] == f"onednn ({n} layers)"
        assert n == sum(isinstance(m, nn.Linear) for m in e.model.modules())  # every one (all fp32)
        # The tied LM head still shares the embedding's storage.
        assert e.model.get_output_embeddings().weight.data_ptr() == e.model.get_input_embeddings().weight.data_ptr()
        ids = torch.tensor([e.tokenizer("def add(a, b):\n    return")["input_ids"]])
        prompts = [e.render(q) for q in ("Name three colours.", "What is 7 times 6?", "Write a haiku about rain.")]
        params = GenParams(max_new_tokens=24, temperature=0.0, repetition_penalty=1.0, batch_size=3)
        with torch.inference_mode():
            fast = e.model(ids).logits
        fast_text = [g.text for g in e.generate(prompts, params)]
        onednn.disable(e.model)
        with torch.inference_mode():
            stock = e.model(ids).logits
        stock_text = [g.text for g in e.generate(prompts, params)]
        assert (fast - stock).abs().max().item() < 1e-3
        assert torch.equal(fast.argmax(-1), stock.argmax(-1))
        assert fast_text == stock_text
    finally:
        e.unload()
