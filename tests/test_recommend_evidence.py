"""Evidence tiers, published figures, fidelity and the quality-loss budget in `recommend`, on
hand-made stores; the estimator's error table over the committed records; llama.cpp candidates."""

import json
import math
from functools import partial

import pytest
from click.testing import CliRunner

from mindbench.cli.recommend import recommend_command
from mindbench.decide import estimate_check
from mindbench.decide import evidence as ev
from mindbench.decide import recommend as R
from mindbench.measure.stats import mcnemar
from mindbench.models import hardware
from mindbench.present import recommendation as P
from mindbench.runtimes import get_runtime
from mindbench.store import results
from tests.records import fidelity, record
from tests.records import score as quality

CPU = hardware.HardwareProfile(
    "Synthetic CPU",
    2,
    24 * 1024,
    [],
    False,
    True,
    name="synthetic",
    cpu_bandwidth_gb_s=20.0,
    cpu_bandwidth_source="assumed",
)
PACKAGED = ["smollm2-135m-instruct", "gemma3-270m", "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"]


def rec(
    hw,
    model,
    precision,
    *,
    task="code",
    score=None,
    stderr=0.05,
    n=40,
    tok_s=10.0,
    peak_mb=2000.0,
    runtime="transformers",
    fidelity=None,
    items=None,
    ts="2025-06-01T00:00:00",
    fingerprint=None,
    speed_fingerprint=None,
    verdict=None,
    efficiency=None,
    bandwidth=None,
):
    """A record of `model` at `precision` measured on `hw` (tests/records.py with this file's
    defaults: no speed fingerprint or verdict, decode speed only)."""
    return record(
        model=model,
        runtime=runtime,
        precision=precision,
        device="cuda:0" if hw.device == "cuda" else "cpu",
        suites=[task],
        timestamp=ts,
        fingerprint=fingerprint or hw.fingerprint,
        speed_fingerprint=speed_fingerprint,
        memory_class=hw.memory_class,
        decode=tok_s,
        decode_std=0.1,
        prefill=None,
        ttft=None,
        verdict=verdict,
        weights_mb=peak_mb / 2,
        peak_mb=peak_mb,
        efficiency=efficiency,
        bandwidth_gb_s=bandwidth,
        quality=None if score is None else {task: quality(score, stderr=stderr, n=n, items=items)},
        fidelity=fidelity,
    )


@pytest.fixture(autouse=True)
def no_llamacpp(monkeypatch):
    monkeypatch.setattr(get_runtime("llamacpp"), "available", lambda: False)


# --- this CPU, the four packaged models measured --------------------------------------------------------


def packaged_store():
    # pass@1 on the code suite (n=40): the 0.5B coder clearly best among those that run fast enough;
    # the 1.5B coder scores higher but decodes at 2 tok/s here.
    return [
        rec(CPU, "smollm2-135m-instruct", "fp32", score=25.0, stderr=0.068, tok_s=14.5, peak_mb=1100),
        rec(CPU, "gemma3-270m", "fp32", score=10.0, stderr=0.047, tok_s=8.0, peak_mb=2100),
        rec(CPU, "qwen2.5-coder-0.5b-instruct", "fp32", score=47.5, stderr=0.079, tok_s=7.5, peak_mb=3300),
        rec(CPU, "qwen2.5-coder-1.5b-instruct", "fp32", score=60.0, stderr=0.077, tok_s=2.0, peak_mb=8200),
    ]


def test_cpu_code_picks_among_packaged_models_on_measured_evidence():
    r = R.recommend(CPU, packaged_store(), "code", models=PACKAGED)
    assert r.basis == "measured"
    assert r.chosen.key == ("qwen2.5-coder-0.5b-instruct", "transformers", "fp32")
    assert r.chosen.quality["source"] == "measured here" and ev.tier(r.chosen.quality["source"]) == "measured here"
    assert P._tiers(r.chosen) == "measured here / measured here / measured here"
    assert r.decided_by[0] == "suite"
    slow = {c.model: c.excluded for c in r.excluded}
    assert "under 5 tok/s" in slow["qwen2.5-coder-1.5b-instruct"]
    # with the speed floor off, the stronger measured model wins
    r = R.recommend(CPU, packaged_store(), "code", models=PACKAGED, min_tok_s=0)
    assert r.chosen.model == "qwen2.5-coder-1.5b-instruct"


