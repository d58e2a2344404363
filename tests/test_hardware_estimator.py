"""The device table, its lookup, the per-format estimator and its fit to published llama.cpp speeds."""

import csv
import json
import subprocess
import sys

import pytest

from mindbench.errors import InputError
from mindbench.models import fit
from mindbench.models.devices import TABLE, devices, from_nvml, lookup
from mindbench.models.perf import DATA, FIT_FILE, format_of, predict, shape, shape_of

# --- the device table and its lookup -------------------------------------------------------------------


def test_device_table_covers_the_hardware_people_use_with_a_source_per_row():
    rows = devices()
    assert len(rows) >= 40
    assert all(d.source.startswith("https://") for d in rows)
    names = {d.name for d in rows}
    for need in (
        "RTX 2080 Ti",
        "RTX 3090",
        "RTX 4090",
        "RTX 5090",
        "Tesla T4",
        "V100 32GB",
        "A10",
        "L4",
        "L40S",
        "A100 40GB",
        "A100 80GB SXM",
        "H100 PCIe",
        "H100 SXM",
        "H200",
        "B200",
        "RX 7900 XTX",
        "MI300X",
        "M1",
        "M2 Pro",
        "M3 Max",
        "M4 Max",
        "M2 Ultra",
    ):
        assert need in names
    assert {d.kind for d in rows} == {"cuda", "rocm", "metal", "cpu"}
    assert all(d.bandwidth_gb_s > 0 and d.memory_gb > 0 and d.fp16_tflops > 0 for d in rows)


@pytest.mark.parametrize(
    "text, name, count, memory",
    [
        ("RTX 4090", "RTX 4090", 1, 24),
        ("4090", "RTX 4090", 1, 24),
        ("rtx4090", "RTX 4090", 1, 24),
        ("NVIDIA GeForce RTX 4090", "RTX 4090", 1, 24),  # NVML's name
        ("NVIDIA H100 80GB HBM3", "H100 SXM", 1, 80),
        ("NVIDIA A100-SXM4-40GB", "A100 40GB", 1, 40),
        ("Tesla T4", "Tesla T4", 1, 16),
        ("2x H100", "H100 SXM", 2, 80),
        ("H100 x 4", "H100 SXM", 4, 80),
        ("8xA100", "A100 80GB SXM", 8, 80),
        ("7900 XTX", "RX 7900 XTX", 1, 24),
        ("M2 Max 64GB", "M2 Max", 1, 64),  # a configuration's memory
        ("Apple M4 Pro", "M4 Pro", 1, 64),
    ],
)
def test_lookup_takes_what_people_and_nvml_call_a_device(text, name, count, memory):
    d = lookup(text)
    assert (d.name, d.count, d.memory_gb) == (name, count, memory)


def test_lookup_rejects_unknown_and_ambiguous_names_with_the_nearest():
    with pytest.raises(InputError, match="did you mean .*RTX 4090"):
        lookup("RTX 4099")
    with pytest.raises(InputError, match="ambiguous"):
        lookup("Ada")
    with pytest.raises(InputError, match="empty"):
        lookup(" ")


def test_nvml_names_map_onto_the_table_and_unknown_cards_do_not():
    assert from_nvml("NVIDIA GeForce RTX 3060", 12288).name == "RTX 3060"
    assert from_nvml("NVIDIA L4", 23034).name == "L4"
    assert from_nvml("Matrox G200", 16) is None


def test_multi_gpu_sums_memory_not_layer_split_speed():
    s = shape("llama-3-70b")
    one, two = lookup("RTX 4090"), lookup("2x RTX 4090")
    assert not predict(s, "Q4_K_M", one, context=4096).fits
    p2 = predict(s, "Q4_K_M", two, context=4096)
    assert p2.fits and p2.inputs["split"] == "layers"
    # the same bytes are read one card after another: no faster than one card would be
    single_speed = predict(s, "Q4_K_M", lookup("RTX 4090 48GB"), context=4096).decode_tok_s
    assert p2.decode_tok_s <= single_speed * 1.01


