"""Reports: the results store as a comparison table (Markdown, CSV, HTML, JSON) and plots.

The user's document had a table of models with parameters, GPU memory, speed, quality and use —
claims. Here every cell of that table comes from a result record and carries its spread: speed
as mean ± standard deviation over the repeats, quality as score ± standard error over the tasks.
A cell that failed (oom, crashed, timeout, skipped, error) is a row with its status and message,
never silently dropped. A figure a record marks as estimated is labelled "(est.)".

Records mark estimated figures either with a top-level list of dotted paths,
`"estimated": ["speed.decode_tok_s", "memory.weights_mb"]`, or with `"estimated": true` inside
the figure's own dict (e.g. `speed.decode_tok_s = {"mean": .., "std": .., "estimated": true}`).

`--format html` is one self-contained page built from these same rows (mindbench.report_html).

Plots: one PNG with two panels — quality against peak memory with the Pareto front marked
(one point per model x runtime x precision), and quality by precision for each model with
standard-error bars.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import click

from .errors import MindbenchError
# The data model lives in results.py (compare reads it from there, not from this presentation
# module); these names stay importable from here.
from .results import latest, peak_memory, quality_points, record_key, view  # noqa: F401
from .results import read_all as load_records  # noqa: F401


# --- the table -------------------------------------------------------------------------------

def _fmt(x, std=None, digits=1, est=False) -> str:
    if x is None:
        return "—"
    s = f"{x:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")
    return s + (" (est.)" if est else "")


# Most capable first: the one feature that names a CPU's kernel class in one word.
ISA_RANK = ("amx_tile", "avx512f", "avx_vnni", "avx2", "avx", "sve2", "sve", "i8mm", "asimddp", "asimd", "neon")


def top_feature(features) -> str:
    if features is None:
        return "CPU features unknown"
    return next((f for f in ISA_RANK if f in features), "no AVX/NEON")


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
        model = v["model"] + (" (random weights)" if v["weights"] == "random" else "") + (
            f" (fault injected: {v['fault']})" if v.get("fault") else "")
        status = v["status"] or "?"
        if failed and v["error"]:
            msg = " ".join(str(v["error"]).split())
            status += ": " + (msg if len(msg) <= 90 else msg[:87] + "...")
        row = {
            "model": model,
            "params": f"{v['params_b']:g}B" if v["params_b"] else "—",
            "runtime": v["runtime"], "precision": v["precision"], "device": v["device"],
            "status": status,
            "weights MB": _fmt(v["weights_mb"], digits=0, est="memory.weights_mb" in est),
            "peak MB": _fmt(v["peak_mb"], digits=0,
                            est=f"memory.{v['peak_source']}" in est) + (
                " (RSS)" if v["peak_source"] == "peak_rss_mb" and v["peak_mb"] is not None else ""),
            "decode tok/s": _fmt(v["decode_tok_s"], v["decode_tok_s_std"], est="speed.decode_tok_s" in est)
            + speed_mark(v["speed_verdict"]),
            "prefill tok/s": _fmt(v["prefill_tok_s"], v["prefill_tok_s_std"], digits=0,
                                  est="speed.prefill_tok_s" in est),
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
            from .fidelity import short
            row["fidelity (KLD vs reference)"] = short(v.get("fidelity")) or "—"
        row["use"] = v["use"] or "—"
        rows.append(row)
    return rows


def table_note(views: list[dict]) -> str:
    """What the table's notation means (shown under the table in every format that has one)."""
    note = ("Speed: mean ± std over repeats. Quality: score 0-100 ± standard error (n tasks). "
            "Peak MB (RSS) is the worker's peak resident memory on CPU.")
    if any(v["estimated"] for v in views):
        note += " (est.) = estimated, not measured."
    if any(v.get("speed_verdict") in ("noisy", "contended") for v in views):
        note += (" ~ = noisy speed (95% CI wider than the target), (contended) = other processes took the "
                 "CPU/GPU while it was timed: neither is used by recommend or compare.")
    if any(v["efficiency"] is not None for v in views):
        # records before issue 17 divided by a copy (read + write) bandwidth: say which it is
        old = any(v["efficiency"] is not None and not v.get("bandwidth_method") for v in views)
        note += (" Roofline = decode tok/s x weight bytes per token / measured "
                 + ("copy bandwidth (read + write; records made before the read-bandwidth roofline)."
                    if old else "read bandwidth."))
    if any(q["empty"] for v in views for q in v["quality"].values()):
        note += (" [k empty] = k outputs ran to the token limit and decoded to nothing: broken numerics "
                 "(e.g. fp16 overflow; try bf16 or fp32), not a weak model.")
    return note


