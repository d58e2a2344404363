"""`mindbench report`: tables and plots from result files (the presentation is mindbench.present.report,
mindbench.present.table and mindbench.present.plots; this module only reads the options)."""

from __future__ import annotations

from pathlib import Path

import click

from mindbench.cli import command
from mindbench.errors import MindbenchError
from mindbench.present.report import latest, load_records, plot, render
from mindbench.store.record import Record


@command("report")
@click.argument("results_files", metavar="RESULTS...", nargs=-1, required=True, type=click.Path())
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["md", "csv", "html", "json"]),
    default="md",
    show_default=True,
    help="Table format.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the table to this file instead of stdout.")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    help="Also save a PNG: quality vs memory (Pareto front) and quality by precision; with fidelity "
    "figures, also <name>-fidelity.png (KLD with 95% CI per precision, log scale).",
)
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
    # serve-bench's records ("kind": "serving") are levels of a load test, not cells: their own
    # table and latency-vs-throughput plot (mindbench.present.serving)
    serving = [r for r in records if r.is_serving]
    records = [r for r in records if not r.is_serving]
    fmt = "json" if as_json else fmt
    if fmt == "html":  # one page: the cells, then the serving runs with their inline plots
        from mindbench.present.report_html import page

        text = page(records, serving=serving)
    else:
        text = render(records, fmt) if records or not serving else ""
        if serving:
            text = _with_serving(text, serving, fmt)
    if output:
        Path(output).write_text(text if text.endswith("\n") else text + "\n")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text.rstrip("\n"))
    if plot_path and serving:
        from mindbench.present.serving import plot as plot_serving

        p = Path(plot_path)
        for lat, name in (("e2e_ms", f"{p.stem}-serving{p.suffix}"), ("ttft_ms", f"{p.stem}-serving-ttft{p.suffix}")):
            made = plot_serving(serving, p.with_name(name), latency=lat)
            if made:
                click.echo(f"wrote {made}", err=True)
        if not records:
            return
    if plot_path:
        from mindbench.suites.fidelity import plot as plot_fidelity

        fp = plot_fidelity(records, plot_path)  # <plot>-fidelity.png, when records carry fidelity
        if fp:
            click.echo(f"wrote {fp}", err=True)
        try:
            p = plot(records, plot_path, suite=suite)
        except MindbenchError as e:
            if not fp:  # neither plot could be drawn: the user asked for something this store can't give
                raise
            # A fidelity-only sweep (--suite none) has its plot; the quality plot is simply absent.
            click.echo(f"no quality plot: {e.message}", err=True)
        else:
            click.echo(f"wrote {p}", err=True)


def _with_serving(text: str, serving: list[Record], fmt: str) -> str:
    """The serving table under the cells' table (md), or the raw serving records after the cells'
    JSON rows (json; each says "kind": "serving"); csv shows cells only, and says so (the HTML
    page has its own serving section)."""
    import json

    from mindbench.present.serving import text as serving_text

    if fmt == "json":
        return json.dumps((json.loads(text) if text else []) + [r.to_json() for r in serving], indent=2, default=str)
    if fmt == "md":
        return (
            (text + "\n" if text else "")
            + "### Serving (mindbench serve-bench)\n\n"
            + serving_text(serving, "github")
            + "\n"
        )
    click.echo(f"{len(serving)} serving records not shown: use --format md, html or --json for them", err=True)
    return text
