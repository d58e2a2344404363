"""Fidelity through an endpoint (issue #25): the prompt log-probabilities reader on recorded
payloads, the top-k KL arithmetic, planning and labels; then a REAL llama-cpp-python server
(logits_all, the packaged SmolLM2 GGUF, 127.0.0.1, stopped at the end of the module) measured
through `mindbench run --runtimes openai --fidelity`, against the in-process llama.cpp engine on
the same file.

Recorded payloads: tests/data/echo_logprobs.json, its "_sources" say where each came from
(vLLM v0.16.0's answer as recorded in a comment on llama.cpp PR #15189, its first 4 positions;
llama-cpp-python 0.3.36 and llama.cpp's llama-server captured here).
"""

import json
from pathlib import Path

import pytest

from mindbench.runtimes.openai import logprobs as L

DATA = json.loads((Path(__file__).parent / "data" / "echo_logprobs.json").read_text())
MODEL = "smollm2-135m-instruct"
TOKENS = 64  # --fidelity-tokens' minimum: llama-cpp-python's server sorts the whole vocabulary per position


def _choice(resp):
    return resp["choices"][0]


# --- the reader, on recorded payloads ------------------------------------------------------------


def test_vllm_payload_reads_as_entry_i_for_token_i():
    tokens, tops = L.entries(_choice(DATA["vllm"]))
    assert tokens == ["The", " step", " of", " boiling"] and tops[0] is None
    # vLLM adds the prompt token's own entry beyond the top-5: the cell's top-5 leaves it out
    assert len(tops[1]) == 6 and " step" not in dict(L.top(tops[1], 5))
    assert [kv[0] for kv in L.top(tops[1], 2)] == [" is", " "]
    # under "same" the prediction of token j is entry j: its own log-probability is that entry's
    preds = L.predictions(tops, L.SAME, 0, 4)
    lps = _choice(DATA["vllm"])["logprobs"]["token_logprobs"]
    assert [p[t] for p, t in zip(preds, tokens[1:])] == lps[1:]
    # read as "next", token j would get entry j - 1: the first prediction has none
    assert L.predictions(tops, L.NEXT, 0, 4)[0] is None


def test_convention_llama_cpp_python_without_bos_is_shifted():
    """SmolLM2 adds no BOS: llama-cpp-python 0.3.36's entry i is the distribution of token i + 1
    (its entry for " Tuesday" has "," on top; the "," after Thursday has " Friday" at -0.10)."""
    p, q = DATA["llama_cpp_python_smollm2"]["P"], DATA["llama_cpp_python_smollm2"]["Q"]
    assert L.convention(_choice(p), _choice(q), 5) == L.NEXT
    tokens, tops = L.entries(_choice(p))
    assert L.top(tops[2], 1)[0][0] == "," and tokens[2] == " Tuesday"
    assert L.top(tops[7], 1)[0][0] == " Friday"
    preds = L.predictions(tops, L.NEXT, 0, len(tokens))
    assert preds[0] is None  # the first prediction was entry 0: nulled by the server
    assert L.top(preds[7], 1)[0][0] == " Friday" and tokens[8] == " Friday"


def test_convention_llama_cpp_python_with_bos_is_not_shifted():
    """Gemma 3 adds BOS, which llama-cpp-python drops from the echo: the rows line up ("same")."""
    p, q = DATA["llama_cpp_python_gemma3"]["P"], DATA["llama_cpp_python_gemma3"]["Q"]
    assert L.convention(_choice(p), _choice(q), 5) == L.SAME
    tokens, tops = L.entries(_choice(p))
    assert L.top(tops[8], 1)[0][0] == " Friday" and tokens[8] == " Friday"
    # the echo has no BOS: offset 1 when the ids sent start with one, and never a guess otherwise
    assert L.echo_offset(tokens[:9], ["<bos>"] + tokens[:9], bos=True) == 1
    assert L.echo_offset(tokens[:9], ["<bos>"] + tokens[:9], bos=False) is None
    assert L.echo_offset(tokens, tokens[:3] + [" Saturday"] + tokens[4:], bos=False) is None


