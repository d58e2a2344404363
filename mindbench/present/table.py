"""The one results table, every format's cells (report's Markdown/CSV, report_html's page, the
run summary's speed marks): human-readable cells per record, its note, its figure paths."""

from __future__ import annotations

from mindbench.models.hardware import top_feature


def _fmt(x, std=None, digits=1, est=False) -> str:
    if x is None:
        return "—"
    s = f"{x:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")
    return s + (" (est.)" if est else "")


def speed_mark(verdict: str | None) -> str:
    """What a speed figure's own measurement said of it: "~" noisy (CI target missed),
    "(contended)" other processes took the CPU/GPU. Such figures are never used as evidence."""
    return {"noisy": " ~", "contended": " (contended)"}.get(verdict or "", "")


def suites_of(views: list[dict]) -> list[str]:
    return list(dict.fromkeys(s for v in views for s in v["quality"]))


def table_rows(views: list[dict]) -> list[dict]:
    """Human-readable cells, one row per record: the comparison table."""
    suites = suites_of(views)
    rows = []
    for v in views:
        est = set(v["estimated"])
        failed = v["status"] != "ok"
        model = (
            v["model"]
            + (" (random weights)" if v["weights"] == "random" else "")
            + (f" (fault injected: {v['fault']})" if v.get("fault") else "")
        )
        status = v["status"] or "?"
        if failed and v["error"]:
            msg = " ".join(str(v["error"]).split())
            status += ": " + (msg if len(msg) <= 90 else msg[:87] + "...")
        row = {
            "model": model,
            "params": f"{v['params_b']:g}B" if v["params_b"] else "—",
            "runtime": v["runtime"],
            "precision": v["precision"],
            "device": v["device"],
            "status": status,
            "weights MB": _fmt(v["weights_mb"], digits=0, est="memory.weights_mb" in est),
            "peak MB": _fmt(v["peak_mb"], digits=0, est=f"memory.{v['peak_source']}" in est)
            + (" (RSS)" if v["peak_source"] == "peak_rss_mb" and v["peak_mb"] is not None else ""),
            "decode tok/s": _fmt(v["decode_tok_s"], v["decode_tok_s_std"], est="speed.decode_tok_s" in est)
            + speed_mark(v["speed_verdict"]),
            "prefill tok/s": _fmt(
                v["prefill_tok_s"], v["prefill_tok_s_std"], digits=0, est="speed.prefill_tok_s" in est
            ),
            "TTFT ms": _fmt(v["ttft_ms"], v["ttft_ms_std"], est="speed.ttft_ms" in est),
            "load s": _fmt(v["load_s"]),
            "roofline": "—" if v["efficiency"] is None else f"{100 * v['efficiency']:.0f}%",
        }
        for s in suites:
            q = v["quality"].get(s)
            if q is None or q["score"] is None:
                row[s] = "—"
            else:
                metric = f" {q['metric']}" if q["metric"] and q["metric"] != "accuracy" else ""
                row[s] = _fmt(q["score"], q["stderr"], est=f"quality.{s}" in est) + f" (n={q['n']}){metric}"
                if q["empty"]:
                    row[s] += f" [{q['empty']} empty]"
        if any(x.get("fidelity") for x in views):
            from mindbench.suites.fidelity import short

            row["fidelity vs " + _fidelity_ref(views)] = short(v.get("fidelity")) or "—"
        row["use"] = v["use"] or "—"
        rows.append(row)
    return rows


def _fidelity_ref(views: list[dict]) -> str:
    """The reference precision(s) the fidelity column is measured against, for its header."""
    refs = sorted(
        {str(f["reference"].get("precision")) for v in views for f in [v.get("fidelity") or {}] if f.get("reference")}
    )
    return "/".join(refs) or "reference"


