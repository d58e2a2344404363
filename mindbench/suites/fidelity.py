"""The fidelity track: how far a quantized cell's next-token distribution is from the reference
precision's, teacher-forced on a fixed text shipped with the project (suites/fidelity/*.txt).

Why: a suite score at n = 20 has a standard error of 10-15 points, so fp32, int8 and int4 tie.
Comparing the two models' distributions on every token of a few thousand tokens of text separates
them with CIs of about +-10 % of the value (llama.cpp's `perplexity --kl-divergence` does the
same for GGUF types).

Figures, per cell (record["fidelity"], see docs/architecture.md):
  kld       mean KL(reference || cell) per token, nats
  top1      fraction of tokens where the cell's most likely token is the reference's
  delta_p   percentiles of |p_cell(t) - p_ref(t)|, t = the reference's most likely token
  ppl_ratio perplexity of the cell / perplexity of the reference on the text
95 % CIs by a seeded percentile bootstrap over documents (tokens of one document are not
independent), each resample's figure a token-weighted mean, as the point estimate is.

The reference (fp32 on a CPU; bf16 on a GPU that has it, else fp16; always transformers) is
computed once per (model revision, text, vocabulary, token count) and cached under the mindbench
cache dir (fidelity/<model>/...npz). Per token it keeps the TOP_K largest log-probabilities with
their ids, TAIL ids drawn from the rest of the distribution (systematic draws in proportion to p,
seeded) with their log-probabilities, the rest's total mass r, and the log-probability of the
text's actual next token: ~6 KB a token whatever the vocabulary, so ~25 MB for 4 k tokens of a 7B
model, where the full distributions of SmolLM2-135M alone would be 800 MB.

How KL is computed from that: llama.cpp's `perplexity --kl-divergence` keeps every entry
(uint16-quantised) and sums p_ref * (log p_ref - log p_cell) over the tokens with
log p_ref > -16, dropping the rest. We keep the same sum over the top K exactly, and the rest of
the sum, sum over the tail of p_i * (log p_i - log q_i) = r * E_{i ~ p/r}[log p_i - log q_i], is
estimated from the TAIL draws (unbiased; dropping it, as a plain top-K cut would, biases the KL
low by about the tail mass: SmolLM2-135M leaves 3 % of its mass outside its top 256 on this
text). Identical models give exactly 0. tests/test_fidelity.py recomputes KL from both models'
full log_softmax with plain torch and matches this to 1e-4.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

from mindbench.errors import MindbenchError
from mindbench.runtimes import DEFAULT_RUNTIME
from mindbench.store.record import Fidelity, Interval, Record

TOP_K = 256  # largest reference entries kept per token (see the module docstring)
TAIL = 512  # draws from the rest of the reference distribution per token
DEFAULT_TOKENS = 4096  # scored tokens by default (whole documents, the last one cut)
WINDOW = 512  # tokens per forward; a longer document is cut into independent windows
BOOTSTRAP = 2000
SEED = 0
REFERENCE_RUNTIME = DEFAULT_RUNTIME  # the reference is the default runtime at its widest precision
FORMAT = 1  # cache file layout version


# --- the text ---------------------------------------------------------------------------------


def text_dir() -> Path:
    from mindbench.paths import suites_dir

    return suites_dir() / "fidelity"


def documents() -> list[tuple[str, str]]:
    """(name, text) of every shipped document, in file-name order (domains interleave)."""
    files = sorted(text_dir().glob("*.txt"))
    if not files:
        raise MindbenchError(f"no fidelity text in {text_dir()}: reinstall mindbench")
    return [(f.stem, f.read_text(encoding="utf-8")) for f in files]


def select(docs_ids: list[list[int]], tokens: int) -> list[list[int]]:
    """Whole documents in order until `tokens` predictions are reached; the last one is cut.
    A document of n ids gives n - 1 predictions."""
    out, total = [], 0
    for ids in docs_ids:
        if total >= tokens:
            break
        take = min(len(ids), tokens - total + 1)
        if take >= 2:
            out.append(list(ids[:take]))
            total += take - 1
    return out


def text_sha(docs: list[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for name, text in docs:
        h.update(name.encode() + b"\0" + text.encode() + b"\0")
    return h.hexdigest()


def vocab_sha(pieces: list[str]) -> str:
    """A hash of the vocabulary: token strings in id order. Two runtimes with the same hash give
    the same id the same meaning, so their distributions can be compared entry by entry."""
    return hashlib.sha256("\n".join(pieces).encode("utf-8", "surrogatepass")).hexdigest()


def reference_precision(device: str) -> str:
    """The reference runtime's widest precision on `device` (the runtime decides: fp32 on a CPU,
    bf16 or fp16 on a GPU)."""
    from mindbench.runtimes import get_runtime

    return get_runtime(REFERENCE_RUNTIME).reference_precision(device)


def is_reference(cfg: dict) -> bool:
    return cfg.get("runtime") == REFERENCE_RUNTIME and cfg.get("precision") == reference_precision(cfg["device"])


# --- the cached reference -----------------------------------------------------------------------


@dataclass
class Reference:
    meta: dict  # model, revision, precision, runtime, text_sha, vocab_sha, tokens, ...
    docs: list  # token ids per document (what every cell is fed)
    top_ids: object  # int32 [T, K] the reference's K most likely tokens, most likely first
    top_lp: object  # float32 [T, K] their log-probabilities
    tail_ids: object  # int32 [T, S] draws from the rest of the distribution
    tail_lp: object  # float32 [T, S] their log-probabilities
    rest: object  # float64 [T] probability mass outside the top K
    target_lp: object  # float32 [T] log-probability of the text's next token

    @property
    def tokens(self) -> int:
        return int(self.top_ids.shape[0])


ARRAYS = ("top_ids", "top_lp", "tail_ids", "tail_lp", "rest", "target_lp")


def cache_path(
    model: str, precision: str, revision: str | None, tsha: str, vsha: str, tokens: int, cache_dir=None
) -> Path:
    from mindbench.paths import cache_dir as _cache_dir

    safe = model.replace("/", "_").replace(":", "-")
    name = f"{precision}-{(revision or 'none')[:12]}-{tsha[:12]}-{vsha[:12]}-{tokens}-k{TOP_K}s{TAIL}.npz"
    return _cache_dir(cache_dir) / "fidelity" / safe / name


def save(ref: Reference, path: Path) -> None:
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    lens = np.array([len(d) for d in ref.docs], dtype=np.int64)
    flat = np.array([t for d in ref.docs for t in d], dtype=np.int64)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}.npz")
    np.savez(tmp, meta=np.array(json.dumps(ref.meta)), lens=lens, flat=flat, **{k: getattr(ref, k) for k in ARRAYS})
    os.replace(tmp, path)  # atomic: a parallel cell reads the old file or the whole new one


def load(path: Path) -> Reference | None:
    import numpy as np

    if not path.exists():
        return None
    try:
        z = np.load(path)
        meta = json.loads(str(z["meta"]))
        lens, flat = z["lens"], z["flat"]
        bounds = np.concatenate([[0], np.cumsum(lens)])
        docs = [flat[bounds[i] : bounds[i + 1]].tolist() for i in range(len(lens))]
        return Reference(meta, docs, *(z[k] for k in ARRAYS))
    except Exception:  # a torn or foreign file: recompute rather than fail the cell
        return None


# --- one pass over the text -------------------------------------------------------------------


def _rows(engine, docs: list[list[int]]):
    """(document index, float32 log-prob rows) for every prediction, in order."""
    for d, ids in enumerate(docs):
        for lp in engine.next_token_logprobs(ids, window=WINDOW):
            yield d, lp


def _build_rows(lp, targets, gen):
    """The reference's stored rows for one block of full log-prob rows."""
    import torch

    k = min(TOP_K, lp.shape[1])
    tl, ti = lp.topk(k, dim=1)
    rests, draws = [], []
    for r0 in range(0, lp.shape[0], 64):  # 64 rows at a time: a 262 k vocabulary sorts in ~130 MB
        p = lp[r0 : r0 + 64].exp()
        p.scatter_(1, ti[r0 : r0 + 64], 0.0)
        rest = p.double().sum(1)
        # Systematic draws in proportion to p over the tail sorted by p: one uniform offset per
        # row, TAIL evenly spaced points on the tail's CDF. Unbiased like independent draws, with
        # less variance, because every stretch of the tail (likely to unlikely) is represented.
        sp, order = p.sort(1, descending=True)
        cdf = sp.double().cumsum(1)
        u = (
            torch.arange(TAIL, dtype=torch.float64)[None, :]
            + torch.rand(p.shape[0], 1, generator=gen, dtype=torch.float64)
        ) / TAIL
        idx = torch.searchsorted(cdf, u * rest[:, None]).clamp_max(p.shape[1] - 1)
        rests.append(rest)
        draws.append(order.gather(1, idx))
    si = torch.cat(draws)
    return (
        ti.to(torch.int32),
        tl.float(),
        si.to(torch.int32),
        lp.gather(1, si).float(),
        torch.cat(rests),
        lp.gather(1, targets[:, None])[:, 0].float(),
    )