def test_llama_server_gives_no_prompt_logprobs():
    with pytest.raises(L.Absent, match="generated token"):
        L.entries(_choice(DATA["llama_server"]["P"]))
    with pytest.raises(L.Absent):
        L.convention(_choice(DATA["llama_server"]["P"]), _choice(DATA["llama_server"]["P"]), 5)
    with pytest.raises(L.Absent):
        L.entries({"text": "x", "logprobs": None})


def test_key_ids():
    assert L.key_id("token_id:42", None) == 42  # vLLM's return_tokens_as_token_ids
    assert L.key_id(" Friday", {" Friday": 7}) == 7
    assert L.key_id(" ", {" Friday": 7}) is None  # a string several ids share is not in the map


# --- the top-k arithmetic ---------------------------------------------------------------------------


def test_topk_support_kl_by_hand():
    import math

    import torch

    from mindbench.suites.fidelity import topk_support_kl

    ref_ids = torch.tensor([[3, 5, 9, 1], [3, 5, 9, 1]])
    p = [0.5, 0.3, 0.1, 0.05]
    ref_lp = torch.tensor([[math.log(x) for x in p]] * 2)
    q = [0.6, 0.2]
    q_ids = torch.tensor([[3, 5], [3, 7]])  # id 7: not among the reference's stored entries
    q_lp = torch.tensor([[math.log(x) for x in q]] * 2, dtype=torch.float64)
    renorm, partial, covered, ok = topk_support_kl(q_ids, q_lp, ref_ids, ref_lp)
    ps, qs = [0.5 / 0.8, 0.3 / 0.8], [0.75, 0.25]
    want = sum(a * math.log(a / b) for a, b in zip(ps, qs))
    assert ok.tolist() == [True, False]
    assert renorm[0].item() == pytest.approx(want, rel=1e-6)
    assert partial[0].item() == pytest.approx(0.5 * math.log(0.5 / 0.6) + 0.3 * math.log(0.3 / 0.2), rel=1e-6)
    assert covered[0].item() == pytest.approx(0.8)
    # an entry naming no single id (-1) is left out of the support, not guessed
    r2, _, c2, ok2 = topk_support_kl(torch.tensor([[3, -1]]), q_lp[:1], ref_ids[:1], ref_lp[:1])
    assert ok2.item() and r2.item() == pytest.approx(0.0, abs=1e-12) and c2.item() == pytest.approx(0.5)


# --- planning, labels, compare ----------------------------------------------------------------------


def test_served_cells_plan_fidelity_only_when_asked():
    from mindbench.sweep.harness import plan

    def cells(runtime, fidelity):
        kw = {"endpoints": ["http://127.0.0.1:9/v1"]} if runtime == "openai" else {}
        return plan([MODEL], [], [runtime], ["none"], fidelity=fidelity, **kw)

    assert [c["fidelity"] for c in cells("openai", None)] == [False]
    assert [c["fidelity"] for c in cells("openai", True)] == [True]
    assert all(c["fidelity"] for c in cells("llamacpp", None))
    # llamacpp-server's server runs without logits_all (it slows every prefill): no fidelity
    assert [c["fidelity"] for c in cells("llamacpp-server", True)] == [False]


def _topk_fid(mean, k=20):
    from mindbench.store.record import Fidelity

    iv = {"mean": mean, "ci_lo": mean * 0.9, "ci_hi": mean * 1.1}
    return Fidelity.from_json(
        {
            "reference": {"runtime": "transformers", "precision": "fp32"},
            "is_reference": False,
            "text_sha": "t",
            "kld_topk": iv,
            "top1": {"mean": 0.97, "ci_lo": 0.96, "ci_hi": 0.98},
            "topk": {"k": k, "form": "renormalized on the served top-k"},
        }
    )


