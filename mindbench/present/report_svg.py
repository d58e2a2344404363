"""The HTML report's plots, as inline SVG strings (matplotlib draws; nothing is fetched).

Why inline SVG rather than PNG data URIs: text in the plots stays sharp at any zoom and can be
found with the browser's search, and the page stays one file. matplotlib writes glyphs as paths
(svg.fonttype "path"), so no font is needed either. Each SVG is made fit for inlining: the XML
prolog, DOCTYPE, metadata and namespace declarations go (an HTML parser puts <svg> in the SVG
namespace by itself, and their URLs would only be noise in a file that must name none), and its
ids get a per-figure prefix so two figures' clip paths and glyphs never collide in one document.

The quality-vs-memory and quality-by-precision panels are plots.plot's own (one drawing for the
PNG and the page); the fidelity, speed and compare figures are drawn here.
"""

from __future__ import annotations

import io
import re
import tempfile
from pathlib import Path

from mindbench.errors import MindbenchError
from mindbench.present.plots import plot
from mindbench.store.record import Fidelity, Interval, Record

# Fixed hash salt and no date: the same store gives the same page, so a committed page diffs cleanly.
RC = {"svg.hashsalt": "mindbench", "svg.fonttype": "path", "font.size": 9}
SLOW = ("noisy", "contended")


def inline(svg: str, prefix: str) -> str:
    """matplotlib's SVG document -> an <svg> element to paste into HTML."""
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r'\s+xmlns(:\w+)?="[^"]*"', "", svg)
    svg = svg.replace("xlink:href=", "href=")
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', svg)
    svg = svg.replace('href="#', f'href="#{prefix}-').replace("url(#", f"url(#{prefix}-")
    # Scale with the page: keep the viewBox, drop the fixed size in points.
    head, rest = svg.split(">", 1)
    head = re.sub(r'\s(width|height)="[^"]*"', "", head)
    return head + ' role="img" class="plot">' + rest


def _svg(fig, prefix: str) -> str:
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    plt.close(fig)
    return inline(buf.getvalue(), prefix)


def _mpl():
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    return matplotlib, plt


def _prec_key(p):
    from mindbench.runtimes import precision_key

    return precision_key(p)


def quality_memory(records: list[Record]) -> tuple[str | None, str | None]:
    """plots.plot's two panels (quality vs memory with the Pareto front; quality by precision)
    as SVG, or (None, why not)."""
    matplotlib, _ = _mpl()
    with tempfile.TemporaryDirectory() as d, matplotlib.rc_context(RC):
        try:
            path = plot(records, Path(d) / "q.svg")
        except MindbenchError as e:
            return None, e.message
        return inline(path.read_text(encoding="utf-8"), "fig-quality"), None


def fidelity(records: list[Record]) -> tuple[str | None, str | None]:
    """KLD and top-1 agreement against the reference, mean with its CI, by precision per model."""
    pts: list[tuple[Record, Fidelity]] = [
        (r, r.fidelity) for r in records if r.status == "ok" and r.fidelity is not None and r.fidelity.kld is not None
    ]
    if not pts:
        return None, "no record carries fidelity figures (mindbench run measures them against a reference)"
    matplotlib, plt = _mpl()
    with matplotlib.rc_context(RC):
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
        series = list(dict.fromkeys(f"{r.config.model} / {r.config.runtime}" for r, _ in pts))
        precs = sorted({r.config.precision for r, _ in pts}, key=_prec_key)
        for ax, key, scale, label in (
            (axes[0], "kld", 1.0, "KL divergence to the reference (nats/token)"),
            (axes[1], "top1", 100.0, "top-1 agreement with the reference (%)"),
        ):
            for k, s in enumerate(series):
                off = (k - (len(series) - 1) / 2) * 0.12
                for r, f in pts:
                    c = r.config
                    d = getattr(f, key) or Interval()
                    if f"{c.model} / {c.runtime}" != s or d.mean is None:
                        continue
                    x, m = precs.index(c.precision) + off, d.mean * scale
                    lo = (d.ci_lo if d.ci_lo is not None else d.mean) * scale
                    hi = (d.ci_hi if d.ci_hi is not None else d.mean) * scale
                    ref = bool(f.is_reference)
                    ax.errorbar(
                        x,
                        m,
                        yerr=[[m - lo], [hi - m]],
                        fmt="o",
                        capsize=3,
                        color=plt.cm.tab10(k % 10),
                        mfc="white" if ref else plt.cm.tab10(k % 10),
                        ms=7,
                        label=s if c.precision == precs[0] or ref else None,
                    )
                    ax.annotate(
                        "reference" if ref else f"{m:.3g}",
                        (x, hi),
                        textcoords="offset points",
                        xytext=(0, 4),
                        ha="center",
                        fontsize=7,
                    )
            ax.set_xticks(range(len(precs)), precs)
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
            ax.margins(x=0.15, y=0.2)
        h, lab = axes[0].get_legend_handles_labels()
        uniq = dict(zip(lab, h))
        axes[0].legend(uniq.values(), uniq.keys(), fontsize=8)
        ref = next((f.reference for _, f in pts if f.reference), {}) or {}
        axes[0].set_title("KLD by precision (mean, 95% CI; lower is closer)")
        axes[1].set_title("Top-1 agreement by precision (mean, 95% CI)")
        fig.suptitle(
            f"Fidelity against {ref.get('runtime', '?')} {ref.get('precision', '?')} "
            "(hollow marker: the reference itself)",
            fontsize=9,
        )
        fig.tight_layout()
        return _svg(fig, "fig-fidelity"), None