def test_cpu_code_picks_among_the_packaged_ggufs_swept_on_llamacpp_while_contended(monkeypatch):
    # The committed sweep's shape (results/packaged-sweep.jsonl): each packaged model's own GGUF on
    # llama.cpp, scored on 80 code tasks, every speed marked contended (so estimated, labelled).
    monkeypatch.setattr(get_runtime("llamacpp"), "available", lambda: True)
    own = {
        "smollm2-135m-instruct": "Q4_1",
        "gemma3-270m": "Q4_K_M",
        "qwen2.5-coder-0.5b-instruct": "Q4_K_M",
        "qwen2.5-coder-1.5b-instruct": "Q4_K_M",
    }
    scores = {
        "smollm2-135m-instruct": 20.0,
        "gemma3-270m": 5.0,
        "qwen2.5-coder-0.5b-instruct": 50.0,
        "qwen2.5-coder-1.5b-instruct": 65.0,
    }
    store = []
    for m, q in own.items():
        store.append(
            rec(
                CPU,
                m,
                q,
                runtime="llamacpp",
                score=scores[m],
                stderr=0.05,
                n=80,
                tok_s=0.6,
                peak_mb=1500,
                verdict="contended",
            )
        )
    r = R.recommend(CPU, store, "code", models=PACKAGED)
    assert r.basis == "measured" and r.chosen.key == ("qwen2.5-coder-1.5b-instruct", "llamacpp", "Q4_K_M")
    assert P._tiers(r.chosen) == "measured here / measured here / estimated"
    assert r.decided_by[0] == "suite"
    # the contended 0.6 tok/s is not what it shows: the estimate is, labelled
    assert r.chosen.speed_source == "estimated" and r.chosen.decode_tok_s > 5


def test_a_weak_measured_model_never_silently_beats_a_stronger_published_one():
    # Only SmolLM2 was measured; the 0.5B coder fits, was never measured, and publishes HumanEval.
    store = [rec(CPU, "smollm2-135m-instruct", "fp32", score=25.0, stderr=0.068, tok_s=14.5, peak_mb=1100)]
    r = R.recommend(CPU, store, "code", models=PACKAGED)
    assert r.chosen.model == "smollm2-135m-instruct" and r.basis == "measured"
    alerts = {a["model"]: a for a in r.published_alerts}
    assert "qwen2.5-coder-0.5b-instruct" in alerts
    a = alerts["qwen2.5-coder-0.5b-instruct"]
    assert a["command"].startswith("mindbench run --models qwen2.5-coder-0.5b-instruct")
    assert "not comparable" in a["message"] and "arxiv.org" in a["message"]
    text = P.render([r], CPU, [], detail=True)
    assert "stronger on published evidence" in text and "LiveCodeBench (2407-2409) 5.5" in text
    # the measured score and the published one are never in the same quality cell
    assert "pass@1 25.0" in text and "(published)" not in text.split("runners-up")[0].splitlines()[4]
    # --prefer published chooses it, labelled
    r = R.recommend(CPU, store, "code", models=PACKAGED, prefer="published")
    assert r.chosen.model in ("qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct")
    assert r.basis == "published" and any("--prefer published" in w for w in r.why)
    assert P._tiers(r.chosen).startswith("published / estimated")


