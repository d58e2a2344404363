"""The one results table, every format's cells (report's Markdown/CSV, report_html's page, the
run summary's speed marks): human-readable cells per record, its note, its figure paths."""

from __future__ import annotations

from mindbench.models.hardware import top_feature
from mindbench.store.record import Record, num


def _fmt(x, std=None, digits=1, est=False) -> str:
    if x is None:
        return "—"
    s = f"{x:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")
    return s + (" (est.)" if est else "")


def speed_mark(verdict: str | None) -> str:
    """What a speed figure's own measurement said of it: "~" noisy (CI target missed),
    "(contended)" other processes took the CPU/GPU. Such figures are never used as evidence."""
    return {"noisy": " ~", "contended": " (contended)"}.get(verdict or "", "")


def suites_of(records: list[Record]) -> list[str]:
    return list(dict.fromkeys(s for r in records for s in r.quality))


def _spec(rec: Record):
    """The model's catalog entry (its size and uses), or None for a model the catalog lacks."""
    from mindbench.models.catalog import CATALOG

    return CATALOG.get(rec.config.model)


def params_b(rec: Record) -> float | None:
    spec = _spec(rec)
    return spec.params_b if spec else None


def uses(rec: Record) -> str:
    spec = _spec(rec)
    return ", ".join(spec.categories) if spec else ""


def table_rows(records: list[Record]) -> list[dict]:
    """Human-readable cells, one row per record: the comparison table."""
    suites = suites_of(records)
    with_fidelity = any(r.fidelity is not None for r in records)
    rows = []
    for rec in records:
        c = rec.config
        est = rec.marks()
        failed = rec.status != "ok"
        model = (
            c.model
            + (" (random weights)" if rec.weights == "random" else "")
            + (f" (fault injected: {c.fault})" if c.fault else "")
        )
        status = rec.status or "?"
        if failed and rec.error:
            msg = " ".join(str(rec.error).split())
            status += ": " + (msg if len(msg) <= 90 else msg[:87] + "...")
        peak, peak_source = rec.peak
        decode, prefill, ttft = (rec.speed.figure(k) for k in ("decode_tok_s", "prefill_tok_s", "ttft_ms"))
        efficiency = num(rec.roofline.efficiency)
        size = params_b(rec)
        row = {
            "model": model,
            "params": f"{size:g}B" if size else "—",
            "runtime": c.runtime,
            "precision": c.precision,
            "device": c.device,
            "status": status,
            "weights MB": _fmt(num(rec.memory.weights_mb), digits=0, est="memory.weights_mb" in est),
            "peak MB": _fmt(peak, digits=0, est=f"memory.{peak_source}" in est)
            + (" (RSS)" if peak_source == "peak_rss_mb" and peak is not None else ""),
            "decode tok/s": _fmt(decode.value, decode.spread, est="speed.decode_tok_s" in est)
            + speed_mark(rec.speed.verdict),
            "prefill tok/s": _fmt(prefill.value, prefill.spread, digits=0, est="speed.prefill_tok_s" in est),
            "TTFT ms": _fmt(ttft.value, ttft.spread, est="speed.ttft_ms" in est),
            "load s": _fmt(num(rec.load.load_s)),
            "roofline": "—" if efficiency is None else f"{100 * efficiency:.0f}%",
        }
        for s in suites:
            q = rec.quality.get(s)
            if q is None or q.points is None:
                row[s] = "—"
            else:
                metric = f" {q.metric}" if q.metric and q.metric != "accuracy" else ""
                row[s] = _fmt(q.points, q.stderr_points, est=f"quality.{s}" in est) + f" (n={q.n}){metric}"
                if q.empty_outputs:
                    row[s] += f" [{q.empty_outputs} empty]"
        if with_fidelity:
            from mindbench.suites.fidelity import short

            row["fidelity vs " + _fidelity_ref(records)] = short(rec.fidelity) or "—"
        row["use"] = uses(rec) or "—"
        rows.append(row)
    return rows


def _fidelity_ref(records: list[Record]) -> str:
    """The reference precision(s) the fidelity column is measured against, for its header."""
    refs = sorted({str(r.fidelity.reference.get("precision")) for r in records if r.fidelity and r.fidelity.reference})
    return "/".join(refs) or "reference"