def _token_figures(lp, top_ids, top_lp, tail_ids, tail_lp, rest, targets):
    """Per-token KL, top-1 agreement, delta p and the cell's NLL for one block of rows.
    lp: the cell's float32 log-probs [n, V]; the rest are the reference's rows for the block."""
    lq = lp.double()
    q_top = lq.gather(1, top_ids)
    p_top = top_lp.double().exp()
    kl = (p_top * (top_lp.double() - q_top)).sum(1)
    # the tail's share of the sum, estimated from the draws (module docstring)
    kl = kl + rest.double() * (tail_lp.double() - lq.gather(1, tail_ids)).mean(1)
    same = (lq.argmax(1) == top_ids[:, 0]).double()
    dp = (q_top[:, 0].exp() - p_top[:, 0]).abs()
    nll = -lq.gather(1, targets[:, None])[:, 0]
    return kl, same, dp, nll


def run_pass(
    engine, docs: list[list[int]], reference: Reference | None = None, meta: dict | None = None, progress=None
):
    """Feed `docs` to `engine`, teacher-forced. With a reference, compare against it; without
    one, build it from this engine (and compare against that: exact zeros). Returns (per-token
    arrays, the reference). `progress(tokens done, tokens, tok/s)` after each piece, for the
    sweep's display (a pass takes minutes on a busy CPU)."""
    import numpy as np
    import torch

    build = reference is None
    gen = torch.Generator().manual_seed(SEED)
    parts: dict[str, list] = {k: [] for k in ARRAYS}
    kls, sames, dps, nlls, doc_of = [], [], [], [], []
    pos = 0
    targets_all = [t for ids in docs for t in ids[1:]]
    t0 = time.perf_counter()
    for d, lp in _rows(engine, docs):
        n = lp.shape[0]
        targets = torch.tensor(targets_all[pos : pos + n], dtype=torch.long)
        if build:
            rows = _build_rows(lp, targets, gen)
            for k, v in zip(ARRAYS, rows):
                parts[k].append(v)
        else:
            rows = [torch.from_numpy(np.asarray(getattr(reference, k)[pos : pos + n])) for k in ARRAYS]
            if lp.shape[1] <= int(max(rows[0].max(), rows[2].max())):
                raise ValueError(f"the cell's vocabulary has {lp.shape[1]} entries, fewer than the reference's")
        ti, tl, si, sl, rest, _ = rows
        kl, same, dp, nll = _token_figures(lp, ti.long(), tl, si.long(), sl, rest, targets)
        kls.append(kl)
        sames.append(same)
        dps.append(dp)
        nlls.append(nll)
        doc_of.append(torch.full((n,), d))
        pos += n
        if progress is not None:
            progress(pos, len(targets_all), pos / max(time.perf_counter() - t0, 1e-9))
    if build:
        reference = Reference(dict(meta or {}), [list(d) for d in docs], *(torch.cat(parts[k]).numpy() for k in ARRAYS))
    if pos != reference.tokens:
        raise ValueError(f"{pos} predictions, the reference has {reference.tokens}")
    per_token = {
        "kl": torch.cat(kls).numpy(),
        "same": torch.cat(sames).numpy(),
        "dp": torch.cat(dps).numpy(),
        "nll": torch.cat(nlls).numpy(),
        "nll_ref": -np.asarray(reference.target_lp, dtype=np.float64),
        "doc": torch.cat(doc_of).numpy(),
    }
    return per_token, reference