def figure_paths(v: dict) -> dict:
    """Column of table_rows -> the record figure (dotted path) it shows, so a page can mark each
    cell's provenance (estimated, published, contended) beside the same text."""
    paths = {"weights MB": "memory.weights_mb", "peak MB": f"memory.{v['peak_source']}",
             "decode tok/s": "speed.decode_tok_s", "prefill tok/s": "speed.prefill_tok_s",
             "TTFT ms": "speed.ttft_ms", "load s": "load.load_s", "roofline": "roofline.efficiency"}
    paths.update({s: f"quality.{s}" for s in v["quality"]})
    return paths


def hardware_line(records: list[dict]) -> str:
    seen = {}
    for r in records:
        hw = r.get("hardware") or {}
        gpus = ", ".join(f"{g.get('name')} {g.get('total_mb')} MB" for g in hw.get("gpus") or []) or "no GPU"
        line = f"{hw.get('cpu', '?')}, {hw.get('cores', '?')} cores, {hw.get('ram_mb', '?')} MB RAM, {gpus}"
        # which machine the speeds belong to (issue 17): its speed fingerprint and top ISA feature
        line += (f" (speed fingerprint {hw['speed_fingerprint']}, {top_feature(hw.get('cpu_features'))})"
                 if hw.get("speed_fingerprint") else " (speed fingerprint unknown)")
        seen[line] = None
    return "; ".join(seen)


def render(records: list[dict], fmt: str) -> str:
    from . import stats

    views = [view(r) for r in records]
    # each non-reference cell against its model's widest precision, per suite (mindbench.stats)
    paired = stats.against_reference(records)
    if fmt == "json":
        # Raw numbers, not formatted strings: this is what scripts consume.
        return json.dumps([{k: v[k] for k in v if k != "timestamp"} | {"timestamp": v["timestamp"]}
                           | {"paired": paired.get(i, {})} for i, v in enumerate(views)], indent=2)
    rows = table_rows(views)
    if fmt == "csv":
        out = io.StringIO()
        # CSV keeps numbers machine-readable: mean and spread in their own columns.
        flat = []
        for v in views:
            f = {k: v[k] for k in ("model", "params_b", "runtime", "precision", "dtype", "device", "weights",
                                   "status", "error", "weights_mb", "peak_mb", "peak_source",
                                   "decode_tok_s", "decode_tok_s_std", "prefill_tok_s", "prefill_tok_s_std",
                                   "ttft_ms", "ttft_ms_std", "efficiency", "load_s", "use", "memory_class",
                                   "fingerprint", "speed_fingerprint", "speed_verdict")}
            f["estimated"] = ";".join(v["estimated"])
            if any(x.get("fidelity") for x in views):
                from .fidelity import flat as fidelity_columns
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
    from tabulate import tabulate

    note = table_note(views)
    hw = hardware_line(records)
    prows = stats.rows(records)
    if fmt == "md":
        body = tabulate(rows, headers="keys", tablefmt="github") if rows else "(no records)"
        if prows:
            body += f"\n\n{PAIRED_TITLE}\n\n" + tabulate(prows, headers="keys", tablefmt="github", disable_numparse=True) + f"\n\n{PAIRED_NOTE}"
        return f"Hardware: {hw}\n\n{body}\n\n{note}\n"
    if fmt == "html":
        # One self-contained page (header, sortable table, plots, recommendation): report_html.
        from .report_html import page
        return page(records)
    raise MindbenchError(f"unknown format {fmt!r}; use md, csv, html or json")


