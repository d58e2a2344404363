"""The estimator against the store: how wrong is it? And GGUF (llama.cpp) estimates, and the longest
context each configuration fits.

`check(records)` recomputes, for every ok record of a catalog model with an architecture config,
what mindbench.models.estimate would have said without that record, and reports per figure (weights,
peak memory, decode tok/s) and runtime the mean absolute percentage error and the worst case.
Decode speed is estimated with the record's own measured bandwidth and the median efficiency of
the *other* records of the same device kind and precision (leave-one-out; the assumed factor if
there are none), so a record never predicts itself.

GGUF sizes: bits per weight of llama.cpp's usual quantization types, as llama.cpp's
`quantize --help` lists them for a 7B Llama (whole-file averages, embeddings and output
included). KV cache: llama.cpp's default f16 cache, 2 bytes per element, with the same GQA /
sliding-window layout as mindbench.models.estimate.

Not modelled (stated in docs/catalog.md): allocator fragmentation, the suites' scoring work (its
resident memory sits in the records' peak RSS), tokenizer and Python objects beyond the fixed overhead, llama.cpp's
compute buffers beyond a fixed allowance, and any speed effect of CPU caches.
"""

from __future__ import annotations

from mindbench.measure.device import device_kind
from mindbench.models import catalog
from mindbench.models.estimate import _median, estimate, max_context
from mindbench.runtimes import DEFAULT_RUNTIME, get_runtime
from mindbench.store.record import Record

# --- the estimator's own error --------------------------------------------------------------------------


def check(records: list[Record]) -> dict:
    """Per runtime and figure: n, MAPE %, worst case; plus every row and the records skipped."""
    rows, skipped = [], []
    ok = [r for r in records if r.status == "ok"]
    contended = []
    for i, r in enumerate(ok):
        cfg = r.config
        spec = catalog.CATALOG.get(cfg.model)
        runtime = cfg.runtime or DEFAULT_RUNTIME
        label = f"{cfg.model} {runtime} {cfg.precision}"
        if spec is None or not spec.arch:
            skipped.append(f"{label}: no architecture config")
            continue
        ctx = (cfg.prompt_tokens or 0) + (cfg.new_tokens or 0) or 2048
        bw = r.bandwidth_gb_s
        kind = device_kind(cfg.device)
        others = [
            float(o.roofline.efficiency)
            for j, o in enumerate(ok)
            if j != i
            and o.roofline.efficiency
            and o.speed_usable
            and device_kind(o.config.device) == kind
            and o.config.precision == cfg.precision
            and (o.config.runtime or DEFAULT_RUNTIME) == runtime
        ]
        try:
            est = get_runtime(runtime).estimate_cell(
                spec,
                cfg.precision,
                kind,
                context=ctx,
                bandwidth_gb_s=bw or 20.0,
                efficiency=_median(others) if others else None,
                batch=int(cfg.batch_size or 1),
            )
        except (KeyError, Exception) as exc:  # an unknown precision or quant type: say so, go on
            skipped.append(f"{label}: {exc}")
            continue
        dec = r.speed.figure("decode_tok_s").value
        # a speed measured while other work held the cores is no truth to score the estimate on
        if dec and bw and not r.speed_usable:
            contended.append(label)
        measured = {
            "weights": r.memory.weights_mb,
            "peak memory": r.peak_mb,
            "decode tok/s": dec if bw and r.speed_usable else None,
        }
        for fig, m in measured.items():
            if m:
                rows.append(
                    {
                        "record": label,
                        "runtime": runtime,
                        "figure": fig,
                        "measured": round(float(m), 2),
                        "estimated": round(float(est[fig]), 2),
                        "error_pct": round(100 * (est[fig] - m) / m, 1),
                    }
                )
    summary = []
    for rt in sorted({x["runtime"] for x in rows}):
        for fig in ("weights", "peak memory", "decode tok/s"):
            sel = [x for x in rows if x["runtime"] == rt and x["figure"] == fig]
            if sel:
                worst = max(sel, key=lambda x: abs(x["error_pct"]))
                summary.append(
                    {
                        "runtime": rt,
                        "figure": fig,
                        "n": len(sel),
                        "mape_pct": round(sum(abs(x["error_pct"]) for x in sel) / len(sel), 1),
                        "worst_pct": worst["error_pct"],
                        "worst_record": worst["record"],
                    }
                )
    if contended:
        skipped.append(f"decode tok/s of {len(contended)} records measured contended or noisy (speed.verdict)")
    return {
        "summary": summary,
        "rows": rows,
        "skipped": skipped,
        "not_modelled": [
            "allocator fragmentation",
            "memory held by the suites' scoring (sandboxed program runs, tokenizer, Python objects)",
            "tokenizer/Python objects beyond the fixed runtime overhead",
            "CPU cache effects on speed",
            "llama.cpp compute buffers beyond a fixed allowance",
        ],
    }