# --- shapes and formats --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, total_b, active_b",
    [
        ("llama-3-8b", 8.03, None),
        ("llama-3-70b", 70.6, None),
        ("qwen2.5-coder-32b", 32.8, None),
        ("qwen3-30b-a3b", 30.5, 3.3),
        ("gpt-oss-20b", 20.9, 3.6),
        ("gpt-oss-120b", 116.8, 5.1),
        ("deepseek-coder-v2-lite", 15.7, 2.4),
        ("gemma-3-27b", 27.0, None),
        ("mistral-small-3.1-24b", 23.6, None),
    ],
)
def test_shapes_match_the_makers_parameter_counts(name, total_b, active_b):
    s = shape(name)
    assert s.total_params / 1e9 == pytest.approx(total_b, rel=0.02)
    if active_b:  # makers count active parameters with one embedding matrix (OpenAI, DeepSeek) or both (Qwen)
        one, both = s.active_params / 1e9, (s.active_body_params + 2 * s.embed_params) / 1e9
        assert min(abs(one - active_b), abs(both - active_b)) / active_b < 0.05


def test_gguf_bits_per_weight_are_llama_cpps():
    assert format_of("Q4_0").body_bpw == 4.5
    assert format_of("Q8_0").body_bpw == 8.5
    assert 4.8 <= format_of("Q4_K_M").body_bpw <= 4.9
    assert format_of("awq").body_bpw == 4.25 and format_of("awq").runtime == "openai"
    with pytest.raises(InputError):
        format_of("Q9_9")
    # a Q4_K_M 8B file is ~4.6 GiB (llama.cpp prints 4.58 GiB for Llama 3 8B Q4_K_M)
    p = predict(shape("llama-3-8b"), "Q4_K_M", lookup("RTX 4090"), context=1)
    assert p.weights_mb / 1024 == pytest.approx(4.58, rel=0.05)


def test_moe_decodes_at_the_speed_of_its_active_parameters_and_holds_all_of_them():
    dev = lookup("RTX 4090")
    moe = predict(shape("qwen3-30b-a3b"), "Q4_K_M", dev, context=4096)
    dense = predict(shape("qwen3-32b"), "Q4_K_M", dev, context=4096)
    assert moe.inputs["moe"] and moe.inputs["active_params"] < moe.inputs["params"] / 8
    assert moe.weights_mb == pytest.approx(dense.weights_mb, rel=0.1)  # both hold ~31B weights
    assert moe.decode_tok_s > 3 * dense.decode_tok_s  # reads ~1/10 of them per token


def test_kv_cache_grows_with_context_and_sliding_windows_cap_it():
    dev = lookup("H100")
    s = shape("llama-3-8b")
    a, b = predict(s, "Q8_0", dev, context=4096), predict(s, "Q8_0", dev, context=8192)
    assert b.kv_cache_mb == pytest.approx(2 * a.kv_cache_mb)
    assert a.kv_cache_mb == pytest.approx(4096 * 32 * 8 * 128 * 2 * 2 / 2**20)
    g = shape("gemma-3-12b")  # 5 local layers (window 1024) per global one
    assert g.kv_elems(32768) < 0.25 * g.kv_elems(1024) * 32


def test_catalog_shapes_resolve_for_old_and_new_ids():
    assert shape_of("qwen2.5-coder-1.5b-instruct").name == "qwen2.5-coder-1.5b"
    assert shape_of("qwen3-coder-30b-a3b-instruct").moe
    assert shape_of("no-such-model") is None