# --- statistics --------------------------------------------------------------------------------


def summarize(per_token: dict, *, n_boot: int = BOOTSTRAP, seed: int = SEED) -> dict:
    """Point figures and 95 % document-bootstrap CIs from per-token arrays."""
    import numpy as np

    doc = per_token["doc"]
    ndocs = int(doc.max()) + 1
    full = "nll" in per_token  # a top-k pass (measure_topk) has KL and top-1 only
    cols = ("kl", "same", "nll", "nll_ref") if full else ("kl", "same")
    # per-document sums and counts: a resample's figure is sum over its documents / their tokens
    sums = np.stack([np.bincount(doc, weights=per_token[c].astype(np.float64), minlength=ndocs) for c in cols], 1)
    counts = np.bincount(doc, minlength=ndocs).astype(np.float64)

    def figures(s, n):
        mean = s / n[..., None]
        out = {"kld": mean[..., 0], "top1": mean[..., 1]}
        if full:
            out["ppl_ratio"] = np.exp(mean[..., 2] - mean[..., 3])
        return out

    point = figures(sums.sum(0), counts.sum()[None])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, ndocs, size=(n_boot, ndocs))
    boot = figures(sums[idx].sum(1), counts[idx].sum(1))
    out = {}
    for k in point:
        lo, hi = np.percentile(boot[k], [2.5, 97.5])
        out[k] = {"mean": float(point[k][0]), "ci_lo": float(lo), "ci_hi": float(hi)}
    if full:
        dp = per_token["dp"]
        out["delta_p"] = {
            "median": float(np.median(dp)),
            "p90": float(np.percentile(dp, 90)),
            "p99": float(np.percentile(dp, 99)),
        }
    out["tokens"], out["documents"] = int(len(doc)), ndocs
    return out