def test_published_to_published_comparison_needs_a_clear_margin():
    # Compared on LiveCodeBench (2407-2409), where the coders separate: 0.5B 5.5, 1.5B 15.7, 7B 18.2.
    # Measured the 1.5B: the 7B publishes 2.5 points more, under the 10-point margin: no alert.
    models = PACKAGED + ["qwen2.5-coder-7b-instruct"]
    store = [rec(CPU, "qwen2.5-coder-1.5b-instruct", "fp32", score=70.0, stderr=0.05, tok_s=7.5, peak_mb=7000)]
    r = R.recommend(CPU, store, "code", models=models, min_tok_s=0)
    assert r.chosen.model == "qwen2.5-coder-1.5b-instruct" and not r.published_alerts
    # Measured the 0.5B: the 1.5B (+10.2) and the 7B (+12.7) clear the margin.
    store = [rec(CPU, "qwen2.5-coder-0.5b-instruct", "fp32", score=47.5, stderr=0.079, tok_s=7.5, peak_mb=3300)]
    r = R.recommend(CPU, store, "code", models=models, min_tok_s=0)
    alerts = {a["model"]: a for a in r.published_alerts}
    assert alerts["qwen2.5-coder-7b-instruct"]["chosen_published"]["score"] == 5.5
    assert "18.2 against 5.5" in alerts["qwen2.5-coder-7b-instruct"]["message"]
    assert "15.7 against 5.5" in alerts["qwen2.5-coder-1.5b-instruct"]["message"]


@pytest.mark.parametrize(
    "size,model,precision",
    [
        ("8GB", "qwen2.5-coder-7b-instruct", "int4"),
        ("16GB", "qwen2.5-coder-14b-instruct", "int4"),
        ("24GB", "qwen2.5-coder-14b-instruct", "int4"),
        ("80GB", "qwen2.5-coder-14b-instruct", "int4"),
    ],
)
def test_gpu_sizes_pick_current_models_with_the_tier_shown(size, model, precision):
    hw = hardware.from_options(None, gpu_memory=size)
    r = R.recommend(hw, [], "code", context=2048)
    assert (r.chosen.model, r.chosen.precision) == (model, precision)
    assert r.basis == "published" and r.decided_by[0] == "published"
    assert P._tiers(r.chosen) == "published / estimated / estimated"
    # ranked on LiveCodeBench, where these coders separate (HumanEval is saturated)
    assert "LiveCodeBench" in P._fmt_q(r.chosen) and "(published)" in P._fmt_q(r.chosen)
    assert R.recommend(hw, [], "code").context == 8192  # code plans 8k tokens unless told
    # chat has no ranking benchmark: the largest current model that fits, estimated
    c = R.recommend(hw, [], "chat").chosen
    assert c.model in {
        s
        for s in R.catalog.CATALOG
        if s.startswith(("qwen", "llama", "gemma", "mistral", "phi", "smollm3", "deepseek"))
    }
    assert P._tiers(c) == "— / estimated / estimated"


def test_gpu_size_pick_with_a_measured_store_ranks_measured_first():
    hw = hardware.from_options(None, gpu_memory="24GB")
    store = [rec(hw, "qwen2.5-coder-7b-instruct", "fp16", score=80.0, stderr=0.03, tok_s=40, peak_mb=16500)]
    r = R.recommend(hw, store, "code")
    assert r.chosen.key == ("qwen2.5-coder-7b-instruct", "transformers", "fp16") and r.basis == "measured"


def test_tiers_of_similar_hardware_and_same_speed_fingerprint(monkeypatch):
    hw = hardware.HardwareProfile(
        "Synthetic CPU",
        2,
        24 * 1024,
        [],
        False,
        True,
        name="synthetic",
        cpu_bandwidth_gb_s=20.0,
        cpu_bandwidth_source="assumed",
    )
    monkeypatch.setattr(hw, "speed_fingerprint", "sfp-1", raising=False)
    other = dict(fingerprint="another-box")
    same = rec(hw, "smollm2-135m-instruct", "fp32", score=25, speed_fingerprint="sfp-1", **other)
    c = R.recommend(hw, [same], "code", models=["smollm2-135m-instruct"]).chosen
    assert (
        P._tiers(c)
        == "measured, same speed fingerprint / measured, same speed fingerprint / measured, same speed fingerprint"
    )
    c = R.recommend(
        hw, [rec(hw, "smollm2-135m-instruct", "fp32", score=25, **other)], "code", models=["smollm2-135m-instruct"]
    ).chosen
    assert P._tiers(c).startswith("measured, similar hardware / ")
    assert [ev.tier(x) for x in ("measured here", "published", "estimated")] == [
        "measured here",
        "published",
        "estimated",
    ]


# --- fidelity between precisions of one model ------------------------------------------------------------


