"""The fidelity track (mindbench/suites/fidelity.py) on the real packaged SmolLM2-135M: its KL and top-1
figures against a plain-torch recomputation, identical and corrupted models, the reference cache,
the vocabulary check, and records without fidelity (schema 1)."""

import json
from functools import partial
from pathlib import Path

import pytest

from mindbench.models.catalog import DEFAULT_MODEL
from mindbench.runtimes import get_engine
from mindbench.store import results
from mindbench.store.record import Fidelity
from mindbench.suites import fidelity
from tests.records import fidelity as make_fidelity
from tests.records import record, score

TOKENS = 640  # enough text for several documents, small enough for a shared 2-core machine


@pytest.fixture(scope="module")
def ref_engine():
    e = get_engine(DEFAULT_MODEL, "fp32", device="cpu")
    yield e
    e.unload()


@pytest.fixture(scope="module")
def reference(ref_engine, tmp_path_factory):
    ref, spent, per_token = fidelity.reference_for(ref_engine, TOKENS, tmp_path_factory.mktemp("fid"))
    assert spent > 0 and per_token is not None
    return ref


def _plain_torch(model_a, model_b, docs):
    """KL(a || b) per token and top-1 agreement, from both models' full log_softmax."""
    import torch

    kls, same = [], []
    with torch.inference_mode():
        for ids in docs:
            x = torch.tensor([ids[:-1]])
            la = torch.log_softmax(model_a(input_ids=x, use_cache=False).logits[0].float(), -1).double()
            lb = torch.log_softmax(model_b(input_ids=x, use_cache=False).logits[0].float(), -1).double()
            kls.append((la.exp() * (la - lb)).sum(-1))
            same.append((la.argmax(-1) == lb.argmax(-1)).double())
    return torch.cat(kls).mean().item(), torch.cat(same).mean().item()


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_kld_and_top1_match_plain_torch(ref_engine, reference, precision):
    cell = get_engine(DEFAULT_MODEL, precision, device="cpu")
    try:
        fig = fidelity.measure(cell, reference)
        kld, top1 = _plain_torch(ref_engine.model, cell.model, reference.docs)
    finally:
        cell.unload()
    assert "error" not in fig
    assert fig["tokens"] == reference.tokens >= TOKENS
    assert fig["kld"]["mean"] == pytest.approx(kld, abs=1e-4)
    assert fig["top1"]["mean"] == pytest.approx(top1, abs=1e-4)
    assert fig["kld"]["ci_lo"] <= fig["kld"]["mean"] <= fig["kld"]["ci_hi"]
    assert kld > 1e-4  # a real difference, not a vacuous match
    assert fig["tokenization_match"] is True
    assert fig["ppl_ratio"]["mean"] > 0.9


def test_identical_models_give_zero(ref_engine, reference):
    per_token, _ = fidelity.run_pass(ref_engine, reference.docs, reference)
    s = fidelity.summarize(per_token)
    assert s["kld"] == {"mean": 0.0, "ci_lo": 0.0, "ci_hi": 0.0}
    assert s["top1"]["mean"] == 1.0
    assert s["delta_p"]["p99"] == 0.0
    assert s["ppl_ratio"]["mean"] == pytest.approx(1.0, abs=1e-9)


def test_corrupted_weight_gives_large_kld(ref_engine, reference):
    import torch

    w = ref_engine.model.model.layers[2].mlp.down_proj.weight
    saved = w.detach().clone()
    try:
        with torch.no_grad():
            w.mul_(-3.0)  # one matrix of 30 layers, sign-flipped and scaled
        fig = fidelity.measure(ref_engine, reference)
    finally:
        with torch.no_grad():
            w.copy_(saved)
    assert fig["kld"]["ci_lo"] > 0.3
    assert fig["top1"]["mean"] < 0.8
    assert fig["ppl_ratio"]["mean"] > 1.2