# --- engines and the cell ------------------------------------------------------------------------


def _encode(engine, docs: list[tuple[str, str]]) -> list[list[int]]:
    return [engine.fidelity_ids(text) for _, text in docs]


def reference_for(
    engine, tokens: int = DEFAULT_TOKENS, cache_dir=None, *, model: str | None = None, progress=None, build=True
):
    """The cached reference for `engine` (itself a reference-precision transformers engine), or
    compute it from the engine and cache it (build=False: None instead). Returns (Reference or
    None, seconds spent computing or 0, per-token figures of the engine against it when just
    computed, else None)."""
    docs = documents()
    tsha, vsha = text_sha(docs), vocab_sha(engine.vocab_pieces())
    model = model or engine.spec.id
    path = cache_path(model, engine.precision, engine.info.get("revision"), tsha, vsha, tokens, cache_dir)
    ref = load(path)
    if ref is not None or not build:
        return ref, 0.0, None
    t0 = time.perf_counter()
    ids = select(_encode(engine, docs), tokens)
    meta = {
        "format": FORMAT,
        "model": model,
        "revision": engine.info.get("revision"),
        "precision": engine.precision,
        "runtime": engine.runtime,
        "device": engine.device,
        "text_sha": tsha,
        "vocab_sha": vsha,
        "top_k": TOP_K,
        "tail": TAIL,
    }
    per_token, ref = run_pass(engine, ids, meta=meta, progress=progress)
    ref.meta["tokens"] = ref.tokens
    save(ref, path)
    return ref, time.perf_counter() - t0, per_token


def head(reference: Reference, documents: int) -> Reference:
    """The first `documents` documents of a reference, with their rows (each document predicts
    all its tokens but the first)."""
    docs = [list(d) for d in reference.docs[:documents]]
    n = sum(len(d) - 1 for d in docs)
    return Reference(dict(reference.meta), docs, *(getattr(reference, k)[:n] for k in ARRAYS))


def cached_reference(model: str, device: str, tokens: int = DEFAULT_TOKENS, cache_dir=None) -> Reference | None:
    """The cached reference of `model` without loading the model: the cache key needs only the
    weights' revision and the tokenizer (a second, not a model load)."""
    from transformers import AutoTokenizer

    from mindbench.models.catalog import resolve
    from mindbench.runtimes.transformers.loading import source_folder

    folder, info = source_folder(resolve(model), cache_dir=cache_dir)
    tok = AutoTokenizer.from_pretrained(folder)
    vsha = vocab_sha(tok.convert_ids_to_tokens(list(range(len(tok)))))
    return load(
        cache_path(
            model, reference_precision(device), info.get("revision"), text_sha(documents()), vsha, tokens, cache_dir
        )
    )


def ensure_reference(model: str, device: str, tokens: int = DEFAULT_TOKENS, cache_dir=None):
    """For a non-reference cell, before it loads its own engine: the cached reference of `model`,
    computed here (load the reference precision, one pass, cache, unload) when missing. Doing it
    in the cell, not by ordering a reference cell first, keeps every cell self-sufficient: any
    executor order, --resume, parallel or Ray workers, a sweep without the reference precision.
    Two cells racing for a missing cache both compute it; the file is written atomically.
    Returns (Reference, seconds spent computing or 0)."""
    try:
        ref = cached_reference(model, device, tokens, cache_dir)
    except Exception:  # e.g. a model transformers cannot tokenize offline: the full path says why
        ref = None
    if ref is not None:
        return ref, 0.0
    from mindbench.runtimes import get_engine

    kwargs = {"cache_dir": cache_dir} if cache_dir else {}
    engine = get_engine(model, reference_precision(device), device=device, runtime=REFERENCE_RUNTIME, **kwargs)
    try:
        ref, spent, _ = reference_for(engine, tokens, cache_dir, model=model)
        return ref, spent
    finally:
        engine.unload()