PAIRED_TITLE = "### Against each model's widest precision, same tasks"
PAIRED_NOTE = ("Paired when both cells kept per-task verdicts: tasks that flipped right→wrong / wrong→right, "
               "exact McNemar p, paired-bootstrap 95% CI of the score difference (points), and the minimum "
               "detectable effect at this n (alpha 0.05, power 0.8). Otherwise an unpaired two-proportion "
               "z-test. A difference inside the noise reads \"not distinguishable at n = …\", not a ranking.")
PAIRED_CSV = ("reference", "test", "right_to_wrong", "wrong_to_right", "diff", "p", "mde", "verdict")


def _paired_csv(by_suite: dict, suites: list[str]) -> dict:
    """The paired comparison as CSV columns: {suite}_vs_ref_{field}, and the CI as _lo/_hi."""
    out = {}
    for s in suites:
        c = by_suite.get(s) or {}
        for k in PAIRED_CSV:
            out[f"{s}_vs_ref_{k}"] = c.get(k)
        out[f"{s}_vs_ref_diff_lo"], out[f"{s}_vs_ref_diff_hi"] = (c.get("ci") or [None, None])
    return out


# --- plots -----------------------------------------------------------------------------------

def overall_quality(v: dict, suite: str | None):
    """(score, stderr) of one suite, or the mean over the cell's suites (independent errors)."""
    qs = [q for s, q in v["quality"].items() if (suite is None or s == suite) and q["score"] is not None]
    if not qs:
        return None, None
    score = sum(q["score"] for q in qs) / len(qs)
    ses = [q["stderr"] or 0.0 for q in qs]
    return score, math.sqrt(sum(s * s for s in ses)) / len(qs)


