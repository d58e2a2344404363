"""Serving records (sweep/serve_bench.py) as a table and as the latency-vs-throughput plot of a
concurrency sweep (vLLM's `bench sweep` draws the same): one point per level, throughput on x,
latency percentile on y with its 95 % interval, labelled by the level."""

from __future__ import annotations

from pathlib import Path

from mindbench.store.record import Record


def _pct(d, q="p50"):
    v = (d or {}).get(q) or {}
    return v.get("value"), v.get("ci_lo"), v.get("ci_hi")


def _fmt(v, lo=None, hi=None, digits=0) -> str:
    if v is None:
        return "-"
    s = f"{v:.{digits}f}"
    if lo is not None or hi is not None:
        s += f" [{'-' if lo is None else f'{lo:.{digits}f}'}, {'-' if hi is None else f'{hi:.{digits}f}'}]"
    return s


def rows(records: list[Record]) -> list[dict]:
    """One row per level of every ok serving record."""
    out = []
    for rec in records:
        if not rec.is_serving:
            continue
        cfg = rec.config
        if rec.status != "ok":
            out.append({"model": cfg.model, "runtime": cfg.runtime, "status": rec.status, "error": rec.error})
            continue
        mode = cfg.mode
        shape = cfg.shape or {}
        for lv in (rec.serving or {}).get("levels") or []:
            row = {
                "model": cfg.model,
                "runtime": cfg.runtime,
                "shape": f"{shape.get('name')} {shape.get('prompt_tokens')}/{shape.get('output_tokens')}",
                mode: lv.get(mode),
                "requests": lv.get("requests"),
                "failed": lv.get("failed"),
                "req/s": None if lv.get("req_s") is None else round(lv["req_s"], 3),
                "out tok/s": None if lv.get("output_tok_s") is None else round(lv["output_tok_s"], 1),
            }
            for key, label in (("ttft_ms", "TTFT"), ("itl_ms", "ITL"), ("e2e_ms", "E2E")):
                for q in ("p50", "p90", "p99"):
                    row[f"{label} {q} ms"] = _fmt(*_pct(lv.get(key), q))
            if "goodput_req_s" in lv:
                g = lv.get("good_frac") or {}
                row["goodput req/s"] = round(lv["goodput_req_s"], 3)
                row["good %"] = _fmt(
                    *(None if x is None else 100 * x for x in (g.get("value"), g.get("ci_lo"), g.get("ci_hi")))
                )
            out.append(row)
    return out


def text(records: list[Record], tablefmt: str = "simple", columns: str = "short") -> str:
    """The table; `short` keeps p50 and p99 (p90 is in --json)."""
    from tabulate import tabulate

    rs = rows(records)
    if not rs:
        return "no serving records"
    if columns == "short":
        rs = [{k: v for k, v in r.items() if " p90 " not in k} for r in rs]
    keys = list(dict.fromkeys(k for r in rs for k in r))
    # the SLO serve-bench was given is its own setting, kept with the config's other keys
    slo = next((r.config.extra["slo_ms"] for r in records if r.is_serving and r.config.extra.get("slo_ms")), None)
    note = (
        "latencies: value [95% interval] in ms (order statistics; ITL: bootstrap over requests; '-' = too "
        "few requests for that bound)"
    )
    if slo:
        note += "; goodput: completed requests/s meeting " + ", ".join(f"{k} <= {v:g} ms" for k, v in slo.items())
        note += " (itl against each request's mean time per output token)"
    return tabulate([[r.get(k, "") for k in keys] for r in rs], headers=keys, tablefmt=tablefmt) + "\n" + note


def figure(records: list[Record], latency: str = "e2e_ms"):
    """The latency-vs-throughput figure (matplotlib): x = output tok/s, y = latency p50 and p99
    (`latency`: ttft_ms, itl_ms or e2e_ms), one line per (model, runtime, shape), each point
    labelled with its level. None without data. The PNG (`plot`) and the HTML page's inline SVG
    (report_svg.serving) draw this one figure."""
    series = []
    for rec in records:
        if not rec.is_serving or rec.status != "ok":
            continue
        cfg = rec.config
        pts = [
            (lv.get("output_tok_s"), lv.get(latency), lv.get(cfg.mode))
            for lv in rec.serving["levels"]
            if lv.get("output_tok_s") and lv.get(latency)
        ]
        if pts:
            series.append((f"{cfg.model} · {cfg.runtime} · {cfg.shape['name']}", cfg.mode, pts))
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, q in zip(axes, ("p50", "p99")):
        for i, (label, mode, pts) in enumerate(series):
            color = plt.cm.tab10(i % 10)
            xs = [p[0] for p in pts]
            ys = [p[1][q]["value"] for p in pts]
            lo = [max(0.0, y - (p[1][q]["ci_lo"] if p[1][q]["ci_lo"] is not None else y)) for y, p in zip(ys, pts)]
            hi = [max(0.0, (p[1][q]["ci_hi"] if p[1][q]["ci_hi"] is not None else y) - y) for y, p in zip(ys, pts)]
            ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o-", capsize=3, color=color, label=label)
            for x, y, p in zip(xs, ys, pts):
                ax.annotate(
                    f"{'c' if mode == 'concurrency' else 'r'}={p[2]:g}",
                    (x, y),
                    textcoords="offset points",
                    xytext=(5, 5),
                    fontsize=7,
                )
        ax.set_xlabel("output tokens/s (steady-state window)")
        ax.set_ylabel(f"{latency.replace('_ms', '').upper()} {q}, ms")
        ax.set_title(
            f"{latency.replace('_ms', '').upper()} {q} vs throughput (95% interval; '-' bounds omitted)", fontsize=9
        )
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot(records: list[Record], path, latency: str = "e2e_ms") -> Path | None:
    """The figure as a PNG at `path`; None without data."""
    fig = figure(records, latency)
    if fig is None:
        return None
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