def test_a_suite_tie_is_broken_by_fidelity_not_speed():
    store = [
        rec(CPU, "smollm2-135m-instruct", "fp32", score=30, stderr=0.10, tok_s=14, peak_mb=1100),
        rec(
            CPU,
            "smollm2-135m-instruct",
            "int4",
            score=30,
            stderr=0.10,
            tok_s=24,
            peak_mb=1400,
            fidelity=fidelity(0.286, lo=0.267, hi=0.302),
        ),
    ]
    r = R.recommend(CPU, store, "code", models=["smollm2-135m-instruct"])
    assert r.chosen.precision == "fp32"
    assert "fidelity" in r.decided_by
    assert any("fidelity decides: KLD 0 (reference)" in w for w in r.why)


def test_paired_test_decides_when_the_items_differ_significantly():
    ids = [f"t{i}" for i in range(20)]
    a = {t: 1.0 for t in ids}  # fp32 right on all 20
    b = {t: (1.0 if i < 8 else 0.0) for i, t in enumerate(ids)}  # int8 wrong on 12 of them
    store = [
        rec(CPU, "smollm2-135m-instruct", "int8", score=40, stderr=0.20, tok_s=30, items=b, n=20),
        rec(CPU, "smollm2-135m-instruct", "fp32", score=100, stderr=0.0, tok_s=10, items=a, n=20),
    ]
    r = R.recommend(CPU, store, "code", models=["smollm2-135m-instruct"])
    assert r.chosen.precision == "fp32" and "paired test" in r.decided_by
    assert any(w.startswith("smollm2-135m-instruct fp32 over smollm2-135m-instruct int8: paired test") for w in r.why)
    assert any("exact McNemar p = 0.000488" in w for w in r.why)


def test_mcnemar_exact_known_values():
    assert mcnemar(0, 0) == 1.0
    assert mcnemar(1, 9) == pytest.approx(2 * (1 + 10) / 1024)  # 0.021484375
    assert mcnemar(5, 5) == 1.0
    assert mcnemar(0, 12) == pytest.approx(2 / 4096)
    assert ev.paired({"a": 1, "b": 0, "c": 1}, {"a": 0, "b": 0, "c": 1, "d": 1})[:3] == (3, 1, 0)


def test_budget_picks_the_cheapest_configuration_within_it():
    store = [
        rec(CPU, "smollm2-135m-instruct", "fp32", score=30, stderr=0.10, tok_s=14, peak_mb=1100),
        rec(
            CPU,
            "smollm2-135m-instruct",
            "fp16",
            score=30,
            stderr=0.10,
            tok_s=20,
            peak_mb=900,
            fidelity=fidelity(0.0004, lo=0.0003, hi=0.0005),
        ),
        rec(
            CPU,
            "smollm2-135m-instruct",
            "int8",
            score=30,
            stderr=0.10,
            tok_s=3,
            peak_mb=800,
            fidelity=fidelity(0.0232, lo=0.0210, hi=0.0255),
        ),
        rec(
            CPU,
            "smollm2-135m-instruct",
            "int4",
            score=30,
            stderr=0.10,
            tok_s=24,
            peak_mb=700,
            fidelity=fidelity(0.286, lo=0.267, hi=0.302),
        ),
    ]
    kw = dict(models=["smollm2-135m-instruct"], min_tok_s=0, context=2048)  # (8k: the KV cache outweighs the model)
    r = R.recommend(CPU, store, "code", quality_loss="near", **kw)
    assert r.chosen.precision == "int8" and "fidelity budget" in r.decided_by
    assert any("cheapest configuration" in w and "KLD 0.0232" in w for w in r.why)
    assert "over the quality-loss budget" in {c.precision: c.excluded for c in r.excluded}["int4"]
    assert R.recommend(CPU, store, "code", quality_loss="lossless", **kw).chosen.precision == "fp16"
    assert R.recommend(CPU, store, "code", max_kld=0.5, **kw).chosen.precision == "int4"
    assert R.recommend(CPU, store, "code", max_kld=0.0, **kw).chosen.precision == "fp32"
    # bf16 was never measured: under a budget it is excluded with the command that measures it
    bf16 = {c.precision: c.excluded for c in R.recommend(CPU, store, "code", quality_loss="near", **kw).excluded}[
        "bf16"
    ]
    assert "mindbench run --models smollm2-135m-instruct --precisions fp32,bf16" in bf16
    with pytest.raises(R.MindbenchError, match="not both"):
        R.recommend(CPU, store, "code", max_kld=0.1, quality_loss="near")


