"""One self-contained HTML page for a results store, and one for a `compare` result.

People compare models and precisions by sharing a page, not a terminal table. The page is a
single file that opens offline in any browser: inline CSS, a few lines of inline JavaScript to
sort tables, plots as inline SVG (mindbench.present.report_svg), no URL fetched from anywhere.

The comparison table is table.table_rows' rows (the same cells as the Markdown and CSV
outputs); this module only adds what a page can show beside them: sorting, colours for status,
and each figure's provenance (measured here or on another machine, published, estimated, or
measured while the machine was busy) as a cell mark with its explanation on hover.
"""

from __future__ import annotations

import html
import re
from dataclasses import fields
from pathlib import Path

from mindbench.errors import MindbenchError
from mindbench.present import report_svg
from mindbench.present.table import figure_paths, table_note, table_rows
from mindbench.store.record import Fidelity, Hardware, Interval, Record, Section

CSS = """
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--zebra:#f6f8fa;--head:#eaeef2;
 --ok:#1a7f37;--okbg:#dafbe1;--bad:#cf222e;--badbg:#ffebe9;--warn:#9a6700;--warnbg:#fff8c5;--info:#0969da}
*{box-sizing:border-box}
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 color:var(--fg);margin:0 auto;max-width:1900px;padding:20px 28px 60px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:14px 0 6px}
.sub{color:var(--muted);margin:0 0 12px}.muted{color:var(--muted)}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(330px,1fr));gap:12px}
.card{border:1px solid var(--line);border-radius:8px;padding:10px 14px;background:#fff}
.card h3{margin-top:2px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0}
dl.kv dt{color:var(--muted)}dl.kv dd{margin:0;overflow-wrap:anywhere}
.tablewrap{overflow:auto;max-height:80vh;border:1px solid var(--line);border-radius:6px}
table.data{border-collapse:separate;border-spacing:0;width:100%;font-size:12.5px}
table.data th,table.data td{padding:5px 7px;border-bottom:1px solid var(--line);vertical-align:top}
table.data thead th{position:sticky;top:0;z-index:1;background:var(--head);text-align:left;white-space:nowrap;
 cursor:pointer;user-select:none}
table.data thead th:hover{background:#dde3e9}
table.data thead th::after{content:"\\2195";color:#8c959f;padding-left:4px;font-size:11px}
table.data thead th[aria-sort=ascending]::after{content:"\\25B2";color:var(--fg)}
table.data thead th[aria-sort=descending]::after{content:"\\25BC";color:var(--fg)}
table.data tbody td{background:#fff}
table.data tbody tr:nth-child(even) td{background:var(--zebra)}
table.data tbody tr:hover td{background:#eef4ff}
table.data td{white-space:nowrap}table.data td.wrap{white-space:normal;min-width:16em;max-width:34em}
table.data tbody td:first-child{position:sticky;left:0}
table.data thead th:first-child{left:0;z-index:2}
table.data td.numwrap{white-space:normal;min-width:9.5em}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.data tbody tr.failed td,table.data tbody tr.regression td{background:var(--badbg)}
table.data tbody tr.improvement td{background:var(--okbg)}
.st{font-weight:600}.st-ok{color:var(--ok)}.st-bad{color:var(--bad)}.st-warn{color:var(--warn)}
td.est{font-style:italic;text-decoration:underline dotted var(--warn)}
td.pub{text-decoration:underline dotted var(--info)}
table.data tbody td.busy{background:var(--warnbg)}
.tag{display:inline-block;border-radius:10px;padding:0 7px;font-size:11.5px;margin:1px 3px 1px 0;white-space:nowrap;
 border:1px solid var(--line);background:#fff}
.tag.here{border-color:#aceebb;background:var(--okbg)}.tag.elsewhere{border-color:#b6e3ff;background:#ddf4ff}
.tag.est,.tag.busy{border-color:#eed888;background:var(--warnbg)}.tag.pub{border-color:#b6e3ff;background:#ddf4ff}
.tag.fault{border-color:#ffcecb;background:var(--badbg)}
.banner{border-radius:8px;padding:10px 14px;font-size:16px;font-weight:600;margin:10px 0}
.banner.bad{background:var(--badbg);color:var(--bad);border:1px solid #ffcecb}
.banner.good{background:var(--okbg);color:var(--ok);border:1px solid #aceebb}
figure{margin:12px 0 20px;border:1px solid var(--line);border-radius:8px;padding:8px}
figcaption{color:var(--muted);font-size:13px;padding:4px 6px 0}
svg.plot{width:100%;height:auto;display:block}
ul.notes{margin:6px 0;padding-left:20px}ul.notes li{margin:2px 0}
details{margin:8px 0}summary{cursor:pointer;font-weight:600}
"""