def pareto_front(points: list[tuple]) -> list[int]:
    """Indices of points (memory, quality) that no other point beats on both (less memory, more
    quality). Sorted by memory."""
    idx = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in idx:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def plot(records: list[dict], path: str | Path, suite: str | None = None) -> Path:
    """Two panels in one PNG: quality vs memory with the Pareto front, and quality by precision."""
    import matplotlib
    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    views = [view(r) for r in records if r.get("status") == "ok"]
    label = suite or ("mean of " + ", ".join(suites_of(views)) if len(suites_of(views)) > 1 else
                      (suites_of(views) or ["quality"])[0])
    pts = []
    for v in views:
        q, se = overall_quality(v, suite)
        if q is not None and v["peak_mb"] is not None:
            pts.append((v["peak_mb"], q, se or 0.0, v))
    if not pts:
        raise MindbenchError("nothing to plot: no successful record has both a quality score and a memory "
                             "figure; run with --suite so records carry quality")

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
    models = list(dict.fromkeys(p[3]["model"] for p in pts))
    colors = {m: plt.cm.tab10(i % 10) for i, m in enumerate(models)}
    runtimes = {p[3]["runtime"] for p in pts}
    for m in models:  # one legend entry per model; the point labels then only need the precision
        ax1.errorbar([], [], yerr=[], fmt="o", color=colors[m], label=m)
    for mem, q, se, v in pts:
        ax1.errorbar(mem, q, yerr=se, fmt="o", color=colors[v["model"]], capsize=3, ms=7, alpha=0.9)
        text = v["precision"] if len(runtimes) == 1 else f"{v['runtime']}/{v['precision']}"
        ax1.annotate(text, (mem, q), textcoords="offset points", xytext=(11, 3), fontsize=8,
                     color=colors[v["model"]])
    front = pareto_front([(p[0], p[1]) for p in pts])
    ax1.step([pts[i][0] for i in front], [pts[i][1] for i in front], where="post", color="crimson",
             lw=1.5, ls="--", label="Pareto front (less memory, more quality)")
    ax1.scatter([pts[i][0] for i in front], [pts[i][1] for i in front], s=160, facecolors="none",
                edgecolors="crimson", lw=1.5)
    ax1.set_xlabel("peak memory (MB)")
    ax1.set_ylabel(f"quality: {label} (0-100, ± stderr)")
    ax1.set_title("Quality against memory")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8, loc="best")
    ax1.margins(x=0.2, y=0.2)

    from .runtimes import precision_key
    # Panel 2: grouped bars, one group per model x runtime, one bar per precision.
    groups = list(dict.fromkeys(f"{p[3]['model']}\n{p[3]['runtime']}" for p in pts))
    precs = sorted({p[3]["precision"] for p in pts},
                   key=precision_key)
    width = 0.8 / max(len(precs), 1)
    # The reference for "change" is each group's widest precision that was measured.
    ref = {}
    for g in groups:
        mine = [p for p in pts if f"{p[3]['model']}\n{p[3]['runtime']}" == g]
        ref[g] = min(mine, key=lambda p: precision_key(p[3]["precision"]))[1]
    for j, prec in enumerate(precs):
        xs, ys, es, notes = [], [], [], []
        for i, g in enumerate(groups):
            for mem, q, se, v in pts:
                if f"{v['model']}\n{v['runtime']}" == g and v["precision"] == prec:
                    xs.append(i + (j - (len(precs) - 1) / 2) * width)
                    ys.append(q)
                    es.append(se)
                    d = q - ref[g]
                    notes.append(f"{q:.0f}" if abs(d) < 0.05 else f"{q:.0f}\n({d:+.0f})")
        ax2.bar(xs, ys, width * 0.95, yerr=es, capsize=3, label=prec,
                color=plt.cm.viridis(j / max(len(precs) - 1, 1) * 0.85), ecolor="0.3")
        for x, y, e, t in zip(xs, ys, es, notes):  # above the error bar, so they never collide
            ax2.annotate(t, (x, y + e), textcoords="offset points", xytext=(0, 3), ha="center",
                         va="bottom", fontsize=7)
    ax2.set_xticks(range(len(groups)), groups, fontsize=8)
    ax2.set_ylabel(f"quality: {label} (0-100, ± stderr)")
    ax2.set_title("Quality by precision (change vs widest precision)")
    ax2.margins(y=0.15)
    ax2.legend(title="precision", fontsize=8)
    ax2.grid(axis="y", alpha=0.3)
    fig.suptitle("mindbench: " + hardware_line(records), fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- the command -----------------------------------------------------------------------------

@click.command(name="report")
@click.argument("results_files", metavar="RESULTS...", nargs=-1, required=True, type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "html", "json"]), default="md",
              show_default=True, help="Table format.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the table to this file instead of stdout.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False),
              help="Also save a PNG: quality vs memory (Pareto front) and quality by precision; with fidelity "
                   "figures, also <name>-fidelity.png (KLD with 95% CI per precision, log scale).")
@click.option("--suite", help="Suite to plot (default: the mean of each cell's suites).")
@click.option("--all", "show_all", is_flag=True, help="Show every record, not only the newest of each cell.")
def report_command(results_files, fmt, as_json, output, plot_path, suite, show_all):
    """Tables and plots from result files.

    Every figure is measured: speed as mean ± std over repeats, quality as score ± standard
    error. Failed cells show their status and message.

    \b
    Examples:
      mindbench report results/runs.jsonl
      mindbench report results/runs.jsonl --format html -o report.html
      mindbench report results/a.jsonl results/b.jsonl --plot report.png
      mindbench report results/runs.jsonl --json
    """
    records = load_records(results_files)
    if not show_all:
        records = latest(records)
    text = render(records, "json" if as_json else fmt)
    if output:
        Path(output).write_text(text if text.endswith("\n") else text + "\n")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text.rstrip("\n"))
    if plot_path:
        from .fidelity import plot as plot_fidelity
        fp = plot_fidelity(records, plot_path)   # <plot>-fidelity.png, when records carry fidelity
        if fp:
            click.echo(f"wrote {fp}", err=True)
        p = plot(records, plot_path, suite=suite)
        click.echo(f"wrote {p}", err=True)