def test_budget_levels_are_documented_thresholds():
    assert ev.KLD_LEVELS["lossless"] == 0.002 and ev.KLD_LEVELS["near"] == 0.05 and math.isinf(ev.KLD_LEVELS["any"])


def test_efficiency_scales_within_a_family_and_never_past_the_bandwidth():
    from mindbench.models.estimate import ASSUMED_EFFICIENCY, MAX_EFFICIENCY, efficiency_for

    # bitsandbytes runs far above their assumption say nothing about fp32 matmuls
    eff, why = efficiency_for("cpu", "fp32", {("cpu", "int8"): 0.16, ("cpu", "int4"): 0.21})
    assert eff == ASSUMED_EFFICIENCY[("cpu", "fp32")] and why == "assumed for cpu fp32"
    eff, _ = efficiency_for("cpu", "fp32", {("cpu", "fp16"): 0.6})
    assert eff == MAX_EFFICIENCY


def test_contended_runs_give_no_efficiency_bandwidth_or_speed_error():
    # A run that shared its cores measured a low speed and bandwidth: neither feeds the estimator.
    from mindbench.models.estimate import measured_efficiency

    quiet = rec(CPU, "smollm2-135m-instruct", "fp32", score=25.0, efficiency=0.3, bandwidth=30.0)
    busy = rec(CPU, "gemma3-270m", "fp32", score=10.0, efficiency=0.04, bandwidth=13.0, verdict="contended")
    from mindbench.runtimes import efficiency_family

    assert measured_efficiency([quiet, busy], family_of=efficiency_family) == {("cpu", "fp32"): 0.3}
    assert R.bandwidth_for(CPU, [quiet, busy, busy])["gb_s"] == 30.0
    assert R.bandwidth_for(CPU, [busy])["gb_s"] == 13.0  # nothing quiet: what there is
    rep = estimate_check.check([quiet, busy])
    assert {x["record"] for x in rep["rows"] if x["figure"] == "decode tok/s"} == {
        "smollm2-135m-instruct transformers fp32"
    }
    assert any("1 records measured contended" in s for s in rep["skipped"])


# --- llama.cpp GGUF candidates on a CPU ------------------------------------------------------------------


