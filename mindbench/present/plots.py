"""The report's plots (matplotlib): quality against peak memory with the Pareto front, and
quality by precision; `report --plot` writes them as PNG, report_svg as inline SVG."""

from __future__ import annotations

import math
from pathlib import Path

from mindbench.errors import MindbenchError
from mindbench.present.table import hardware_line, suites_of
from mindbench.store.record import Record


def overall_quality(rec: Record, suite: str | None):
    """(score, stderr) of one suite, or the mean over the cell's suites (independent errors)."""
    qs = [q for s, q in rec.quality.items() if (suite is None or s == suite) and q.points is not None]
    if not qs:
        return None, None
    score = sum(q.points for q in qs) / len(qs)
    ses = [q.stderr_points or 0.0 for q in qs]
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


def plot(records: list[Record], path: str | Path, suite: str | None = None) -> Path:
    """Two panels in one PNG: quality vs memory with the Pareto front, and quality by precision."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    ok = [r for r in records if r.status == "ok"]
    label = suite or (
        "mean of " + ", ".join(suites_of(ok)) if len(suites_of(ok)) > 1 else (suites_of(ok) or ["quality"])[0]
    )
    pts = []
    for r in ok:
        q, se = overall_quality(r, suite)
        if q is not None and r.peak_mb is not None:
            pts.append((r.peak_mb, q, se or 0.0, r.config))
    if not pts:
        raise MindbenchError(
            "nothing to plot: no successful record has both a quality score and a memory "
            "figure; run with --suite so records carry quality"
        )

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2))
    models = list(dict.fromkeys(p[3].model for p in pts))
    colors = {m: plt.cm.tab10(i % 10) for i, m in enumerate(models)}
    runtimes = {p[3].runtime for p in pts}
    for m in models:  # one legend entry per model; the point labels then only need the precision
        ax1.errorbar([], [], yerr=[], fmt="o", color=colors[m], label=m)
    for mem, q, se, c in pts:
        ax1.errorbar(mem, q, yerr=se, fmt="o", color=colors[c.model], capsize=3, ms=7, alpha=0.9)
        text = c.precision if len(runtimes) == 1 else f"{c.runtime}/{c.precision}"
        ax1.annotate(text, (mem, q), textcoords="offset points", xytext=(11, 3), fontsize=8, color=colors[c.model])
    front = pareto_front([(p[0], p[1]) for p in pts])
    ax1.step(
        [pts[i][0] for i in front],
        [pts[i][1] for i in front],
        where="post",
        color="crimson",
        lw=1.5,
        ls="--",
        label="Pareto front (less memory, more quality)",
    )
    ax1.scatter(
        [pts[i][0] for i in front], [pts[i][1] for i in front], s=160, facecolors="none", edgecolors="crimson", lw=1.5
    )
    ax1.set_xlabel("peak memory (MB)")
    ax1.set_ylabel(f"quality: {label} (0-100, ± stderr)")
    ax1.set_title("Quality against memory")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8, loc="best")
    ax1.margins(x=0.2, y=0.2)

    from mindbench.runtimes import precision_key

    # Panel 2: grouped bars, one group per model x runtime, one bar per precision.
    groups = list(dict.fromkeys(f"{p[3].model}\n{p[3].runtime}" for p in pts))
    precs = sorted({p[3].precision for p in pts}, key=precision_key)
    width = 0.8 / max(len(precs), 1)
    # The reference for "change" is each group's widest precision that was measured.
    ref = {}
    for g in groups:
        mine = [p for p in pts if f"{p[3].model}\n{p[3].runtime}" == g]
        ref[g] = min(mine, key=lambda p: precision_key(p[3].precision))[1]
    for j, prec in enumerate(precs):
        xs, ys, es, notes = [], [], [], []
        for i, g in enumerate(groups):
            for _mem, q, se, c in pts:
                if f"{c.model}\n{c.runtime}" == g and c.precision == prec:
                    xs.append(i + (j - (len(precs) - 1) / 2) * width)
                    ys.append(q)
                    es.append(se)
                    d = q - ref[g]
                    notes.append(f"{q:.0f}" if abs(d) < 0.05 else f"{q:.0f}\n({d:+.0f})")
        ax2.bar(
            xs,
            ys,
            width * 0.95,
            yerr=es,
            capsize=3,
            label=prec,
            color=plt.cm.viridis(j / max(len(precs) - 1, 1) * 0.85),
            ecolor="0.3",
        )
        for x, y, e, t in zip(xs, ys, es, notes):  # above the error bar, so they never collide
            ax2.annotate(t, (x, y + e), textcoords="offset points", xytext=(0, 3), ha="center", va="bottom", fontsize=7)
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