def measure(engine, reference: Reference, *, tokens: int | None = None, progress=None) -> dict:
    """The cell's record["fidelity"] against `reference` (same model, any runtime)."""
    t0 = time.perf_counter()
    differ = _vocab_differs(vocab_sha(engine.vocab_pieces()), f"{engine.runtime} {engine.precision}", reference)
    if differ:
        return differ
    # The reference's ids are what both models are fed; whether this runtime would have split the
    # text the same way is recorded, since it matters for what the cell sees in real use.
    docs = documents()
    mine = select(_encode(engine, docs), reference.tokens)
    same_split = mine == reference.docs
    per_token, _ = run_pass(engine, reference.docs, reference, progress=progress)
    out = _record(reference, per_token, is_reference=False)
    out["tokenization_match"] = same_split
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


# --- the top-k form: a served model (runtimes/openai) -----------------------------------------------
#
# A server returns the top-k log-probabilities of each position at most (`echo` + `logprobs`), so
# the full KL above cannot be computed through it. What can be is KL on the top-k support:
# both distributions restricted to the cell's top-k tokens and renormalized there. That form was
# chosen over the partial sum (sum over the top-k of p_ref (log p_ref - log q), the rest ignored)
# on benchmarks/topk_kl.py's figures (docs/serving.md): at k = 20 the renormalized form read 0.89
# of the full KL for SmolLM2 Q4_1 and 0.74 for Q2_K where the partial sum read 0.68 and 0.72; it
# is a divergence of two distributions (>= 0, zero only when they agree on the support), where
# the partial sum can fall below zero; and leaving out an entry the server names ambiguously
# renormalizes away instead of biasing the sum. Both read LOW by a factor that depends on the
# cell, so a top-k figure is its own metric (record: kld_topk, never kld) and is compared only
# with top-k figures of the same k and form.

TOPK_FORM = "renormalized on the served top-k"


def topk_support_kl(q_ids, q_lp, top_ids, top_lp):
    """KL(ref || cell) on the cell's top-k support, per position. q_ids [n, k] the cell's top-k
    ids (-1: an entry that names no single id, left out), q_lp [n, k] their log-probabilities;
    top_ids / top_lp [n, K] the reference's stored largest entries (its TOP_K). Returns
    (renormalized KL, partial sum, reference mass on the support, ok): ok is False where an id of
    the support is not among the reference's stored entries (its probability is unknown there)
    or the support is empty; the other figures are 0 at such positions."""
    import torch

    valid = q_ids >= 0
    match = q_ids.long().unsqueeze(2) == top_ids.long().unsqueeze(1)  # [n, k, K]
    found = match.any(2)
    p_lp = torch.where(match, top_lp.double().unsqueeze(1), 0.0).sum(2)
    ok = (found | ~valid).all(1) & valid.any(1)
    use = valid & ok.unsqueeze(1)
    p = torch.where(use, p_lp.exp(), 0.0)
    q = torch.where(use, q_lp.double().exp(), 0.0)
    covered = p.sum(1)
    partial = torch.where(use, p * (p_lp - q_lp.double()), 0.0).sum(1)
    ps = p / covered.clamp_min(1e-300).unsqueeze(1)
    qs = q / q.sum(1).clamp_min(1e-300).unsqueeze(1)
    renorm = torch.where(use, ps * (ps.clamp_min(1e-300).log() - qs.clamp_min(1e-300).log()), 0.0).sum(1)
    return renorm, partial, covered, ok


def topk_windows(docs: list[list[int]]):
    """(document index, first prediction's row, window ids) cut exactly as the engines'
    next_token_logprobs cut a document (WINDOW predictions each, every window from a fresh
    context), each window ending with its last target so one request predicts all of them."""
    pos = 0
    for d, ids in enumerate(docs):
        n = len(ids) - 1
        for start in range(0, n, WINDOW):
            size = min(WINDOW, n - start)
            yield d, pos, list(ids[start : start + size + 1])
            pos += size