def test_llamacpp_gguf_types_are_cpu_candidates_installed_or_not(monkeypatch):
    monkeypatch.setattr(get_runtime("llamacpp"), "available", lambda: True)
    cands, _, _ = R.candidates(CPU, [], "code", models=["qwen2.5-coder-7b-instruct", "qwen2.5-coder-0.5b-instruct"])
    got = {(c.model, c.runtime, c.precision): c for c in cands}
    q4 = got[("qwen2.5-coder-7b-instruct", "llamacpp", "Q4_K_M")]
    q8 = got[("qwen2.5-coder-7b-instruct", "llamacpp", "Q8_0")]
    # bytes per weight: 7.62e9 x the one GGUF bits-per-weight table's Q4_K_M (models/perf.py) / 8
    from mindbench.models.perf import GGUF_BPW

    assert q4.estimate["weights_mb"] == pytest.approx(7_615_616_512 * GGUF_BPW["Q4_K_M"] / 8 / 2**20, rel=1e-3)
    assert q8.memory_mb > q4.memory_mb and q8.decode_tok_s < q4.decode_tok_s
    own = got[("qwen2.5-coder-0.5b-instruct", "llamacpp", "Q4_K_M")]
    assert own.estimate["weights_mb"] == pytest.approx(491_400_064 / 2**20, abs=0.1)  # the packaged file itself
    # measured llama.cpp efficiency replaces the assumed one
    store = [rec(CPU, "smollm2-135m-instruct", "Q4_1", runtime="llamacpp", efficiency=0.25)]
    cands, _, _ = R.candidates(CPU, store, "code", models=["qwen2.5-coder-7b-instruct"])
    q4b = {(c.model, c.runtime, c.precision): c for c in cands}[("qwen2.5-coder-7b-instruct", "llamacpp", "Q4_K_M")]
    assert q4b.decode_tok_s == pytest.approx(q4.decode_tok_s * 0.25 / 0.5, rel=0.01)
    # an unmeasured llama.cpp candidate's measuring command names the runtime
    store = [rec(CPU, "smollm2-135m-instruct", "fp32", score=25.0, stderr=0.068, tok_s=14.5, peak_mb=1100)]
    r = R.recommend(CPU, store, "code", models=["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"])
    cmds = [a["command"] for a in r.published_alerts]
    assert cmds and all(("--runtimes llamacpp" in c) == (" Q" in c) for c in cmds)
    # not installed here: still candidates (a profile's picks must not change as packages come and
    # go), labelled with the install line; on this machine one cannot be the answer, and the
    # command says what would be chosen with it installed
    monkeypatch.setattr(get_runtime("llamacpp"), "available", lambda: False)
    cands, _, _ = R.candidates(CPU, [], "code", models=["qwen2.5-coder-7b-instruct"])
    q4c = {(c.model, c.runtime, c.precision): c for c in cands}[("qwen2.5-coder-7b-instruct", "llamacpp", "Q4_K_M")]
    assert q4c.ready_here is False and "llama-cpp-python" in q4c.install
    assert q4c.install_note().startswith("not installed here: ")
    here = hardware.HardwareProfile(
        "Synthetic CPU",
        2,
        24 * 1024,
        [],
        False,
        True,
        name="detected",
        cpu_bandwidth_gb_s=20.0,
        cpu_bandwidth_source="assumed",
    )
    r = R.recommend(here, [], "code", models=["smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct"])
    assert r.chosen.runtime != "llamacpp"
    assert any(c.runtime == "llamacpp" and c.excluded.startswith("not installed here") for c in r.excluded)


# --- the estimator's own error ------------------------------------------------------------------------------


def test_check_estimates_over_the_committed_records_weights_within_5_percent():
    records, _ = R.load_records()
    rep = estimate_check.check(records)
    weights = [s for s in rep["summary"] if s["figure"] == "weights"]
    assert weights and all(abs(x["error_pct"]) <= 5 for x in rep["rows"] if x["figure"] == "weights")
    figs = {(s["runtime"], s["figure"]) for s in rep["summary"]}
    assert ("transformers", "peak memory") in figs and ("transformers", "decode tok/s") in figs
    assert ("llamacpp", "weights") in figs  # results/packaged-sweep.jsonl: the four packaged GGUFs
    assert rep["not_modelled"]


def test_llamacpp_record_estimate_counts_the_kv_cache_allocated_at_load():
    # A llama.cpp record's weights_mb is weights + the KV cache allocated for the load's n_ctx.
    import inspect

    from mindbench.runtimes.llamacpp.engine import LlamaCppEngine
    from mindbench.runtimes.llamacpp.runtime import LOAD_CONTEXT

    assert inspect.signature(LlamaCppEngine.load).parameters["n_ctx"].default == LOAD_CONTEXT
    spec = R.catalog.CATALOG["qwen2.5-coder-1.5b-instruct"]
    est = get_runtime("llamacpp").estimate_cell(
        spec, "Q4_K_M", "cpu", context=320, bandwidth_gb_s=20.0, efficiency=None
    )
    kv = 28 * 2 * 2 * 128 * LOAD_CONTEXT * 2 / 2**20  # layers x K,V x KV heads x head_dim x n_ctx x f16
    assert est["weights"] == pytest.approx(spec.size_bytes / 2**20 + kv, rel=1e-3)
    assert est["peak memory"] > est["weights"]


