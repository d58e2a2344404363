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
    speed_mark,
    suites_of,
    table_note,
    table_rows,
)
from mindbench.present.table import text as table_text

# The data model lives in results.py (compare reads it from there, not from this presentation
# module); these names stay importable from here.
from mindbench.store.results import latest, peak_memory, quality_points, record_key, view  # noqa: F401
from mindbench.store.results import read_all as load_records  # noqa: F401


def render(records: list[dict], fmt: str) -> str:
    if fmt == "md":  # the one table renderer, as `mindbench run` prints it, under the machine
        return f"Hardware: {hardware_line(records)}\n\n{table_text(records, 'github')}\n"
    if fmt == "html":
        # One self-contained page (header, sortable table, plots, recommendation): report_html.
        from mindbench.present.report_html import page

        return page(records)
    from mindbench.decide import reference

    views = [view(r) for r in records]
    # each non-reference cell against its model's widest precision, per suite (mindbench.decide.reference)
    paired = reference.against_reference(records)
    if fmt == "json":
        # Raw numbers, not formatted strings: this is what scripts consume.
        return json.dumps(
            [
                {k: v[k] for k in v if k != "timestamp"} | {"timestamp": v["timestamp"]} | {"paired": paired.get(i, {})}
                for i, v in enumerate(views)
            ],
            indent=2,
        )
    if fmt == "csv":
        out = io.StringIO()
        # CSV keeps numbers machine-readable: mean and spread in their own columns.
        flat = []
        for v in views:
            f = {
                k: v[k]
                for k in (
                    "model",
                    "params_b",
                    "runtime",
                    "precision",
                    "dtype",
                    "device",
                    "weights",
                    "status",
                    "error",
                    "weights_mb",
                    "peak_mb",
                    "peak_source",
                    "decode_tok_s",
                    "decode_tok_s_std",
                    "prefill_tok_s",
                    "prefill_tok_s_std",
                    "ttft_ms",
                    "ttft_ms_std",
                    "efficiency",
                    "load_s",
                    "use",
                    "memory_class",
                    "fingerprint",
                    "speed_fingerprint",
                    "speed_verdict",
                )
            }
            f["estimated"] = ";".join(v["estimated"])
            if any(x.get("fidelity") for x in views):
                from mindbench.suites.fidelity import flat as fidelity_columns

                f.update(fidelity_columns(v.get("fidelity")))
            for s in suites_of(views):
                q = v["quality"].get(s) or {}
                f[f"{s}_score"], f[f"{s}_stderr"], f[f"{s}_n"] = q.get("score"), q.get("stderr"), q.get("n")
            f.update(_paired_csv(paired.get(len(flat), {}), suites_of(views)))
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