def table_note(records: list[Record]) -> str:
    """What the table's notation means (shown under the table in every format that has one)."""
    note = (
        "Speed: mean ± std over repeats. Quality: score 0-100 ± standard error (n tasks). "
        "Peak MB (RSS) is the worker's peak resident memory on CPU."
    )
    if any(r.marks() for r in records):
        note += " (est.) = estimated, not measured."
    if any(r.speed.verdict in ("noisy", "contended") for r in records):
        note += (
            " ~ = noisy speed (95% CI wider than the target), (contended) = other processes took the "
            "CPU/GPU while it was timed: neither is used by recommend or compare."
        )
    roofed = [r for r in records if num(r.roofline.efficiency) is not None]
    if roofed:
        # older records divided by a copy (read + write) bandwidth: say which it is
        old = any(not r.roofline.bandwidth_method for r in roofed)
        bws = sorted({r.bandwidth_gb_s for r in records if r.bandwidth_gb_s})
        note += (
            " Roofline = decode tok/s x weight bytes per token / measured "
            + (
                "copy bandwidth (read + write; records made before the read-bandwidth roofline)"
                if old
                else "read bandwidth"
            )
            + (f" ({bws[0]:g} GB/s)." if len(bws) == 1 else ".")
        )
    if any(r.fidelity and r.fidelity.kld for r in records):
        note += (
            " Fidelity = mean KL(reference || cell) per token, ± half the 95% CI (bootstrap over "
            "documents), and top-1 agreement with the reference, teacher-forced on suites/fidelity/."
        )
    if any(r.fidelity and r.fidelity.kld_topk for r in records):
        note += (
            " top-k KLD (a served cell): KL on the server's top-k support only, renormalized there; it "
            "reads low by a factor that depends on the cell, so it is never comparable with a full KLD."
        )
    if any(q.empty_outputs for r in records for q in r.quality.values()):
        note += (
            " [k empty] = k outputs ran to the token limit and decoded to nothing: broken numerics "
            "(e.g. fp16 overflow; try bf16 or fp32), not a weak model."
        )
    return note


def figure_paths(rec: Record) -> dict:
    """Column of table_rows -> the record figure (dotted path) it shows, so a page can mark each
    cell's provenance (estimated, published, contended) beside the same text."""
    paths = {
        "weights MB": "memory.weights_mb",
        "peak MB": f"memory.{rec.peak[1]}",
        "decode tok/s": "speed.decode_tok_s",
        "prefill tok/s": "speed.prefill_tok_s",
        "TTFT ms": "speed.ttft_ms",
        "load s": "load.load_s",
        "roofline": "roofline.efficiency",
    }
    paths.update({s: f"quality.{s}" for s in rec.quality})
    return paths


def hardware_line(records: list[Record]) -> str:
    seen = {}
    for r in records:
        hw = r.hardware
        gpus = ", ".join(f"{g.get('name')} {g.get('total_mb')} MB" for g in hw.gpus or []) or "no GPU"
        line = f"{_or_unknown(hw.cpu)}, {_or_unknown(hw.cores)} cores, {_or_unknown(hw.ram_mb)} MB RAM, {gpus}"
        # which machine the speeds belong to: its speed fingerprint and top ISA feature
        line += (
            f" (speed fingerprint {hw.speed_fingerprint}, {top_feature(hw.cpu_features)})"
            if hw.speed_fingerprint
            else " (speed fingerprint unknown)"
        )
        seen[line] = None
    return "; ".join(seen)


def _or_unknown(x) -> str:
    return "?" if x is None else str(x)


PAIRED_TITLE = "### Against each model's widest precision, same tasks"
PAIRED_NOTE = (
    "Paired when both cells kept per-task verdicts: tasks that flipped right→wrong / wrong→right, "
    "exact McNemar p, paired-bootstrap 95% CI of the score difference (points), and the minimum "
    "detectable effect at this n (alpha 0.05, power 0.8). Otherwise an unpaired two-proportion "
    'z-test. A difference inside the noise reads "not distinguishable at n = …", not a ranking.'
)


_SHARED = ("model", "params", "runtime", "device", "status", "use")  # identity columns run may say once


def text(records: list[Record], tablefmt: str = "github") -> str:
    """The one results table as text, for `mindbench run`'s summary ("simple") and `mindbench
    report` (Markdown, "github"): a row per record, the paired comparison with each model's
    widest precision, and what the notation means. Same rows as the CSV and HTML outputs."""
    from tabulate import tabulate

    from mindbench.decide import reference

    rows = table_rows(records)
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
    return f"{body}\n\n{table_note(records)}"