def test_check_estimates_and_longest_context_commands():
    r = CliRunner().invoke(recommend_command, ["--check-estimates", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert {"summary", "rows", "skipped", "not_modelled"} <= set(out["this_machine"])
    held = {(x["figure"], x["class"]): x for x in out["published"]["held_out"]}
    assert held[("decode", "all")]["median_abs_pct"] <= 15 and held[("prefill", "all")]["n"] >= 50
    r = CliRunner().invoke(recommend_command, ["--check-estimates"])
    assert "MAPE %" in r.output and "worst %" in r.output
    assert "median |err| %" in r.output and "held out" in r.output and "hardware estimator" in r.output
    r = CliRunner().invoke(recommend_command, ["--longest-context", "--gpu-memory", "8GB", "--task", "code", "--json"])
    assert r.exit_code == 0, r.output
    rows = {(x["model"], x["precision"]): x for x in json.loads(r.output)}
    small, big = rows[("qwen2.5-coder-0.5b-instruct", "fp16")], rows[("qwen2.5-coder-14b-instruct", "fp16")]
    assert small["longest_context"] == small["limit"] == 32768 and big["longest_context"] == 0
    mid = rows[("qwen2.5-coder-7b-instruct", "int4")]
    assert 0 < mid["longest_context"] <= mid["limit"]


def test_longest_context_is_the_largest_that_fits():
    from mindbench.models.catalog import CATALOG
    from mindbench.models.estimate import estimate

    hw = hardware.from_options(None, gpu_memory="8GB")
    budget = R.budget(hw)
    rows = estimate_check.longest_contexts(hw, [], budget, "code")
    x = next(r for r in rows if r["model"] == "qwen2.5-coder-7b-instruct" and r["precision"] == "int4")
    spec = CATALOG["qwen2.5-coder-7b-instruct"]
    bw = R.bandwidth_for(hw, [])["gb_s"]
    if x["longest_context"] < x["limit"]:
        assert estimate(spec, "int4", "cuda", context=x["longest_context"], bandwidth_gb_s=bw).total_mb <= budget
        assert estimate(spec, "int4", "cuda", context=x["longest_context"] + 1, bandwidth_gb_s=bw).total_mb > budget


def test_best_config_and_the_command_decide_alike_and_say_what_is_not_installed(tmp_path, monkeypatch):
    # The Qwen coder measured best (as in results/packaged-sweep), but on a machine without
    # `make models` its pip parts are missing: nothing fetches them on first use, so the provider,
    # the agents and `mindbench recommend` all get the next best measured model (one decision), and
    # the command says the coder would win, with the line that installs it.
    from mindbench.models import packaged
    from mindbench.models.catalog import CATALOG

    here = hardware.detect()
    store = tmp_path / "runs.jsonl"
    for m, s in (("qwen2.5-coder-0.5b-instruct", 77.5), ("smollm2-135m-instruct", 27.5)):
        results.append(store, rec(here, m, "fp32", score=s, stderr=0.05, n=80, tok_s=20, peak_mb=1000))
    if packaged.installed(CATALOG["qwen2.5-coder-0.5b-instruct"]):
        assert R.best_config("code", store, hardware=here)["model"] == "qwen2.5-coder-0.5b-instruct"
    monkeypatch.setattr(packaged, "installed", lambda spec, finder=None: False)  # the parts, missing
    assert R.best_config("code", store, hardware=here)["model"] == "smollm2-135m-instruct"
    r = R.recommend(here, R.load_records([store])[0], "code")
    assert r.config() == R.best_config("code", store, hardware=here)
    assert r.if_installed["model"] == "qwen2.5-coder-0.5b-instruct"
    assert "not installed here: mindbench models --install qwen2.5-coder-0.5b-instruct" in r.if_installed["message"]
    assert r.if_installed["message"] in r.why
    # the command prints the same pick (on this machine the CLI and best_config take one path)
    monkeypatch.setattr(hardware, "detect", lambda **kw: here)
    out = CliRunner().invoke(recommend_command, ["--task", "code", "--results", str(store), "--json"])
    assert out.exit_code == 0, out.output
    chosen = json.loads(out.output)["tasks"]["code"]["chosen"]
    assert (chosen["model"], chosen["runtime"], chosen["precision"]) == tuple(
        R.best_config("code", store, hardware=here)[k] for k in ("model", "runtime", "precision")
    )


def test_laptop_profile_picks_the_coder_at_q4_k_m_not_fp32():
    # The defect: "highest precision" broke the tie, so the laptop profile chose the 1.5B coder at
    # fp32 (7.4 GiB, 5.1 tok/s) over the same model at Q4_K_M (1.6 GiB, 19.4 tok/s).
    r = R.recommend(
        hardware.profile("laptop-cpu-16gb"), [], "code", models=["qwen2.5-coder-1.5b-instruct"], context=2048
    )
    fp32 = next(c for c in r.runners_up if c.precision == "fp32")
    assert (r.chosen.runtime, r.chosen.precision) == ("llamacpp", "Q4_K_M")
    assert r.chosen.memory_mb < fp32.memory_mb / 4 and r.chosen.decode_tok_s > 3 * fp32.decode_tok_s


def test_prefer_published_picks_the_model_that_publishes_more_even_when_both_were_measured():
    # The defect: with both coders measured here, --prefer published looked only at configurations
    # *not* measured (the 0.5B at another precision) and chose the 0.5B (published 61.6) over the
    # 1.5B (70.7). Every fitting configuration counts now, on the ranking benchmark.
    store = [
        rec(
            CPU,
            "qwen2.5-coder-0.5b-instruct",
            "Q4_K_M",
            score=77.5,
            stderr=2.9,
            n=213,
            tok_s=40,
            peak_mb=900,
            runtime="llamacpp",
        ),
        rec(
            CPU,
            "qwen2.5-coder-1.5b-instruct",
            "Q4_K_M",
            score=77.0,
            stderr=2.9,
            n=213,
            tok_s=19.4,
            peak_mb=1700,
            runtime="llamacpp",
        ),
    ]
    r = R.recommend(CPU, store, "code", models=PACKAGED, prefer="published", min_tok_s=0)
    assert r.chosen.model == "qwen2.5-coder-1.5b-instruct"
    assert r.decided_by[0] == "published (--prefer published)" and "also measured here" in " ".join(r.why)
    assert R.recommend(CPU, store, "code", models=PACKAGED, min_tok_s=0).chosen.model == "qwen2.5-coder-0.5b-instruct"


def test_contended_speed_is_a_lower_bound_not_discarded():
    # The defect: a run measured 25.9 tok/s while other work held the cores; the record was
    # discarded and an estimate of 6.7 tok/s used. Contention only slows a run: 25.9 is a floor.
    box = hardware.HardwareProfile(
        "Synthetic CPU",
        8,
        24 * 1024,
        [],
        False,
        True,
        name="synthetic",
        cpu_bandwidth_gb_s=20.0,
        cpu_bandwidth_source="assumed",
    )
    r0 = partial(rec, box, "qwen2.5-coder-1.5b-instruct", "Q4_K_M", peak_mb=1700, runtime="llamacpp")
    key = ("qwen2.5-coder-1.5b-instruct", "llamacpp", "Q4_K_M")
    c = next(c for c in R.candidates(box, [r0(tok_s=25.9, verdict="contended")], "code")[0] if c.key == key)
    assert c.decode_tok_s == 25.9 and "lower bound" in c.speed_source
    # an estimate above the floor stays (the floor only raises it)
    c = next(c for c in R.candidates(box, [r0(tok_s=0.5, verdict="contended")], "code")[0] if c.key == key)
    assert c.decode_tok_s > 0.5 and c.speed_source == "estimated"
    # a noisy (not contended) record's speed still does not count
    c = next(c for c in R.candidates(box, [r0(tok_s=99.0, verdict="noisy")], "code")[0] if c.key == key)
    assert c.decode_tok_s != 99.0


def test_offline_without_the_runtime_installed_is_one_decision_not_a_loop(monkeypatch):
    # The provider's path on a fresh machine: HF_HUB_OFFLINE=1 and llama.cpp missing (autouse
    # fixture). Asking "what would win were it installed" must not ask again forever.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    here = hardware.HardwareProfile(
        "Synthetic CPU",
        2,
        24 * 1024,
        [],
        False,
        True,
        name="detected",
        cpu_bandwidth_gb_s=20.0,
        cpu_bandwidth_source="assumed",
    )
    for kw in ({}, {"available_only": True}, {"available_only": True, "installed_packages_only": False}):
        r = R.recommend(here, [], "chat", **kw)
        assert r.chosen is not None and r.chosen.runtime != "llamacpp"