# Sort by any column: numbers (the leading figure of "48.9 ± 7.1 (n=49)") numerically, text
# alphabetically; blanks ("—") always last. A cell's data-sort overrides its text.
JS = """
document.querySelectorAll('table.sortable').forEach(function (t) {
  t.querySelectorAll('thead th').forEach(function (th, i) {
    th.tabIndex = 0; th.title = 'sort by ' + th.textContent;
    function go() { sortBy(t, i, th); }
    th.addEventListener('click', go);
    th.addEventListener('keydown', function (e) { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); go(); } });
  });
});
function cellKey(td) {
  var s = (td.dataset.sort !== undefined ? td.dataset.sort : td.textContent).trim();
  var n = parseFloat(s.replace(/^[^0-9+\\-.]+(?=[0-9])/, ''));
  return {n: /^[^A-Za-z]*[0-9]/.test(s) ? n : NaN, s: s.toLowerCase(), blank: s === '' || s === '\\u2014'};
}
function sortBy(t, i, th) {
  var dir = th.getAttribute('aria-sort') === 'ascending' ? -1 : 1;
  t.querySelectorAll('thead th').forEach(function (h) { h.removeAttribute('aria-sort'); });
  th.setAttribute('aria-sort', dir === 1 ? 'ascending' : 'descending');
  var body = t.tBodies[0], rows = Array.prototype.slice.call(body.rows);
  rows.sort(function (a, b) {
    var x = cellKey(a.cells[i]), y = cellKey(b.cells[i]);
    if (x.blank || y.blank) return x.blank - y.blank;
    if (!isNaN(x.n) && !isNaN(y.n)) return dir * (x.n - y.n);
    if (!isNaN(x.n) !== !isNaN(y.n)) return isNaN(x.n) ? 1 : -1;
    return dir * x.s.localeCompare(y.s);
  });
  rows.forEach(function (r) { body.appendChild(r); });
}
"""

SPEED_KEYS = {"decode tok/s": "decode_tok_s", "prefill tok/s": "prefill_tok_s", "TTFT ms": "ttft_ms"}
SPEED_COLUMNS = tuple(SPEED_KEYS)


def esc(x) -> str:
    return html.escape("" if x is None else str(x))


def _is_num(text: str) -> bool:
    """A figure ("49.0 ± 7.1 (n=49)", "1109 (RSS)", "26%", "0.135B"), not an id or a date."""
    return re.match(r"[+-]?(\d+\.?\d*|\.\d+)([ %B]|$)", text) is not None


def _known(x):
    return "?" if x is None else x


def _kv(pairs) -> str:
    return (
        "<dl class='kv'>" + "".join(f"<dt>{esc(k)}</dt><dd>{v}</dd>" for k, v in pairs if v not in (None, "")) + "</dl>"
    )


# --- machines, software, runs --------------------------------------------------------------------


def machines(records: list[Record]) -> tuple[dict, list]:
    """fingerprint -> label ("M1", ...), and [(label, Hardware, record count)]. M1, the
    machine with most records, is "here": the machine this page describes."""
    count: dict = {}
    hw: dict = {}
    for r in records:
        h = r.hardware
        fp = h.fingerprint
        count[fp] = count.get(fp, 0) + 1
        hw.setdefault(fp, h)
    order = sorted(count, key=lambda fp: -count[fp])  # stable: ties keep the store's order
    labels = {fp: f"M{i + 1}" for i, fp in enumerate(order)}
    return labels, [(labels[fp], hw[fp], count[fp]) for fp in order]


def measured_bandwidth(records: list[Record]) -> dict:
    """fingerprint -> the memory bandwidths its records measured (roofline.bandwidth_gb_s, GB/s)
    and how, so a machine's card shows what was measured, not a typical figure."""
    out: dict = {}
    for r in records:
        bw = r.bandwidth_gb_s
        if bw is not None and bw > 0:
            out.setdefault(r.hardware.fingerprint, []).append((float(bw), r.roofline.bandwidth_method))
    return out