def render_check(rep: dict) -> str:
    from tabulate import tabulate

    out = [
        tabulate(
            [
                [s["runtime"], s["figure"], s["n"], f"{s['mape_pct']:.1f}", f"{s['worst_pct']:+.1f}", s["worst_record"]]
                for s in rep["summary"]
            ],
            headers=["runtime", "figure", "n", "MAPE %", "worst %", "worst record"],
        )
        or "no measured records"
    ]
    out += [
        "",
        tabulate(
            [[x["record"], x["figure"], x["measured"], x["estimated"], f"{x['error_pct']:+.1f}"] for x in rep["rows"]],
            headers=["record", "figure", "measured", "estimated", "error %"],
        ),
    ]
    if rep["skipped"]:
        out += ["", "skipped: " + "; ".join(rep["skipped"])]
    out += ["", "not modelled: " + "; ".join(rep["not_modelled"])]
    return "\n".join(out)


# --- the longest context that fits --------------------------------------------------------------------------


def longest_contexts(hw, records: list[Record], budget_mb: float, task: str | None) -> list[dict]:
    """Per catalog configuration: the longest context (tokens) whose estimated memory fits the
    budget, capped by the architecture's trained context. Estimated, labelled so."""
    from mindbench.decide.recommend import bandwidth_for, split_records
    from mindbench.runtimes import get_runtime

    here, _, _ = split_records(hw, records)
    bw = bandwidth_for(hw, here)["gb_s"]
    rows = []
    for spec in catalog.CATALOG.values():
        if not spec.arch or (task and task not in spec.categories):
            continue
        cap = max_context(spec.arch) or 2048
        for p in get_runtime(None).precisions:  # the runtime estimate() models

            def mem(ctx):
                return estimate(spec, p, hw.device, context=ctx, bandwidth_gb_s=bw).total_mb

            if mem(1) > budget_mb:
                rows.append(
                    {
                        "model": spec.id,
                        "precision": p,
                        "longest_context": 0,
                        "limit": cap,
                        "why": "does not fit even at 1 token",
                        "source": "estimated",
                    }
                )
                continue
            lo, hi = 1, cap
            while lo < hi:  # memory grows with context: bisect
                mid = (lo + hi + 1) // 2
                lo, hi = (mid, hi) if mem(mid) <= budget_mb else (lo, mid - 1)
            rows.append(
                {
                    "model": spec.id,
                    "precision": p,
                    "longest_context": lo,
                    "limit": cap,
                    "why": "the architecture's trained context" if lo == cap else "memory budget",
                    "source": "estimated",
                }
            )
    return rows


def render_longest(rows: list[dict]) -> str:
    from tabulate import tabulate

    return tabulate(
        [[r["model"], r["precision"], r["longest_context"], r["limit"], r["why"]] for r in rows],
        headers=["model", "precision", "longest context (tokens, estimated)", "trained context", "bounded by"],
    )


# --- the user's document's GPU-memory table, checked against the estimator ----------------------------
# (moved here from estimate.py: it checks the recommender's picks, so it sits above recommend,
# which no longer imports this module; the recommender is imported inside the functions)

# (tier, sizes we plan for, params range claimed (billions), quantization claimed)
DOC_TABLE = [
    ("< 4 GB", ("3GB",), (1, 2), "4-bit"),
    ("4-8 GB", ("6GB", "8GB"), (2, 7), "4-bit"),
    ("8-16 GB", ("12GB", "16GB"), (7, 13), "8-bit"),
    ("> 16 GB", ("24GB", "80GB"), (13, None), "optional"),
]
QUANT = {"fp32": "none", "bf16": "none", "fp16": "none", "int8": "8-bit", "int4": "4-bit"}


def _best_over_tasks(hw, records, models, context):
    """The table is task-agnostic: the biggest answer over all tasks. No speed floor: the table
    is about memory (and planned cards have an assumed bandwidth)."""
    from mindbench.decide.recommend import TASKS, rank_estimated, recommend

    best = None
    for task in TASKS:  # the document's own rule: largest model, then highest precision
        c = recommend(
            hw, records, task, context=context, models=models, min_tok_s=0, instruct_chat=False, ties="precision"
        ).chosen
        if c and (best is None or rank_estimated([best, c], ties="precision")[0] is c):
            best = c
    return best