def test_reference_cache_is_reused(ref_engine, reference, tmp_path, monkeypatch):
    cache = tmp_path / "c"
    first, spent, _ = fidelity.reference_for(ref_engine, TOKENS, cache)
    assert spent > 0
    files = list(cache.glob("fidelity/*/*.npz"))
    assert len(files) == 1 and files[0].stat().st_size < 8 << 20

    def no_pass(*a, **k):
        raise AssertionError("the reference was computed again")

    monkeypatch.setattr(fidelity, "run_pass", no_pass)
    again, spent, per_token = fidelity.reference_for(ref_engine, TOKENS, cache)
    assert spent == 0 and per_token is None
    assert again.docs == first.docs and (again.top_ids == first.top_ids).all()
    assert again.meta["vocab_sha"] == first.meta["vocab_sha"]

    # a cell that is not the reference finds it without loading the reference model
    monkeypatch.setattr("mindbench.runtimes.get_engine", no_pass)
    monkeypatch.setattr(fidelity, "cache_path", lambda *a, **k: files[0])
    got, spent = fidelity.ensure_reference(DEFAULT_MODEL, "cpu", TOKENS)
    assert spent == 0 and got.tokens == first.tokens


def _reference_cell(cache: Path, **kw) -> dict:
    """The job of the packaged model's reference cell (fp32 transformers on the CPU), caching in `cache`."""
    return {
        "model": DEFAULT_MODEL,
        "device": "cpu",
        "runtime": "transformers",
        "precision": "fp32",
        "fidelity_tokens": TOKENS,
        "cache_dir": str(cache),
        **kw,
    }


def test_the_reference_cell_reuses_its_cache_and_rechecks_one_document(ref_engine, tmp_path, monkeypatch):
    """A second run of the reference precision reuses the cached distributions and re-runs only the
    first document to check them (the whole text again was most of the default run's fidelity
    stage); the check still finds the engine equal to its reference."""
    cfg = _reference_cell(tmp_path)
    first = fidelity.for_cell(ref_engine, cfg, None)
    fed, real = [], fidelity.run_pass

    def counted(engine, docs, *a, **k):
        fed.append(sum(len(d) - 1 for d in docs))
        return real(engine, docs, *a, **k)

    monkeypatch.setattr(fidelity, "run_pass", counted)
    again = fidelity.for_cell(ref_engine, cfg, None)
    assert first["is_reference"] and again["is_reference"] and "error" not in again
    assert first["tokens"] == TOKENS and first["documents"] > 1 and "checked_tokens" not in first
    assert again["documents"] == 1 and fed == [again["tokens"]] and again["tokens"] < first["tokens"]
    assert again["checked_tokens"].endswith(f"of the cached {TOKENS} (the first document)")
    assert again["kld"]["mean"] < 1e-6 and again["top1"]["mean"] == 1.0


def test_a_reference_nobody_compares_with_is_not_computed(ref_engine, tmp_path, monkeypatch):
    """`--precisions fp32` alone: no cell compares with the reference, so the reference cell runs no
    pass and caches nothing (it says so); when a cache exists it is still checked."""
    cfg = _reference_cell(tmp_path, reference_wanted=False)
    fed = []
    monkeypatch.setattr(fidelity, "run_pass", lambda *a, **k: fed.append(a))
    out = fidelity.for_cell(ref_engine, cfg, None)
    assert fed == [] and not list(tmp_path.rglob("*.npz"))
    assert out["is_reference"] and out["tokens"] == 0 and out["kld"]["mean"] == 0.0
    assert out["checked_tokens"].startswith("none: no cached reference")
    monkeypatch.undo()
    fidelity.for_cell(ref_engine, {**cfg, "reference_wanted": True}, None)  # another run wanted it: cached
    checked = fidelity.for_cell(ref_engine, cfg, None)
    assert checked["documents"] == 1 and checked["checked_tokens"].endswith("(the first document)")


def test_plan_asks_the_reference_cell_for_distributions_only_when_another_cell_compares():
    from mindbench.sweep.harness import plan

    alone = plan([DEFAULT_MODEL], ["fp32"])
    assert [c["reference_wanted"] for c in alone] == [False]
    both = {c["precision"]: c["reference_wanted"] for c in plan([DEFAULT_MODEL], ["fp32", "int4"])}
    assert both["fp32"] is True


def test_vocab_mismatch_is_a_clear_message(ref_engine, reference, monkeypatch):
    pieces = ref_engine.vocab_pieces()
    monkeypatch.setattr(ref_engine, "vocab_pieces", lambda: pieces[:100] + ["<other>"] + pieces[101:])
    fig = fidelity.measure(ref_engine, reference)
    assert list(fig) == ["error"]
    assert fig["error"].startswith("vocabularies differ")
    # the worker puts the message in the record, and the table says it without failing
    cfg = {"model": DEFAULT_MODEL, "runtime": "llamacpp", "precision": "Q4_1", "device": "cpu"}
    assert fidelity.for_cell(ref_engine, cfg, reference)["error"].startswith("vocabularies differ")
    assert fidelity.short(Fidelity.from_json(fig)).startswith("n/a (vocabularies differ")