def speed(records: list[Record], machine_of: dict) -> tuple[str | None, str | None]:
    """Decode and prefill tok/s by runtime and precision, mean with the repeats' std; figures
    measured while the machine was busy are hatched and labelled."""
    vs = [
        r
        for r in records
        if r.status == "ok"
        and (r.speed.figure("decode_tok_s").value is not None or r.speed.figure("prefill_tok_s").value is not None)
    ]
    if not vs:
        return None, "no successful record has speed figures"
    multi = len(set(machine_of.values())) > 1

    def group(r: Record):  # speed is only comparable on one machine: with several, the machine is in the group
        c = r.config
        return f"{c.model}\n{c.runtime}" + (f" ({machine_of.get(r.hardware.fingerprint, '?')})" if multi else "")

    groups = list(dict.fromkeys(group(r) for r in vs))
    precs = sorted({r.config.precision for r in vs}, key=_prec_key)
    matplotlib, plt = _mpl()
    with matplotlib.rc_context(RC):
        fig, axes = plt.subplots(1, 2, figsize=(13, 4.6))
        width = 0.8 / max(len(precs), 1)
        for ax, fig_name, title in ((axes[0], "decode_tok_s", "Decode"), (axes[1], "prefill_tok_s", "Prefill")):
            for j, p in enumerate(precs):
                color = plt.cm.viridis(j / max(len(precs) - 1, 1) * 0.85)
                first = True
                for r in vs:
                    fig_ = r.speed.figure(fig_name)
                    if r.config.precision != p or fig_.value is None:
                        continue
                    x = groups.index(group(r)) + (j - (len(precs) - 1) / 2) * width
                    verdict = r.speed.verdict
                    busy = verdict in SLOW
                    ax.bar(
                        x,
                        fig_.value,
                        width * 0.95,
                        yerr=fig_.spread or 0,
                        capsize=3,
                        color=color,
                        ecolor="0.3",
                        hatch="//" if busy else None,
                        alpha=0.55 if busy else 1.0,
                        label=p if first else None,
                    )
                    first = False
                    n = fig_.n
                    ax.annotate(
                        f"{fig_.value:.0f}" + (f"\nn={n}" if n else "") + (f"\n{verdict}" if busy else ""),
                        (x, fig_.value + (fig_.spread or 0)),
                        textcoords="offset points",
                        xytext=(0, 3),
                        ha="center",
                        va="bottom",
                        fontsize=7,
                    )
            ax.set_xticks(range(len(groups)), groups, fontsize=8)
            ax.set_ylabel(f"{title.lower()} tokens/s (mean ± std over repeats)")
            ax.set_title(f"{title} speed by runtime and precision")
            ax.legend(title="precision", fontsize=8)
            ax.grid(axis="y", alpha=0.3)
            ax.margins(y=0.2)
            ax.set_ylim(bottom=0)  # a wide spread must not draw a negative speed axis
            ax.set_xlim(-0.5, len(groups) - 0.5)  # every group its full width, measured precisions or not
        fig.tight_layout()
        return _svg(fig, "fig-speed"), None


def serving(records: list[Record], latency: str = "e2e_ms") -> tuple[str | None, str | None]:
    """serve-bench's latency-vs-throughput figure (present/serving.py), inline."""
    from mindbench.present.serving import figure

    matplotlib, _ = _mpl()
    with matplotlib.rc_context(RC):
        fig = figure(records, latency)
        if fig is None:
            return None, "no serving level with both a throughput and a latency"
        return _svg(fig, f"serving-{latency}"), None


def compare_changes(result: dict) -> tuple[str | None, str | None]:
    """Each numeric check's change in units of what the gate allows: past ±1 is flagged."""
    checks = [c for c in result["checks"] if c["change"] is not None and c["allowed"]]
    if not checks:
        return None, "no numeric check (only status changes)"
    order = {"regression": 0, "improvement": 1, "ok": 2}
    checks = sorted(checks, key=lambda c: order.get(c["verdict"], 3))[::-1]  # regressions on top of the plot
    matplotlib, plt = _mpl()
    with matplotlib.rc_context(RC):
        fig, ax = plt.subplots(figsize=(13, 1.2 + 0.32 * len(checks)))
        colors = {"regression": "#cf222e", "improvement": "#1a7f37", "ok": "#8c959f"}
        ys = range(len(checks))
        ax.axvspan(-1, 1, color="0.93", zorder=0, label="within what the gate allows")
        ax.barh(
            ys,
            [c["change"] / c["allowed"] for c in checks],
            color=[colors.get(c["verdict"], "#8c959f") for c in checks],
        )
        ax.set_yticks(ys, [f"{c['cell']}  {c['what']}" for c in checks], fontsize=8)
        ax.axvline(0, color="0.4", lw=0.8)
        ax.set_xlabel(
            "change / allowed (new − baseline, in units of the gate's threshold; "
            "for TTFT and memory a rise is worse, for scores and tok/s a drop)"
        )
        ax.set_title("Every compared figure against the gate's threshold")
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        return _svg(fig, "fig-compare"), None