def served_topk(engine, reference: Reference, k: int, conv: str, progress=None):
    """The server's top-k for every prediction of the reference's text: (q_ids [T, k] (-1: none),
    q_lp [T, k], have [T] (the server gave an entry), doc [T], skipped windows {why: count},
    entries naming no single id)."""
    import torch

    t0 = time.perf_counter()
    windows = list(topk_windows(reference.docs))
    total, done = reference.tokens, [0]

    def tick(i):
        done[0] += len(windows[i][2]) - 1
        if progress is not None:
            progress(done[0], total, done[0] / max(time.perf_counter() - t0, 1e-9))

    answers = engine.topk_windows([w for _, _, w in windows], k, conv, on_done=tick)
    q_ids = torch.full((total, k), -1, dtype=torch.long)
    q_lp = torch.full((total, k), -math.inf, dtype=torch.float64)
    have = torch.zeros(total, dtype=torch.bool)
    doc = torch.zeros(total, dtype=torch.long)
    skipped: dict[str, int] = {}
    unidentified = 0
    for (d, pos, ids), (rows, why) in zip(windows, answers):
        doc[pos : pos + len(ids) - 1] = d
        if rows is None:
            skipped[why] = skipped.get(why, 0) + 1
            continue
        for j, row in enumerate(rows):
            if not row:
                continue
            have[pos + j] = True
            for c, (tid, lp) in enumerate(row[:k]):
                if tid is None:
                    unidentified += 1
                    continue
                q_ids[pos + j, c], q_lp[pos + j, c] = tid, lp
    return q_ids, q_lp, have, doc, skipped, unidentified


def topk_figures(reference: Reference, q_ids, q_lp, have, doc):
    """Per-token top-k figures (kl, same, doc: what summarize reads) at the positions that can be
    scored, and the counts that say which could not; None when none can. A position is scored
    when the cell gave an entry, its top-1 names one id (top-1 agreement reads it) and every id
    of its support is among the reference's stored entries."""
    import numpy as np
    import torch

    ti = torch.from_numpy(np.asarray(reference.top_ids)).long()
    tl = torch.from_numpy(np.asarray(reference.top_lp))
    renorm, partial, covered, ok = topk_support_kl(q_ids, q_lp, ti, tl)
    scored = have & ok & (q_ids[:, 0] >= 0)
    if not bool(scored.any()):
        return None
    per_token = {
        "kl": renorm[scored].numpy(),
        "same": (q_ids[scored, 0] == ti[scored, 0]).double().numpy(),
        # documents numbered densely again: one with no scored position drops out
        "doc": np.unique(doc[scored].numpy(), return_inverse=True)[1],
    }
    counts = {
        "predictions": int(len(have)),
        "scored": int(scored.sum()),
        "no_entry": int((~have).sum()),
        "outside_reference": int((have & ~ok).sum()),
        "top1_unidentified": int((have & ok & (q_ids[:, 0] < 0)).sum()),
        "reference_mass": round(float(covered[scored].mean()), 4),
        "partial_sum_kld": round(float(partial[scored].mean()), 6),
    }
    return per_token, counts


def measure_topk(engine, reference: Reference, *, k: int | None = None, progress=None) -> dict:
    """record["fidelity"] for a served cell: KL on the served top-k support (TOPK_FORM) and top-1
    agreement against `reference`, from the server's prompt log-probabilities. The server's
    convention is checked first (runtimes/openai/logprobs.py); a server that gives none is
    "not reported by the server", never a figure."""
    from mindbench.runtimes.openai.engine import TOPK

    k = int(k or TOPK)
    t0 = time.perf_counter()
    try:
        vsha = vocab_sha(engine.vocab_pieces())
    except NotImplementedError:
        return {"error": "no tokenizer for the served model (a GGUF file mindbench knows): its ids cannot be checked"}
    differ = _vocab_differs(vsha, "the served model", reference)
    if differ:
        return differ
    conv = engine.logprob_convention(k)
    if "absent" in conv:
        return {"error": f"not reported by the server: {conv['absent']}"[:300]}
    rows = served_topk(engine, reference, k, conv["convention"], progress=progress)
    fig = topk_figures(reference, *rows[:4])
    if fig is None:
        reasons = "; ".join(f"{n} window(s): {w}" for w, n in rows[4].items()) or "no position had an entry"
        return {"error": f"no position could be scored: {reasons}"[:300]}
    per_token, counts = fig
    return {
        **_record(reference, per_token, is_reference=False, topk=True),
        "topk": {
            "k": k,
            "form": TOPK_FORM,
            "convention": conv["convention"],
            "convention_how": conv["how"],
            "server": getattr(engine, "flavor", None),
            **counts,
            "unidentified_entries": rows[5],
            "skipped_windows": rows[4] or None,
        },
        "seconds": round(time.perf_counter() - t0, 2),
    }