def test_llamacpp_gguf_against_transformers_reference(reference):
    pytest.importorskip("llama_cpp")
    cell = get_engine(DEFAULT_MODEL, None, device="cpu", runtime="llamacpp")
    try:
        fig = fidelity.measure(cell, reference)
    finally:
        cell.unload()
    assert "error" not in fig, fig
    assert fig["tokenization_match"] is True
    # The packaged fp32 reference *is* this Q4_1 file de-quantized, so what is left is llama.cpp's
    # own arithmetic (8-bit activations in its matmuls): small, but not zero.
    assert 1e-4 < fig["kld"]["mean"] < 0.05 and fig["top1"]["mean"] > 0.9


def test_bootstrap_is_seeded_and_brackets_the_mean():
    import numpy as np

    rng = np.random.default_rng(1)
    doc = np.repeat(np.arange(12), 50)
    per_token = {
        "kl": rng.gamma(0.5, 0.1, doc.size),
        "same": (rng.random(doc.size) < 0.9).astype(float),
        "dp": rng.random(doc.size) * 0.1,
        "nll": rng.random(doc.size) + 2,
        "nll_ref": rng.random(doc.size) + 2,
        "doc": doc,
    }
    a, b = fidelity.summarize(per_token), fidelity.summarize(per_token)
    assert a == b
    assert a["kld"]["ci_lo"] < a["kld"]["mean"] < a["kld"]["ci_hi"]
    assert a["kld"]["mean"] == pytest.approx(per_token["kl"].mean())
    assert a["documents"] == 12 and a["tokens"] == 600


def test_reference_precision_per_device(monkeypatch):
    import torch

    assert fidelity.reference_precision("cpu") == "fp32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # device boundary, faked
    assert fidelity.reference_precision("cuda:0") == "bf16"
    assert fidelity.is_reference({"runtime": "transformers", "precision": "bf16", "device": "cuda:0"})
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert fidelity.reference_precision("cuda:0") == "fp16"
    assert not fidelity.is_reference({"runtime": "llamacpp", "precision": "F16", "device": "cuda:0"})


def test_select_takes_whole_documents_then_cuts():
    docs = [list(range(10)), list(range(20)), list(range(30))]
    assert [len(d) for d in fidelity.select(docs, 25)] == [10, 17]  # 9 + 16 = 25 predictions
    assert sum(len(d) - 1 for d in fidelity.select(docs, 1000)) == 57


def test_schema1_records_still_read():
    """A store made before fidelity existed (schema 1, the committed suites sweep) reads without
    it: no fidelity section, no fidelity column, the table as before."""
    from mindbench.present.table import table_rows, text

    recs = results.read(Path(__file__).resolve().parent.parent / "results" / "suites_by_precision.jsonl")
    assert recs and all(r.schema == 1 and r.fidelity is None for r in recs)
    assert not any(k.startswith("fidelity") for k in table_rows(recs)[0])
    assert "int8" in text(recs, "simple")


def test_table_shows_fidelity_column():
    from mindbench.present.table import table_rows

    recs = [
        record(model="m", precision="fp32", fidelity=make_fidelity(0.0, is_reference=True)),
        record(model="m", precision="int8", fidelity=make_fidelity(0.0232, lo=0.0210, hi=0.0255, top1=0.916)),
        record(model="m", precision="int4"),
    ]
    col = [r["fidelity vs fp32"] for r in table_rows(recs)]
    assert col == ["reference", "KLD 0.023 ±0.002 · top-1 91.6%", "—"]  # the table's "not measured"


def test_plan_turns_fidelity_on_for_pretrained_weights_only():
    from mindbench.sweep.harness import plan

    on = plan([DEFAULT_MODEL], ["fp32", "int8"], fidelity_tokens=1000)
    assert all(c["fidelity"] and c["fidelity_tokens"] == 1000 for c in on)
    assert not any(c["fidelity"] for c in plan([DEFAULT_MODEL], ["fp32"], no_weights=True))
    assert not any(c["fidelity"] for c in plan([DEFAULT_MODEL], ["fp32"], fidelity=False))