def test_every_catalog_model_has_a_shape_and_those_from_its_config_count_its_parameters():
    """The packaged models and the document's older ones have no 2026 entry: their shape comes from
    their own Hub config (models/archs), so `estimate` and `recommend --gpu` know them too. The
    shape counts the block and embedding matrices only (norms, biases and learned positions are
    left out), so it sits within 0.5 % of the exact count; phi-2, CodeGen and StarCoder have
    two-matrix GELU MLPs (three would make phi-2 3.6B)."""
    from mindbench.models.catalog import CATALOG
    from mindbench.models.estimate import arch_config, count_params
    from mindbench.models.perf import _arch_shape

    for spec in CATALOG.values():
        assert shape_of(spec.id) is not None, spec.id
        if not spec.arch:
            continue
        s, exact = _arch_shape(spec.id), count_params(arch_config(spec.arch)).total
        assert s.total_params == pytest.approx(exact, rel=0.005), spec.id
    assert shape_of("smollm2-135m-instruct").name == "smollm2-135m"  # the packaged default model
    phi = shape_of("phi-2")
    assert phi.mlp_matrices == 2 and phi.total_params / 1e9 == pytest.approx(2.78, abs=0.01)
    assert shape_of("starcoder").kv_heads == 1  # multi-query attention
    g = shape_of("gemma3-270m")  # 18 layers, window 512 on all but every 6th
    assert (g.sliding_window, g.global_layers, g.max_context) == (512, 3, 32768)
    assert g.kv_elems(8192) == 2 * 1 * 256 * (3 * 8192 + 15 * 512)


# --- the published table and the fit ----------------------------------------------------------------------


def test_published_table_has_sources_and_enough_devices():
    with open(DATA / "llama_bench_published.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= 100
    assert len({r["device"] for r in rows}) >= 25
    assert all(r["source"].startswith("https://") for r in rows)
    assert all(r["pp_tok_s"] or r["tg_tok_s"] for r in rows)
    # every row's device and model are known to the estimator
    for r in rows:
        lookup(r["device"])
        shape(r["model"])


def test_estimator_on_published_rows():
    """A few published rows, predicted with the committed factors (both split sides)."""
    cases = [
        ("RTX 4090", "llama-3-8b", "Q4_K_M", 130.58),
        ("M2 Ultra", "llama-3-8b", "Q4_K_M", 78.81),
        ("H100 PCIe", "llama-3-8b", "F16", 68.03),
        ("RTX 3080", "llama-3.1-8b", "Q4_K_M", 111.95),
    ]
    for dev, model, q, tg in cases:
        est = predict(shape(model), q, lookup(dev), decode_at=300, context=512).decode_tok_s
        assert abs(est - tg) / tg < 0.25, (dev, model, q, est, tg)


def test_held_out_decode_error_meets_the_target_and_the_committed_fit_is_reproducible():
    rep = fit.run()
    overall = {(s["figure"], s["class"]): s for s in rep["held_out"]}
    assert overall[("decode", "all")]["median_abs_pct"] <= 15.0
    assert overall[("decode", "all")]["n"] >= 50
    # the split holds devices out whole
    assert not set(rep["fit"]["split"]["train_devices"]) & set(rep["fit"]["split"]["test_devices"])
    committed = json.loads(FIT_FILE.read_text())
    assert committed["groups"] == rep["fit"]["groups"]  # rerun benchmarks/fit_estimator.py after editing the table


def test_nothing_here_imports_torch():
    code = (
        "import sys\nfrom mindbench.models import devices, perf, fit\n"
        "perf.predict(perf.shape('qwen3-30b-a3b'), 'Q4_K_M', devices.lookup('2x RTX 3090'))\n"
        "print(sorted(m for m in ('torch', 'transformers', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert TABLE.exists()


def test_a_detected_gpu_in_the_table_is_planned_from_the_hardware(monkeypatch):
    from mindbench.models import hardware

    g = hardware.GPU(0, "NVIDIA GeForce RTX 4090", 24564, 24000, compute_capability="8.9")
    monkeypatch.setattr(hardware, "nvml_gpus", lambda nvml=None: ([g, hardware.GPU(1, g.name, 24564, 24000)], []))
    monkeypatch.setattr(hardware, "_cuda_usable", lambda gpus: (True, "faked"))
    hw = hardware.detect()
    assert hw.planned_device.name == "RTX 4090" and hw.planned_device.count == 2
    assert hw.bandwidth_gb_s == 1008 and hw.fingerprint == hardware.detect().fingerprint
    monkeypatch.setattr(hardware, "nvml_gpus", lambda nvml=None: ([hardware.GPU(0, "Matrox G200", 16, 16)], []))
    assert hardware.detect().planned_device is None  # not in the table: the old path