def _vocab_differs(vsha: str, what: str, reference: Reference) -> dict | None:
    """The cell's section when its vocabulary is not the reference's (ids name other tokens, so
    no distribution can be compared); None when they agree."""
    if vsha == reference.meta.get("vocab_sha"):
        return None
    return {
        "error": f"vocabularies differ: {what} and the {reference.meta.get('runtime')} "
        f"{reference.meta.get('precision')} reference do not give every id the same token, so their "
        f"distributions cannot be compared"
    }


def _record(reference: Reference, per_token: dict, *, is_reference: bool, topk: bool = False) -> dict:
    """The fidelity section from per-token figures: the full form (kld, Δp, PPL ratio), or the
    top-k form (kld_topk and top-1 only: a server gives no full distribution)."""
    s = summarize(per_token)
    m = reference.meta
    out = {
        "reference": {k: m.get(k) for k in ("runtime", "precision", "revision", "top_k")},
        "is_reference": is_reference,
        "text_sha": m.get("text_sha"),
        "tokens": s["tokens"],
        "documents": s["documents"],
        "kld_topk" if topk else "kld": s["kld"],
        "top1": s["top1"],
    }
    if not topk:
        out.update(delta_p=s["delta_p"], ppl_ratio=s["ppl_ratio"])
    return out


def _unbuilt_reference(engine, cfg: dict) -> dict:
    """The reference cell's section when its distributions were not computed: its figures are
    zero by definition, and it says that nothing was run (no cache to check against)."""
    return {
        "reference": {
            "runtime": engine.runtime,
            "precision": engine.precision,
            "revision": engine.info.get("revision"),
            "top_k": TOP_K,
        },
        "is_reference": True,
        "text_sha": text_sha(documents()),
        "tokens": 0,
        "documents": 0,
        "kld": {"mean": 0.0, "ci_lo": 0.0, "ci_hi": 0.0},
        "top1": {"mean": 1.0, "ci_lo": 1.0, "ci_hi": 1.0},
        "delta_p": {"median": 0.0, "p90": 0.0, "p99": 0.0},
        "ppl_ratio": {"mean": 1.0, "ci_lo": 1.0, "ci_hi": 1.0},
        "checked_tokens": "none: no cached reference, and no other precision of this model in this run "
        "compares with it (the first cell that does computes it)",
        "seconds": 0.0,
    }


def for_cell(engine, cfg: dict, reference: Reference | dict | None, reference_s: float = 0.0, progress=None) -> dict:
    """record["fidelity"] for a loaded cell. The reference cell builds (or reuses) the cache from
    its own engine; any other cell compares against `reference` (ensure_reference's result, or
    {"error": ...} when that failed)."""
    tokens = int(cfg.get("fidelity_tokens") or DEFAULT_TOKENS)
    t0 = time.perf_counter()
    try:
        if isinstance(reference, dict):  # computing the reference failed: say why, once
            return reference
        if is_reference(cfg) and engine.runtime == REFERENCE_RUNTIME:
            cached, spent, per_token = reference_for(
                engine,
                tokens,
                cfg.get("cache_dir"),
                model=cfg["model"],
                progress=progress,
                build=cfg.get("reference_wanted", True),
            )
            if cached is None:  # nothing cached, and no cell of this sweep compares with it
                return _unbuilt_reference(engine, cfg)
            checked = cached
            if per_token is None:
                # The cache came from an earlier run: its distributions are reused as they are,
                # and re-running its first document checks this engine still gives them (a
                # changed kernel or nondeterminism shows on every token), instead of the whole
                # text again: the reference cell's figure is zero by definition, and on the
                # default run (`--precisions fp32`) this pass was most of the fidelity stage.
                checked = head(cached, 1)
                per_token, _ = run_pass(engine, checked.docs, checked, progress=progress)
            out = _record(checked, per_token, is_reference=True)
            if checked is not cached:
                out["checked_tokens"] = f"{checked.tokens} of the cached {cached.tokens} (the first document)"
            out["seconds"] = round(time.perf_counter() - t0, 2)
            return out
        if reference is None:
            return {"error": "no reference distribution for this model"}
        # a served model gives top-k log-probabilities only: the top-k form, its own metric
        how = measure_topk if getattr(engine, "topk_fidelity", False) else measure
        out = how(engine, reference, progress=progress)
        if "error" in out:
            return out
        out["seconds"] = round(out["seconds"] + reference_s, 2)
        out["reference_s"] = round(reference_s, 2)
        return out
    except Exception as e:  # noqa: BLE001 - fidelity must never cost the cell its other figures
        msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return {"error": f"{type(e).__name__}: {msg}"[:300]}


