"""Reports: the results store as a comparison table (Markdown, CSV, HTML, JSON) and plots.

The user's document had a table of models with parameters, GPU memory, speed, quality and use —
claims. Here every cell of that table comes from a result record and carries its spread: speed
as mean ± standard deviation over the repeats, quality as score ± standard error over the tasks.
A cell that failed (oom, crashed, timeout, skipped, error) is a row with its status and message,
never silently dropped. A figure a record marks as estimated is labelled "(est.)".

Records mark estimated figures either with a top-level list of dotted paths,
`"estimated": ["speed.decode_tok_s", "memory.weights_mb"]`, or with `"estimated": true` inside
the figure's own dict (e.g. `speed.decode_tok_s = {"mean": .., "std": .., "estimated": true}`).

`--format html` is one self-contained page built from these same rows (mindbench.present.report_html).

Plots: one PNG with two panels — quality against peak memory with the Pareto front marked
(one point per model x runtime x precision), and quality by precision for each model with
standard-error bars.
"""

from __future__ import annotations

import csv
import io
import json

from mindbench.errors import MindbenchError

# The one table (table.py) and the plots (plots.py): report_html and report_svg draw from those
# modules, not from this one, so the presentation modules import each other in one direction.
from mindbench.present.plots import overall_quality, pareto_front, plot  # noqa: F401
from mindbench.present.table import (  # noqa: F401
    PAIRED_NOTE,
    PAIRED_TITLE,
    _fmt,
    figure_paths,
    hardware_line,
    params_b,
    speed_mark,
    suites_of,
    table_note,
    table_rows,
    uses,
)
from mindbench.present.table import text as table_text
from mindbench.store.record import Record, num
from mindbench.store.results import latest  # noqa: F401
from mindbench.store.results import read_all as load_records  # noqa: F401


def render(records: list[Record], fmt: str) -> str:
    if fmt == "md":  # the one table renderer, as `mindbench run` prints it, under the machine
        return f"Hardware: {hardware_line(records)}\n\n{table_text(records, 'github')}\n"
    if fmt == "html":
        # One self-contained page (header, sortable table, plots, recommendation): report_html.
        from mindbench.present.report_html import page

        return page(records)
    from mindbench.decide import reference

    # each non-reference cell against its model's widest precision, per suite (mindbench.decide.reference)
    paired = reference.against_reference(records)
    if fmt == "json":
        # The records themselves, each as the store holds it (one shape for a record everywhere),
        # with its paired comparison: what scripts consume.
        return json.dumps(
            [rec.to_json() | {"paired": paired.get(i, {})} for i, rec in enumerate(records)], indent=2, default=str
        )
    if fmt == "csv":
        out = io.StringIO()
        suites = suites_of(records)
        with_fidelity = any(r.fidelity is not None for r in records)
        # CSV keeps numbers machine-readable: mean and spread in their own columns.
        flat = []
        for i, rec in enumerate(records):
            c, hw = rec.config, rec.hardware
            peak, peak_source = rec.peak
            f = {
                "model": c.model,
                "params_b": params_b(rec),
                "runtime": c.runtime,
                "precision": c.precision,
                "dtype": c.dtype,
                "device": c.device,
                "weights": rec.weights,
                "status": rec.status,
                "error": rec.error,
                "weights_mb": num(rec.memory.weights_mb),
                "peak_mb": peak,
                "peak_source": peak_source,
            }
            for name in ("decode_tok_s", "prefill_tok_s", "ttft_ms"):
                fig = rec.speed.figure(name)
                f[name], f[name + "_std"] = fig.value, fig.spread
            f |= {
                "efficiency": num(rec.roofline.efficiency),
                "load_s": num(rec.load.load_s),
                "use": uses(rec),
                "memory_class": hw.memory_class,
                "fingerprint": hw.fingerprint,
                "speed_fingerprint": hw.speed_fingerprint,
                "speed_verdict": rec.speed.verdict,
                "estimated": ";".join(sorted(rec.marks())),
            }
            if with_fidelity:
                from mindbench.suites.fidelity import flat as fidelity_columns

                f.update(fidelity_columns(rec.fidelity))
            for s in suites:
                q = rec.quality.get(s)
                f[f"{s}_score"], f[f"{s}_stderr"], f[f"{s}_n"] = (
                    (q.points, q.stderr_points, q.n) if q is not None else (None, None, None)
                )
            f.update(_paired_csv(paired.get(i, {}), suites))
            flat.append(f)
        if flat:
            w = csv.DictWriter(out, fieldnames=list(flat[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(flat)
        return out.getvalue()
    raise MindbenchError(f"unknown format {fmt!r}; use md, csv, html or json")


PAIRED_CSV = ("reference", "test", "right_to_wrong", "wrong_to_right", "diff", "p", "mde", "verdict")


def _paired_csv(by_suite: dict, suites: list[str]) -> dict:
    """The paired comparison as CSV columns: {suite}_vs_ref_{field}, and the CI as _lo/_hi."""
    out = {}
    for s in suites:
        c = by_suite.get(s) or {}
        for k in PAIRED_CSV:
            out[f"{s}_vs_ref_{k}"] = c.get(k)
        out[f"{s}_vs_ref_diff_lo"], out[f"{s}_vs_ref_diff_hi"] = c.get("ci") or [None, None]
    return out