def explain_table(
    context: int = 2048, *, records: list[Record] | None = None, models: list[str] | None = None
) -> list[dict]:
    """The user's document's GPU-memory table, row by row, against what the estimator (or the
    store) picks among the document's models (the catalog's Hub models) on a GPU of that size."""
    from mindbench.models import catalog
    from mindbench.models.hardware import from_options

    models = models or list(catalog.DOCUMENT_MODELS)
    rows = []
    for tier, sizes, (lo, hi), quant in DOC_TABLE:
        for size in sizes:
            hw = from_options("laptop-cpu-16gb", gpu_memory=size)
            best = _best_over_tasks(hw, records or [], models, context)
            size_ok = best is not None and (best.params_b >= lo * 0.9) and (hi is None or best.params_b <= hi * 1.1)
            quant_ok = best is not None and (quant == "optional" or QUANT[best.precision] == quant)
            row = {
                "tier": tier,
                "gpu_memory": size,
                "gpu_mb": hw.memory_mb,
                "document": f"{_range(lo, hi)}, {'quantization ' if quant == 'optional' else ''}{quant}",
                "model": best and best.model,
                "params_b": best and best.params_b,
                "precision": best and best.precision,
                "memory_mb": best and round(best.memory_mb, 1),
                "source": best and best.memory_source,
                "agrees": bool(size_ok and quant_ok),
            }
            why = _table_why(best, lo, hi, quant, size_ok, quant_ok, models, context)
            if best is not None and not size_ok and hi is not None and best.params_b > hi:
                # Within the document's size range, what would the answer be?
                inside = [m for m in models if catalog.CATALOG[m].params_b <= hi * 1.1]
                alt = _best_over_tasks(hw, records or [], inside, context)
                if alt is not None:
                    row["within_range"] = {
                        "model": alt.model,
                        "params_b": alt.params_b,
                        "precision": alt.precision,
                        "agrees": quant == "optional" or QUANT[alt.precision] == quant,
                    }
                    why += (
                        f"; among models up to {hi}B the pick is {alt.model} ({alt.params_b}B) at "
                        f"{alt.precision}, which " + ("agrees" if row["within_range"]["agrees"] else "also differs")
                    )
            row["why"] = why
            rows.append(row)
    return rows


def _range(lo, hi):
    return f"{lo}B+" if hi is None else f"{lo}-{hi}B"


def _table_why(best, lo, hi, quant, size_ok, quant_ok, models, context) -> str:
    from mindbench.decide.recommend import PRECISION_RANK
    from mindbench.models import catalog

    if best is None:
        return "nothing in the document's list fits"
    got = f"{best.model} ({best.params_b}B) at {best.precision}, {best.memory_mb / 1024:.1f} GiB at {context} tokens"
    if size_ok and quant_ok:
        return f"agrees: {got}"
    reasons = []
    if not size_ok:
        biggest = max(catalog.CATALOG[m].params_b for m in models)
        if hi is None and biggest < lo:
            reasons.append(f"the document's list has no {lo}B+ model (largest {biggest}B)")
        elif hi is not None and best.params_b > hi:
            reasons.append(
                f"a {best.params_b}B model already fits at {best.precision}; the document's rule stops at "
                f"{hi}B, but a larger model at lower precision usually beats a smaller one at equal memory"
            )
        else:
            reasons.append(f"no {lo}B+ model fits with its KV cache and runtime overhead")
    if not quant_ok and size_ok:
        stronger = PRECISION_RANK[best.precision] > {"4-bit": 0, "8-bit": 1}.get(quant, 2)
        reasons.append(
            f"{best.model} fits at {best.precision}, so that stronger precision is kept instead of {quant}"
            if stronger
            else f"{best.model} only fits at {best.precision}"
        )
    return f"differs: {got}; " + "; ".join(reasons)


def render_table(rows: list[dict]) -> str:
    from tabulate import tabulate

    return tabulate(
        [
            [
                r["tier"],
                r["gpu_memory"],
                r["document"],
                f"{r['model']} ({r['params_b']}B) {r['precision']}" if r["model"] else "nothing fits",
                "yes" if r["agrees"] else "NO",
                r["why"].split(": ", 1)[-1] if not r["agrees"] else "",
            ]
            for r in rows
        ],
        headers=[
            "document tier",
            "planned GPU",
            "document says",
            "mindbench picks",
            "agrees",
            "where and why it differs",
        ],
        maxcolwidths=[None] * 5 + [70],
    )