def table_note(views: list[dict]) -> str:
    """What the table's notation means (shown under the table in every format that has one)."""
    note = (
        "Speed: mean ± std over repeats. Quality: score 0-100 ± standard error (n tasks). "
        "Peak MB (RSS) is the worker's peak resident memory on CPU."
    )
    if any(v["estimated"] for v in views):
        note += " (est.) = estimated, not measured."
    if any(v.get("speed_verdict") in ("noisy", "contended") for v in views):
        note += (
            " ~ = noisy speed (95% CI wider than the target), (contended) = other processes took the "
            "CPU/GPU while it was timed: neither is used by recommend or compare."
        )
    if any(v["efficiency"] is not None for v in views):
        # older records divided by a copy (read + write) bandwidth: say which it is
        old = any(v["efficiency"] is not None and not v.get("bandwidth_method") for v in views)
        bws = sorted({v["bandwidth_gb_s"] for v in views if v.get("bandwidth_gb_s")})
        note += (
            " Roofline = decode tok/s x weight bytes per token / measured "
            + (
                "copy bandwidth (read + write; records made before the read-bandwidth roofline)"
                if old
                else "read bandwidth"
            )
            + (f" ({bws[0]:g} GB/s)." if len(bws) == 1 else ".")
        )
    if any((v.get("fidelity") or {}).get("kld") for v in views):
        note += (
            " Fidelity = mean KL(reference || cell) per token, ± half the 95% CI (bootstrap over "
            "documents), and top-1 agreement with the reference, teacher-forced on suites/fidelity/."
        )
    if any(q["empty"] for v in views for q in v["quality"].values()):
        note += (
            " [k empty] = k outputs ran to the token limit and decoded to nothing: broken numerics "
            "(e.g. fp16 overflow; try bf16 or fp32), not a weak model."
        )
    return note


def figure_paths(v: dict) -> dict:
    """Column of table_rows -> the record figure (dotted path) it shows, so a page can mark each
    cell's provenance (estimated, published, contended) beside the same text."""
    paths = {
        "weights MB": "memory.weights_mb",
        "peak MB": f"memory.{v['peak_source']}",
        "decode tok/s": "speed.decode_tok_s",
        "prefill tok/s": "speed.prefill_tok_s",
        "TTFT ms": "speed.ttft_ms",
        "load s": "load.load_s",
        "roofline": "roofline.efficiency",
    }
    paths.update({s: f"quality.{s}" for s in v["quality"]})
    return paths


def hardware_line(records: list[dict]) -> str:
    seen = {}
    for r in records:
        hw = r.get("hardware") or {}
        gpus = ", ".join(f"{g.get('name')} {g.get('total_mb')} MB" for g in hw.get("gpus") or []) or "no GPU"
        line = f"{hw.get('cpu', '?')}, {hw.get('cores', '?')} cores, {hw.get('ram_mb', '?')} MB RAM, {gpus}"
        # which machine the speeds belong to: its speed fingerprint and top ISA feature
        line += (
            f" (speed fingerprint {hw['speed_fingerprint']}, {top_feature(hw.get('cpu_features'))})"
            if hw.get("speed_fingerprint")
            else " (speed fingerprint unknown)"
        )
        seen[line] = None
    return "; ".join(seen)


PAIRED_TITLE = "### Against each model's widest precision, same tasks"
PAIRED_NOTE = (
    "Paired when both cells kept per-task verdicts: tasks that flipped right→wrong / wrong→right, "
    "exact McNemar p, paired-bootstrap 95% CI of the score difference (points), and the minimum "
    "detectable effect at this n (alpha 0.05, power 0.8). Otherwise an unpaired two-proportion "
    'z-test. A difference inside the noise reads "not distinguishable at n = …", not a ranking.'
)


_SHARED = ("model", "params", "runtime", "device", "status", "use")  # identity columns run may say once


def text(records: list[dict], tablefmt: str = "github") -> str:
    """The one results table as text, for `mindbench run`'s summary ("simple") and `mindbench
    report` (Markdown, "github"): a row per record, the paired comparison with each model's
    widest precision, and what the notation means. Same rows as the CSV and HTML outputs."""
    from tabulate import tabulate

    from mindbench.decide import reference
    from mindbench.store.results import view

    views = [view(r) for r in records]
    rows = table_rows(views)
    head = ""
    if tablefmt == "simple" and rows:
        # A terminal is ~120 columns: what every row shares (one model on one runtime, the usual
        # quick run) is said once above the table instead of repeated in a column per row.
        same = [k for k in _SHARED if k in rows[0] and len({str(r.get(k)) for r in rows}) == 1 and rows[0][k] != ""]
        if same:
            head = " · ".join(f"{k}: {rows[0][k]}" for k in same) + "\n"
            rows = [{k: v for k, v in r.items() if k not in same} for r in rows]
    body = head + (tabulate(rows, headers="keys", tablefmt=tablefmt) if rows else "(no records)")
    prows = reference.rows(records)
    if prows:
        body += (
            f"\n\n{PAIRED_TITLE}\n\n"
            + tabulate(prows, headers="keys", tablefmt=tablefmt, disable_numparse=True)
            + f"\n\n{PAIRED_NOTE}"
        )
    return f"{body}\n\n{table_note(views)}"