def test_fidelity_with_random_weights_is_a_user_error():
    from click.testing import CliRunner

    from mindbench.cli import cli

    res = CliRunner().invoke(cli, ["run", "--no-weights", "--fidelity", "--suite", "none"])
    assert res.exit_code == 2 and "--no-weights" in res.output  # InputError: one line, exit 2


def test_report_shows_fidelity_in_every_format_and_plots_it(tmp_path):
    from mindbench.present.report import render

    cell = partial(record, quality={"code": score(30.0, stderr=0.1, n=10)})
    recs = [
        cell(precision="fp32", fidelity=make_fidelity(0.0, is_reference=True)),
        cell(precision="int8", fidelity=make_fidelity(0.023, lo=0.021, hi=0.025, top1=0.916)),
        cell(precision="int4", fidelity=make_fidelity(0.29, lo=0.27, hi=0.31, top1=0.72)),
        cell(model="m", precision="fp16"),  # no fidelity measured
    ]
    md = render(recs, "md")
    assert "reference" in md and "KLD 0.023 ±0.002 · top-1 91.6%" in md and "KLD 0.29 ±0.02" in md
    csv_text = render(recs, "csv")
    assert "kld,kld_ci_lo,kld_ci_hi" in csv_text and ",0.023,0.021,0.025," in csv_text
    assert json.loads(render(recs, "json"))[1]["fidelity"]["kld"]["mean"] == 0.023
    assert fidelity.plot(recs, tmp_path / "r.png") == tmp_path / "r-fidelity.png"
    assert (tmp_path / "r-fidelity.png").stat().st_size > 10_000
    assert fidelity.plot(recs[-1:], tmp_path / "none.png") is None  # nothing measured: no file


def test_the_sweep_check_finds_overlapping_cis_and_labels_requantized_cells():
    """benchmarks/fidelity_vs_suite.py: adjacent cells in KLD order, apart only when the lower
    cell's CI ends below the next one's; a requantized GGUF cell says what it was made from."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "fidelity_vs_suite.py"
    spec = importlib.util.spec_from_file_location("fidelity_vs_suite", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)

    def rec(rt, prec, kld=None, lo=None, hi=None, **load):
        f = make_fidelity(0.0, is_reference=True) if kld is None else make_fidelity(kld, lo=lo, hi=hi, top1=0.9)
        r = record(model="m", runtime=rt, precision=prec, fidelity=f)
        r.load.extra.update(load)  # what a runtime adds to its load section (a requantized GGUF)
        return r

    recs = [
        rec("llamacpp", "Q4_0", 0.05, 0.04, 0.06, requantized_from="Q4_1"),
        rec("transformers", "fp32"),
        rec("transformers", "int8", 0.02, 0.018, 0.022),
        rec("transformers", "bf16", 0.001, 0.0009, 0.0011),
        rec("transformers", "int4", 0.055, 0.045, 0.07),
    ]
    lines = bench.separation(recs)
    assert lines[0].startswith("m: 3 of 4 adjacent pairs apart: transformers fp32 0 ")
    assert lines[0].index("bf16") < lines[0].index("int8") < lines[0].index("Q4_0") < lines[0].index("int4")
    assert lines[1:] == ["  NOT apart: llamacpp Q4_0 and transformers int4"]
    assert [r["precision"] for r in bench.rows(recs)][0] == "Q4_0 (from Q4_1)"


def test_report_of_a_fidelity_only_sweep_plots_fidelity_and_exits_0(tmp_path):
    """The committed fidelity sweep (--suite none) has no quality score: `report --plot` draws the
    fidelity plot, says why there is no quality plot, and succeeds; a store with neither still fails."""
    from click.testing import CliRunner

    from mindbench.cli import cli

    store = Path(__file__).resolve().parent.parent / "results" / "fidelity" / "sweep.jsonl"
    res = CliRunner().invoke(cli, ["report", str(store), "--plot", str(tmp_path / "s.png")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "s-fidelity.png").stat().st_size > 10_000 and not (tmp_path / "s.png").exists()
    assert "no quality plot" in res.output
    bare = tmp_path / "bare.jsonl"
    results.append(bare, record(model="m"))  # ok, no quality, no fidelity
    res = CliRunner().invoke(cli, ["report", str(bare), "--plot", str(tmp_path / "b.png")])
    assert res.exit_code != 0 and "nothing to plot" in res.output