def test_topk_figure_is_labelled_and_never_set_against_a_full_kl():
    from mindbench.decide.compare import _fidelity_check
    from mindbench.store.record import Fidelity
    from mindbench.suites.fidelity import flat, short

    top = _topk_fid(0.0025)
    assert top.kld is None and short(top).startswith("top-20 KLD 0.00")
    assert flat(top)["kld"] is None and flat(top)["kld_topk"] == 0.0025 and flat(top)["kld_topk_k"] == 20
    full = Fidelity.from_json(
        {
            "reference": {"runtime": "transformers", "precision": "fp32"},
            "is_reference": False,
            "text_sha": "t",
            "kld": {"mean": 0.0029, "ci_lo": 0.0026, "ci_hi": 0.0031},
            "top1": {"mean": 0.97, "ci_lo": 0.96, "ci_hi": 0.98},
        }
    )
    notes: list = []
    assert _fidelity_check("c", full, top, 0.1, notes) is None and "different metrics" in notes[0]
    assert _fidelity_check("c", top, _topk_fid(0.0025, k=5), 0.1, []) is None
    check = _fidelity_check("c", top, _topk_fid(0.05), 0.1, [])
    assert check["verdict"] == "regression" and check["what"] == "fidelity KLD (top-20)"


def test_recommend_evidence_ignores_topk_figures():
    from mindbench.decide.evidence import fidelity_map
    from tests.records import record

    rec = record(runtime="openai", precision="served")
    rec.fidelity = _topk_fid(0.0025)
    assert fidelity_map([rec]) == {}


# --- a real server ------------------------------------------------------------------------------------


def _server_ready():
    from mindbench.runtimes.llamacpp_server.runtime import RUNTIME

    return RUNTIME.available()


needs_server = pytest.mark.skipif(
    not _server_ready(), reason="llama-cpp-python's server extra is not installed (make extras)"
)


@pytest.fixture(scope="module")
def server():
    from mindbench.models.catalog import packaged_gguf, resolve
    from mindbench.runtimes.llamacpp_server.launcher import LlamaCppServer

    # logits_all: llama-cpp-python keeps every position's logits, which echo + logprobs need
    s = LlamaCppServer(packaged_gguf(resolve(MODEL)), alias=MODEL, n_ctx=1024, extra={"logits_all": True}).start()
    yield s
    s.stop(copy_log=False)


@pytest.fixture(scope="module")
def reference():
    from mindbench.suites.fidelity import ensure_reference

    return ensure_reference(MODEL, "cpu", TOKENS)[0]


@pytest.fixture(scope="module")
def inprocess_topk(reference):
    """The in-process llama.cpp engine's k largest entries at every prediction of the text (what
    a server sends for the same file), as benchmarks/topk_kl.py takes them."""
    import torch

    from mindbench.runtimes import get_engine
    from mindbench.suites import fidelity as F

    eng = get_engine(MODEL, None, device="cpu", runtime="llamacpp")
    try:
        ids, lps = [], []
        for _, lp in F._rows(eng, reference.docs):
            v, i = lp.double().topk(20, dim=1)
            ids.append(i)
            lps.append(v)
    finally:
        eng.unload()
    return torch.cat(ids), torch.cat(lps)