def short(fid: Fidelity | None) -> str:
    """`KLD 0.023 ±0.002 · top-1 91.6%` for tables ("reference" for the reference row)."""
    if fid is None:
        return ""
    if fid.error:
        return f"n/a ({fid.error[:40]})"
    if fid.is_reference:
        return "reference"
    topk = fid.topk_label()
    k, t = (fid.kld_topk if topk else fid.kld), fid.top1
    if k is None or t is None:
        return ""
    half = (k.ci_hi - k.ci_lo) / 2
    # as many decimals as the CI's first significant digit: the figure is shown as precise as it is
    d = 3 if half <= 0 else min(6, max(1, -math.floor(math.log10(half))))
    # a top-k KL reads low by a cell-dependent factor: its label says so wherever it is shown
    name = f"{topk} KLD" if topk else "KLD"
    return f"{name} {k.mean:.{d}f} ±{half:.{d}f} · top-1 {100 * t.mean:.1f}%"


def flat(fid: Fidelity | None) -> dict:
    """Machine-readable columns for CSV: every figure and CI bound in its own column."""
    fid = fid or Fidelity()
    out = {
        "fidelity_reference": (fid.reference or {}).get("precision"),
        "fidelity_is_reference": fid.is_reference,
    }
    for k in ("kld", "top1", "ppl_ratio"):
        figure = getattr(fid, k) or Interval()
        for part in ("mean", "ci_lo", "ci_hi"):
            out[f"{k}_{part}" if part != "mean" else k] = getattr(figure, part)
    for part in ("median", "p90", "p99"):
        out[f"delta_p_{part}"] = (fid.delta_p or {}).get(part)
    # the top-k form in its own columns (never in kld: a different metric)
    figure = fid.kld_topk or Interval()
    for part in ("mean", "ci_lo", "ci_hi"):
        out["kld_topk" if part == "mean" else f"kld_topk_{part}"] = getattr(figure, part)
    out["kld_topk_k"] = (fid.topk or {}).get("k") if fid.kld_topk is not None else None
    out["fidelity_tokens"], out["fidelity_s"], out["fidelity_error"] = fid.tokens, fid.seconds, fid.error
    return out


def plot(records: list[Record], path) -> Path | None:
    """<path stem>-fidelity.png: mean KLD with its 95 % CI per precision, one group per model,
    log scale (int8 and int4 differ by 10x); the reference is the line it is measured against.
    None when no record has fidelity figures."""
    pts = [
        r
        for r in records
        if r.status == "ok" and r.fidelity is not None and r.fidelity.kld is not None and not r.fidelity.is_reference
    ]
    if not pts:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r.config.model for r in pts))
    fig, ax = plt.subplots(figsize=(max(7.5, 1.6 + 1.1 * len(pts)), 4.8))
    x, ticks = 0, []
    for i, m in enumerate(models):
        mine = sorted((r for r in pts if r.config.model == m), key=lambda r: r.fidelity.kld.mean)
        for r in mine:
            k = r.fidelity.kld
            lo, hi = max(k.mean - k.ci_lo, 0), max(k.ci_hi - k.mean, 0)
            ax.errorbar(
                [x],
                [max(k.mean, 1e-6)],
                yerr=[[lo], [hi]],
                fmt="o",
                capsize=4,
                ms=7,
                color=plt.cm.tab10(i % 10),
                label=m if r is mine[0] else None,
            )
            ax.annotate(
                f"{k.mean:.3g}\ntop-1 {100 * r.fidelity.top1.mean:.0f}%",
                (x, k.mean),
                textcoords="offset points",
                xytext=(9, -4),
                fontsize=7,
            )
            ticks.append((x, f"{r.config.runtime or ''}\n{r.config.precision}"))
            x += 1
        x += 0.6
    ref = sorted({(r.fidelity.reference or {}).get("precision") or "?" for r in pts})
    ax.set_yscale("log")
    los = [max(r.fidelity.kld.ci_lo, 1e-6) for r in pts]
    his = [max(r.fidelity.kld.ci_hi, 1e-6) for r in pts]
    ax.set_ylim(min(los) / 3, max(his) * 3)  # at least a decade visible, so distances read as ratios
    ax.set_xticks([t[0] for t in ticks], [t[1] for t in ticks], fontsize=8)
    ax.set_ylabel(f"mean KL(reference || cell), nats/token (log)\nreference: transformers {'/'.join(ref)}")
    ax.set_title("Fidelity: KLD from the reference\n(95% CI, bootstrap over documents)", fontsize=10)
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=8)
    ax.margins(x=0.15)
    fig.tight_layout()
    path = Path(path)
    out = path.with_name(f"{path.stem}-fidelity.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