def _bandwidth(h: Hardware, measured: list | None) -> str:
    """Measured: the median of the records' figures, their range and count, and how; only when
    no record measured it, the profile's figure with its source (e.g. "assumed")."""
    if measured:
        xs = sorted(x for x, _ in measured)
        med = xs[len(xs) // 2] if len(xs) % 2 else (xs[len(xs) // 2 - 1] + xs[len(xs) // 2]) / 2
        how = next((m for _, m in measured if m), None)
        spread = f" (range {xs[0]:.1f}–{xs[-1]:.1f}, n={len(xs)})" if len(xs) > 1 else " (n=1)"
        return f"{med:.1f} GB/s{esc(spread)}, measured by these records" + (
            f" <span class='muted'>({esc(how)})</span>" if how else ""
        )
    if h.bandwidth_gb_s:
        return f"{esc(h.bandwidth_gb_s)} GB/s, {esc(h.bandwidth_source)}"
    return ""


def _machine_card(label: str, h: Hardware, n: int, here: bool, measured: list | None = None) -> str:
    gpus = (
        "; ".join(
            f"{esc(g.get('name'))}, {esc(g.get('total_mb'))} MB" + (" (MIG slice)" if g.get("mig") else "")
            for g in h.gpus or []
        )
        or "none"
    )
    feats = h.cpu_features
    feats = (
        esc(" ".join(feats))
        if feats
        else "<span class='muted'>not recorded (records from before CPU features were captured: "
        "speed is never matched across machines on them)</span>"
    )
    ram = h.ram_mb
    mine = " — this report&#39;s machine" if here else ""
    return (
        f"<div class='card'><h3>{esc(label)}{mine}"
        f" <span class='muted'>({n} record{'s' if n != 1 else ''})</span></h3>"
        + _kv(
            [
                ("CPU", f"{esc(_known(h.cpu))}, {esc(_known(h.cores))} cores"),
                ("CPU features", feats),
                ("GPUs", gpus + ("" if h.extra.get("cuda_available") or not h.gpus else " (CUDA not usable)")),
                ("RAM", f"{ram / 1024:.1f} GiB ({ram} MB)" if isinstance(ram, (int, float)) else "?"),
                ("memory class", esc(h.memory_class)),
                ("fingerprint", f"<code>{esc(h.fingerprint)}</code>"),
                (
                    "speed fingerprint",
                    f"<code>{esc(h.speed_fingerprint)}</code>"
                    if h.speed_fingerprint
                    else "<span class='muted'>none (unknown CPU features)</span>",
                ),
                ("bandwidth", _bandwidth(h, measured)),
                # what the machine's detection added beyond the record's fields
                ("platform", esc(h.extra.get("platform"))),
                ("notes", "; ".join(esc(x) for x in h.extra.get("notes") or [])),
            ]
        )
        + "</div>"
    )


def _software(records: list[Record]) -> str:
    """One card: each package's version; where runs differ (a commit between runs), each value
    with the runs that used it."""
    # every package a record names (the declared ones and the rest), as the records list them
    versions = [r.software.to_json() for r in records]
    keys = list(dict.fromkeys(k for v in versions for k in v))
    if not keys:
        return "<p class='muted'>The records carry no software versions.</p>"
    pairs = []
    for k in keys:
        runs: dict = {}
        for r, v in zip(records, versions):
            runs.setdefault(v.get(k), {})[r.run_id or "?"] = None
        fmt = (lambda x: f"<code>{esc(x)}</code>") if k == "commit" else esc
        if len(runs) == 1:
            pairs.append((k, fmt(next(iter(runs)) or "unknown")))
        else:
            pairs.append(
                (
                    k,
                    "<br>".join(
                        f"{fmt(v or 'unknown')} <span class='muted'>(run {esc(', '.join(rs))})</span>"
                        for v, rs in runs.items()
                    ),
                )
            )
    return f"<div class='card'>{_kv(pairs)}</div>"


def _when(ts: str) -> str:
    return ts.replace("T", " ").replace("+00:00", " UTC")


def _runs(records: list[Record]) -> str:
    """When and how: one row per run id, with the settings its cells shared."""
    runs: dict = {}
    for r in records:
        runs.setdefault(r.run_id or "?", []).append(r)
    head = [
        "run",
        "from",
        "to",
        "cells",
        "models",
        "runtimes",
        "precisions",
        "suites",
        "limit",
        "repeats",
        "prompt/new tokens",
        "threads",
        "batch",
        "seconds",
    ]
    rows = []
    for rid, rs in runs.items():
        cfg = [r.config for r in rs]
        ts = sorted(str(r.timestamp or "") for r in rs)

        def vals(key, c=cfg):
            return ", ".join(dict.fromkeys(str(getattr(x, key)) for x in c if getattr(x, key) is not None)) or "—"

        suites = ", ".join(dict.fromkeys(s for x in cfg for s in x.suites or [])) or "none (speed only)"
        limits = {x.limit for x in cfg}
        dur = sum(r.duration_s or 0 for r in rs)
        rows.append(
            [
                rid,
                _when(ts[0]),
                _when(ts[-1]),
                str(len(rs)),
                vals("model"),
                vals("runtime"),
                vals("precision"),
                suites,
                "all tasks" if limits == {None} else ", ".join(str(x) for x in limits),
                vals("repeats"),
                " / ".join((vals("prompt_tokens"), vals("new_tokens"))),
                vals("threads"),
                vals("batch_size"),
                f"{dur:.0f}" if dur else "—",
            ]
        )
    return _table(head, rows, "runs")


# --- provenance --------------------------------------------------------------------------------------


def _says(figure, kind: str) -> bool:
    """Does a figure (a section such as a speed Figure or a suite's Quality, or a plain dict)
    mark itself as `kind`: a flag of that name, or a "source" naming it?"""
    if isinstance(figure, Section):
        declared = {f.name for f in fields(figure)}

        def get(k):
            return getattr(figure, k) if k in declared else figure.extra.get(k)

    elif isinstance(figure, dict):
        get = figure.get
    else:
        return False
    return get(kind) is True or str(get("source") or "").startswith(kind)


def marked(rec: Record, kind: str) -> set:
    """Dotted paths a record marks as `kind` ("estimated" or "published"): a top-level list, or a
    flag (or a "source" naming it) inside the figure itself, the convention report.py reads."""
    listed = rec.estimated if kind == "estimated" else rec.extra.get(kind)
    marks = set(listed) if isinstance(listed, (list, tuple)) else set()
    for name in ("speed", "memory", "roofline", "load"):
        section = getattr(rec, name)
        figures = [(f.name, getattr(section, f.name)) for f in fields(section) if f.name != "extra"]
        marks |= {f"{name}.{k}" for k, v in figures + list(section.extra.items()) if _says(v, kind)}
    marks |= {f"quality.{s}" for s, q in rec.quality.items() if _says(q, kind)}
    return marks


def provenance(rec: Record, labels: dict) -> tuple[str, dict]:
    """(the row's provenance tags as HTML, {column: (css class, explanation)})."""
    paths = figure_paths(rec)
    column_of = {p: c for c, p in paths.items()}
    est, pub = marked(rec, "estimated") | rec.marks(), marked(rec, "published")
    fp = rec.hardware.fingerprint
    here = labels.get(fp) == "M1"
    tags = []
    if rec.status == "ok":
        tags.append(
            "<span class='tag here'>measured here</span>"
            if here
            else f"<span class='tag elsewhere'>measured elsewhere ({esc(labels.get(fp, '?'))})</span>"
        )
    cells: dict = {}
    for path in sorted(est):
        col = column_of.get(path, path)
        tags.append(f"<span class='tag est'>estimated: {esc(col)}</span>")
        cells[col] = ("est", "estimated, not measured")
    for path in sorted(pub):
        col = column_of.get(path, path)
        tags.append(f"<span class='tag pub'>published: {esc(col)}</span>")
        cells[col] = ("pub", "published figure (model card or paper), not measured by mindbench")
    verdict = rec.speed.verdict
    if verdict in report_svg.SLOW:
        tags.append(f"<span class='tag busy'>speed {esc(verdict)}</span>")
        for col in SPEED_COLUMNS:
            cells.setdefault(
                col, ("busy", f"measured while the machine was {verdict}: recommend and compare do not use it")
            )
    if rec.config.fault:
        tags.append(f"<span class='tag fault'>fault injected: {esc(rec.config.fault)}</span>")
    if rec.weights == "random":
        tags.append("<span class='tag'>random weights: speed and memory only</span>")
    return "".join(tags), cells


# --- tables ------------------------------------------------------------------------------------------


def _table(head: list, rows: list, tid: str, row_classes=None, cell_attrs=None) -> str:
    """A sortable table. rows: lists of cell HTML (callers escape text); a cell whose text starts
    with a number is right-aligned unless its attributes set a class of their own."""
    out = [f"<div class='tablewrap'><table class='data sortable' id='{tid}'><thead><tr>"]
    out += [f"<th scope='col'>{esc(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for i, row in enumerate(rows):
        cls = (row_classes or {}).get(i)
        out.append(f"<tr class='{cls}'>" if cls else "<tr>")
        for j, cell in enumerate(row):
            attrs = (cell_attrs or {}).get((i, j), "")
            text = html.unescape(re.sub(r"<[^>]+>", "", str(cell)))
            if "class=" in attrs:
                extra = " wrap'" if len(text) > 40 else "'"
                attrs = re.sub(r"class='([^']*)'", lambda m: f"class='{m.group(1)}{extra}", attrs, count=1)
                kind = ""
            else:
                # Long figures ("49.0 ± 7.1 (n=49) pass@1 [3 empty]") may wrap after the figure, so a
                # table with four suites still fits a laptop screen without scrolling sideways.
                kind = (
                    " class='num" + (" numwrap'" if len(text) > 14 and " (" in text else "'")
                    if _is_num(text)
                    else " class='wrap'"
                    if len(text) > 40
                    else ""
                )
            out.append(f"<td{kind}{attrs}>{cell}</td>")
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def comparison_table(records: list[Record], labels: dict, tid: str = "results") -> str:
    """table.table_rows' rows (the Markdown/CSV table's cells), plus a provenance column."""
    rows = table_rows(records)
    if not rows:
        return "<p class='muted'>(no records)</p>"
    head = list(rows[0]) + ["provenance"]
    body, classes, attrs = [], {}, {}
    for i, (rec, row) in enumerate(zip(records, rows)):
        tags, cells = provenance(rec, labels)
        body.append([esc(row.get(h, "—")) for h in head[:-1]] + [tags or "—"])
        if rec.status != "ok":
            classes[i] = "failed"
        for j, h in enumerate(head[:-1]):
            a = ""
            n = rec.speed.figure(SPEED_KEYS[h]).n if h in SPEED_COLUMNS else None
            if h == "status":
                st = rec.status or "?"
                kind = "st-ok" if st == "ok" else "st-warn" if st == "skipped" else "st-bad"
                a = f" class='st {kind}'" + (f" title='{esc(rec.error)}'" if rec.error else "")
            elif h in cells:
                kind, why = cells[h]
                a = f" class='{'num ' if _is_num(row[h]) else ''}{kind}' title='{esc(why)}'"
            elif n:  # the spread's sample size, on hover
                a = f" title='mean ± std over {esc(n)} timed repeats'"
            if a:
                attrs[(i, j)] = a
    return _table(head, body, tid, classes, attrs)


def _notes(records: list[Record], labels: dict) -> str:
    items = [esc(x) for x in re.split(r"(?<=\.)\s+(?=[A-Z\[(])", table_note(records))]
    items.append("Click any column header to sort by it (again to reverse); blanks sort last.")
    legend = [
        ("here", "measured here", "on this report's machine (M1)"),
        ("elsewhere", "measured elsewhere", "on another machine of the store (M2, ...)"),
        ("pub", "published", "from a model card or paper, not measured by mindbench"),
        ("est", "estimated", "by the estimator, not measured"),
        ("busy", "speed contended/noisy", "measured while the machine was busy (never used as evidence)"),
    ]
    used = "".join(provenance(r, labels)[0] for r in records)
    items.append(
        "Provenance: "
        + "; ".join(f"<span class='tag {k}'>{t}</span> {why}" for k, t, why in legend if f"tag {k}'" in used)
        + ". Marked cells explain themselves on hover."
    )
    failed = [r for r in records if r.status != "ok"]
    out = "<ul class='notes'>" + "".join(f"<li>{x}</li>" for x in items) + "</ul>"
    if failed:
        out += (
            "<h3>Failed cells</h3><ul class='notes'>"
            + "".join(
                f"<li><b>{esc(r.config.model)} / {esc(r.config.runtime)} / {esc(r.config.precision)}</b>: "
                f"<span class='st st-bad'>{esc(r.status)}</span> — {esc(r.error or 'no message')}</li>"
                for r in failed
            )
            + "</ul>"
        )
    return out


def _ci(d: Interval | None, scale=1.0, digits=4) -> str:
    if d is None or d.mean is None:
        return "—"
    lo, hi = d.ci_lo, d.ci_hi
    return f"{d.mean * scale:.{digits}f}" + (
        f" [{lo * scale:.{digits}f}, {hi * scale:.{digits}f}]" if lo is not None and hi is not None else ""
    )


def fidelity_table(records: list[Record]) -> str:
    rows, classes = [], {}
    for r in records:
        f: Fidelity | None = r.fidelity
        if f is None:
            continue
        c = r.config
        if f.error is not None:
            classes[len(rows)] = "failed"
            rows.append(
                [
                    esc(c.model),
                    esc(c.runtime),
                    esc(c.precision),
                    "—",
                    f"<span class='st st-bad'>not measured</span>: {esc(f.error)}",
                ]
                + ["—"] * 5
            )
            continue
        ref = f.reference or {}
        dp = f.delta_p or {}
        rows.append(
            [
                esc(c.model),
                esc(c.runtime),
                esc(c.precision),
                esc(f"{ref.get('runtime')} {ref.get('precision')}") + (" (itself)" if f.is_reference else ""),
                # a served cell's KL on the top-k support is its own metric: labelled in its cell
                esc(f"{f.topk_label()} (support only): {_ci(f.kld_topk)}" if f.topk_label() else _ci(f.kld)),
                esc(_ci(f.top1, 100, 1)),
                esc(" / ".join("—" if dp.get(k) is None else f"{100 * dp[k]:.2f}" for k in ("median", "p90", "p99"))),
                esc(_ci(f.ppl_ratio, digits=3)),
                esc(f.tokens),
                esc(f.documents),
            ]
        )
    if not rows:
        return ""
    head = [
        "model",
        "runtime",
        "precision",
        "reference",
        "KLD mean [95% CI] (top-k: on the served top-k only, reads low)",
        "top-1 agree % [95% CI]",
        "Δp median / p90 / p99 (pts)",
        "PPL ratio [95% CI]",
        "tokens",
        "documents",
    ]
    return _table(head, rows, "fidelity", classes)


# --- recommendation ------------------------------------------------------------------------------


def profile_of(h: Hardware):
    """The HardwareProfile a record describes (its fingerprint kept, so its runs count as "here")."""
    from mindbench.models.hardware import GPU, HardwareProfile

    declared = {f.name for f in fields(Hardware)}
    names = {f.name for f in fields(HardwareProfile)} - {"gpus", "identity"}
    # a profile's own fields the record keeps beyond its declared ones (cuda_available, notes, ...)
    given = {k: getattr(h, k) if k in declared else h.extra.get(k) for k in names}
    gnames = {f.name for f in fields(GPU)}
    gpus = [GPU(**{k: g[k] for k in gnames if k in g}) for g in h.gpus or []]
    return HardwareProfile(**{k: v for k, v in given.items() if v is not None}, gpus=gpus, identity=h.fingerprint)


def _score(c) -> str:
    q = c.quality or {}
    if q.get("score") is None:
        return "not measured"
    return f"{q.get('metric') or 'score'} {q['score']:.1f} ± {q.get('stderr') or 0:.1f}"


def recommendations(records: list[Record], hw: Hardware) -> str:
    from mindbench.decide import recommend as rmod

    usable = [r for r in records if not r.config.fault]  # faults say nothing of a model
    try:
        prof = profile_of(hw)
    except (TypeError, KeyError) as e:
        return f"<p class='muted'>No recommendation: the records' hardware is incomplete ({esc(e)}).</p>"
    out, without = [], []
    for task in rmod.TASKS:
        try:
            rec = rmod.recommend(prof, usable, task)
        except MindbenchError as e:
            without.append(f"{task} ({e.message})")
            continue
        if rec.basis != "measured" or rec.chosen is None:
            without.append(task)
            continue
        c = rec.chosen
        runners = ", ".join(esc(o.label()) + f" ({esc(_score(o))})" for o in rec.runners_up) or "none"
        out.append(
            f"<div class='card'><h3>{esc(task)}: {esc(c.label())}</h3><ul class='notes'>"
            + "".join(f"<li>{esc(w)}</li>" for w in rec.why)
            + f"</ul><p class='muted'>Runners-up: {runners}</p></div>"
        )
    text = (
        "<p class='sub'>What <code>mindbench recommend --results STORE --task TASK</code> answers for M1 "
        "from this store's measured scores (estimates for configurations never measured are left to "
        "<code>mindbench recommend</code> itself).</p>"
    )
    if out:
        text += "<div class='cards'>" + "".join(out) + "</div>"
    if without:
        text += (
            "<p class='muted'>No measured recommendation for: "
            + esc("; ".join(without))
            + ". The store has no successful run scored on that task's full suite on M1 or on similar "
            "hardware (a subset such as <code>code:easy</code> is not the task's score).</p>"
        )
    return text


# --- pages ---------------------------------------------------------------------------------------


def _figure(svg_why: tuple, fid: str, caption: str) -> str:
    svg, why = svg_why
    if svg is None:
        return (
            f"<figure id='{fid}' class='empty'><figcaption>{esc(caption)}: not drawn, {esc(why)}.</figcaption></figure>"
        )
    svg = svg.replace('role="img"', f'role="img" aria-label="{esc(caption)}"', 1)  # read out by screen readers
    return f"<figure id='{fid}'>{svg}<figcaption>{esc(caption)}</figcaption></figure>"


def _doc(title: str, body: str) -> str:
    return (
        f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{esc(title)}</title><style>{CSS}</style></head>\n<body>\n{body}\n"
        f"<script>{JS}</script>\n</body></html>\n"
    )


def _store_header(records: list[Record], labels: dict, ms: list) -> str:
    ts = sorted(str(r.timestamp) for r in records if r.timestamp)
    when = f"{_when(ts[0])} to {_when(ts[-1])}" if ts else "unknown"
    bw = measured_bandwidth(records)
    by_label = {lab: fp for fp, lab in labels.items()}
    return (
        "<h2>Machine</h2><div class='cards'>"
        + "".join(_machine_card(lab, h, n, lab == "M1", bw.get(by_label.get(lab))) for lab, h, n in ms)
        + "</div>"
        + "<h2>Software</h2>"
        + _software(records)
        + f"<h2>Runs</h2><p class='sub'>{len(records)} record(s), made {esc(when)}; the settings each run "
        "shared (speed is comparable only at the same prompt/new tokens and threads):</p>" + _runs(records)
    )


def page(records: list[Record], title: str = "mindbench report", serving: list[Record] = ()) -> str:
    """The results page: header, comparison table, plots, fidelity, recommendation; then
    serve-bench's runs (`serving`), when the store holds any."""
    if not records and serving:  # a store of serve-bench runs only
        return _doc(title, f"<h1>{esc(title)}</h1>" + serving_section(serving))
    labels, ms = machines(records)
    ok = sum(r.status == "ok" for r in records)
    body = [
        f"<h1>{esc(title)}</h1><p class='sub'>{len(records)} cell(s), {ok} ok, {len(records) - ok} failed; "
        f"{len(ms)} machine(s). Every figure was measured by mindbench unless marked otherwise.</p>"
    ]
    body.append(_store_header(records, labels, ms))
    body.append("<h2>Comparison table</h2>" + comparison_table(records, labels) + _notes(records, labels))
    body.append("<h2>Plots</h2>")
    body.append(
        _figure(
            report_svg.quality_memory(records),
            "plot-quality",
            "Left: quality against peak memory, one point per model × runtime × precision, ± standard "
            "error; dashed: the Pareto front (nothing else has less memory and more quality). Right: "
            "quality by precision per model, change against its widest precision.",
        )
    )
    fid = report_svg.fidelity(records)
    if fid[0] is not None or any(r.fidelity is not None for r in records):
        body.append(
            _figure(
                fid,
                "plot-fidelity",
                "Fidelity: how far each precision's next-token distribution is "
                "from the reference's, with 95% confidence intervals.",
            )
        )
    body.append(
        _figure(
            report_svg.speed(records, labels),
            "plot-speed",
            "Decode and prefill throughput by runtime and precision: mean ± standard deviation over "
            "the timed repeats (n); hatched bars were measured while the machine was busy.",
        )
    )
    ft = fidelity_table(records)
    if ft:
        body.append(
            "<h2>Fidelity</h2><p class='sub'>Against the reference's next-token distributions on the "
            "same text: KL divergence (nats/token), top-1 agreement, the change in the reference token's "
            "probability, perplexity ratio.</p>" + ft
        )
    body.append(paired_section(records))
    if ms:
        body.append("<h2>Recommendation</h2>" + recommendations(records, ms[0][1]))
    if serving:
        body.append(serving_section(serving))
    return _doc(title, "\n".join(body))


def serving_section(serving: list[Record]) -> str:
    """serve-bench's runs: the table (every level, latency percentiles with 95 % intervals,
    goodput) and latency against throughput, end to end and to the first token."""
    from mindbench.present.serving import rows

    rs = rows(serving)
    if not rs:
        return ""
    keys = list(dict.fromkeys(k for r in rs for k in r))
    out = [
        "<h2>Serving (mindbench serve-bench)</h2><p class='sub'>One row per load level: requests, "
        "throughput, and latency percentiles as value [95% interval] in ms ('-': too few requests for "
        "that bound); goodput counts completed requests that met the run's SLO.</p>",
        _table(keys, [[esc("" if r.get(k) is None else r.get(k)) for k in keys] for r in rs], "serving"),
    ]
    for lat, name in (("e2e_ms", "end-to-end latency"), ("ttft_ms", "time to first token")):
        out.append(
            _figure(
                report_svg.serving(serving, lat),
                f"plot-serving-{lat}",
                f"Serving: {name} p50 (left) and p99 (right) against output tokens/s, one line per model, "
                "runtime and request shape, each point a load level, with 95% intervals.",
            )
        )
    return "\n".join(out)


def paired_section(records: list[Record]) -> str:
    """Each non-reference cell against its model's widest precision on the same tasks (mindbench.decide.reference)."""
    from mindbench.decide import reference
    from mindbench.present.table import PAIRED_NOTE, PAIRED_TITLE

    prows = reference.rows(records)
    if not prows:
        return ""
    return f"<h2>{esc(PAIRED_TITLE.lstrip('# '))}</h2><p class='sub'>{esc(PAIRED_NOTE)}</p>" + _table(
        list(prows[0]), [[esc(v) for v in r.values()] for r in prows], "paired"
    )


def compare_page(result: dict, baseline: list[Record], new: list[Record], names=("BASELINE", "NEW")) -> str:
    """The compare result as a page: verdict, checks (regressions first), both stores' headers."""
    from mindbench.decide.compare import _ab_rule, _display, _fmt, _paired_rules
    from mindbench.store.results import latest

    order = {"regression": 0, "improvement": 1, "ok": 2}  # any other verdict after these
    checks = sorted(result["checks"], key=lambda c: order.get(c["verdict"], 3))  # stable within a verdict
    rows, classes, attrs = [], {}, {}
    for i, c in enumerate(checks):
        change = "—"
        if c["change"] is not None:
            change = f"{c['change']:+.1f}" + (f" ({100 * c['rel']:+.0f}%)" if c.get("rel") is not None else "")
        mark = {"regression": "REGRESSION", "improvement": "improved"}.get(c["verdict"], c["verdict"])
        rows.append(
            _display(
                c,
                [
                    esc(c["cell"]),
                    esc(c["what"]),
                    esc(_fmt(c["baseline"], c.get("base_spread"))),
                    esc(_fmt(c["new"], c.get("new_spread"))),
                    esc(change),
                    "—" if c["allowed"] is None else esc(f"±{c['allowed']:.1f}"),
                    mark,
                ],
                esc,
            )
        )
        classes[i] = c["verdict"] if c["verdict"] in ("regression", "improvement") else None
        kind = {"regression": "st-bad", "improvement": "st-ok"}.get(c["verdict"], "muted")
        attrs[(i, 6)] = f" class='st {kind}' data-sort='{order.get(c['verdict'], 3)}'"
        if c["allowed"] is not None:
            attrs[(i, 5)] = f" class='num' data-sort='{c['allowed']}'"
    n_reg, n_imp = result["regressions"], result["improvements"]
    s = result["settings"]
    title = f"mindbench compare: {n_reg} regression(s)"
    body = [
        f"<h1>mindbench compare</h1><p class='sub'>{esc(names[0])} (baseline) against {esc(names[1])} (new)</p>",
        f"<div class='banner {'bad' if n_reg else 'good'}'>{n_reg} regression(s), {n_imp} improvement(s) over "
        f"{result['compared_cells']} matched cell(s); exit status {result['exit_code']}</div>",
        "<h2>Checks (regressions first)</h2>",
        _table(
            ["cell", "figure", "baseline", "new", "change", "allowed", "verdict"],
            rows,
            "checks",
            {k: v for k, v in classes.items() if v},
            attrs,
        ),
        "<ul class='notes'>"
        + (
            # an A/B speed run states its own rule (and what it promises), not the stores' rules
            "".join(f"<li>{esc(line.strip('[]'))}</li>" for line in _ab_rule(result).splitlines())
            if s.get("ab") and s.get("rule") in ("hl", "paired")
            else f"<li>quality: a drop counts when it exceeds max({s['quality_tol']} points, "
            f"{s['z']:g}·√(se₁²+se₂²)); speed: a change beyond max({s['speed_tol']:.0%}, "
            f"{s['z']:g}·√(std₁²+std₂²)) (gated: {'yes' if s['speed'] else 'no'}); memory: a rise beyond "
            f"{s['memory_tol']:.0%}; rows match on hardware = {esc(s['hardware'])}.</li>"
            f"<li>{esc(_paired_rules(result).strip('[]'))}</li>"
        )
        + "".join(
            f"<li>unmatched in {esc(side)}: {esc('; '.join(items))}</li>"
            for side, items in result["unmatched"].items()
            if items
        )
        + "".join(f"<li>{esc(n)}</li>" for n in result["notes"])
        + "</ul>",
        _figure(
            report_svg.compare_changes(result),
            "plot-compare",
            "Each compared figure's change divided by what the gate allows; outside the grey band it is "
            "flagged (red: regression, green: improvement).",
        ),
    ]
    for name, side, recs in (("Baseline", names[0], baseline), ("New", names[1], new)):
        if not recs:  # an interleaved A/B run is one file of timings, no records
            continue
        recs = latest(recs)
        labels, ms = machines(recs)
        body.append(
            f"<h2>{name}: {esc(side)}</h2><details open><summary>{len(recs)} record(s): table, machine, "
            f"software, runs</summary>"
            + comparison_table(recs, labels, f"results-{name.lower()}")
            + _store_header(recs, labels, ms).replace("<h2>", "<h3>").replace("</h2>", "</h3>")
            + "</details>"
        )
    return _doc(title, "\n".join(body))


def write_compare(result: dict, baseline_path: str, new_path: str, out: str) -> None:
    """compare --html: the page, from the two files compare read."""
    from mindbench.store.results import read_all as load_records

    if result["settings"].get("rule") == "paired":  # one interleaved run's file: timings, no records
        text = compare_page(result, [], [], (baseline_path, "(the same run)"))
    else:
        text = compare_page(result, load_records([baseline_path]), load_records([new_path]), (baseline_path, new_path))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text, encoding="utf-8")