@needs_server
def test_served_topk_matches_in_process_and_a_shifted_reading_does_not(server, reference, inprocess_topk):
    """Same positions, same file: the served top-k KL is the in-process one (the server's float
    rounding aside). Read with the wrong convention it is orders of magnitude larger: the
    convention check is what makes the figure mean anything."""
    from mindbench.runtimes import get_engine
    from mindbench.suites import fidelity as F

    eng = get_engine(MODEL, None, device="cpu", runtime="openai", endpoint=server.base_url)
    try:
        conv = eng.logprob_convention()
        assert conv["convention"] == L.NEXT  # llama-cpp-python 0.3.36 on a model without BOS
        q_ids, q_lp, have, doc, skipped, _ = F.served_topk(eng, reference, 20, L.NEXT)
        wrong = F.served_topk(eng, reference, 20, L.SAME)
    finally:
        eng.unload()
    assert not skipped
    served, counts = F.topk_figures(reference, q_ids, q_lp, have, doc)
    assert counts["scored"] >= TOKENS - 4  # the first prediction (entry 0) and ambiguous " " tops only
    import numpy as np
    import torch

    ti = torch.from_numpy(np.asarray(reference.top_ids)).long()
    scored = have & F.topk_support_kl(q_ids, q_lp, ti, torch.from_numpy(reference.top_lp))[3] & (q_ids[:, 0] >= 0)
    local, _ = F.topk_figures(reference, *inprocess_topk, scored, doc)
    s, lo = float(served["kl"].mean()), float(local["kl"].mean())
    assert 0 < s < 0.05
    assert s == pytest.approx(lo, rel=0.05)
    assert float(served["same"].mean()) == pytest.approx(float(local["same"].mean()), abs=0.02)
    # the shifted reading: its top-1 is the next token's, and its top-k ids mostly fall outside
    # the reference's stored entries for the position, so it is either refused or far off
    w_ids, w_have = wrong[0], wrong[2]
    assert float((w_ids[w_have, 0] == ti[w_have, 0]).double().mean()) < 0.5 * float(served["same"].mean())
    shifted = F.topk_figures(reference, *wrong[:4])
    assert shifted is None or float(shifted[0]["kl"].mean()) > 30 * s


@needs_server
def test_run_records_a_topk_figure_through_the_endpoint(server, tmp_path, inprocess_topk, reference):
    """`mindbench run --runtimes openai --fidelity`: the record holds the top-k KL (never `kld`),
    labelled, with k, form and the convention the probe found; the table says top-20."""
    import torch

    from mindbench.store import results
    from mindbench.suites import fidelity as F
    from tests.test_openai_runtime import _cli

    out = tmp_path / "runs.jsonl"
    args = ["run", "--runtimes", "openai", f"--endpoint={server.base_url}", "--models", MODEL, "--suite", "none"]
    args += ["--repeats", "1", "--prompt-tokens", "16", "--new-tokens", "4", "--speed-max-s", "1"]
    res, _ = _cli(args + ["--fidelity", "--fidelity-tokens", str(TOKENS), "--out", str(out)])
    assert res.exit_code == 0, res.output
    rec = results.read(out)[-1]
    assert rec.status == "ok", rec.error
    fid = rec.fidelity
    assert fid.error is None, fid.error
    assert fid.kld is None and fid.kld_topk is not None
    assert fid.topk["k"] == 20 and fid.topk["convention"] == L.NEXT and fid.topk["form"] == F.TOPK_FORM
    assert fid.topk["server"] == "llama-cpp-python"
    assert "top-20 KLD" in res.output
    everywhere = F.topk_figures(
        reference, *inprocess_topk, torch.ones(reference.tokens, dtype=torch.bool), _docs(reference)
    )
    assert fid.kld_topk.mean == pytest.approx(float(everywhere[0]["kl"].mean()), rel=0.25)
    assert 0.9 <= fid.top1.mean <= 1.0


def _docs(reference):
    import torch

    return torch.tensor([d for d, ids in enumerate(reference.docs) for _ in ids[1:]])


@needs_server
def test_a_server_without_prompt_logprobs_is_not_reported(reference):
    """llama-cpp-python's server without logits_all refuses echo + logprobs: the record says the
    server does not report them, and gives no figure."""
    from mindbench.models.catalog import packaged_gguf, resolve
    from mindbench.runtimes import get_engine
    from mindbench.runtimes.llamacpp_server.launcher import LlamaCppServer
    from mindbench.suites.fidelity import measure_topk

    s = LlamaCppServer(packaged_gguf(resolve(MODEL)), alias=MODEL, n_ctx=512).start()
    try:
        eng = get_engine(MODEL, None, device="cpu", runtime="openai", endpoint=s.base_url)
        try:
            out = measure_topk(eng, reference)
        finally:
            eng.unload()
    finally:
        s.stop(copy_log=False)
    assert set(out) == {"error"} and out["error"].startswith("not reported by the server")
