"""`mindbench compare`: the regression gate's command over mindbench.decide.compare (the command lives
here so compare and report_html import each other in one direction only)."""

from __future__ import annotations

import json
import math

import click

from mindbench.cli import command
from mindbench.decide.compare import (
    AB_TARGET,
    KLD_FLOOR,
    KLD_TOL,
    MEMORY_TOL,
    MIN_SCHEMA,
    QUALITY_TOL,
    SPEED_TOL,
    BadInput,
    Z,
    _load,
    compare,
    compare_ab,
    compare_interleaved,
    render_text,
)


@command("compare")
@click.argument("baseline", type=click.Path())
@click.argument("new", type=click.Path(), required=False)
@click.option(
    "--quality-tol",
    type=float,
    default=QUALITY_TOL,
    show_default=True,
    metavar="POINTS",
    help="Smallest quality drop (0-100 points) that can count, on top of the stderr test.",
)
@click.option(
    "--speed-tol",
    type=float,
    default=SPEED_TOL,
    show_default=True,
    metavar="FRACTION",
    help="Smallest relative speed drop that can count, on top of the repeats' spread.",
)
@click.option(
    "--memory-tol",
    type=float,
    default=MEMORY_TOL,
    show_default=True,
    metavar="FRACTION",
    help="Smallest relative memory rise that counts.",
)
@click.option(
    "--z",
    "z",
    type=float,
    default=Z,
    show_default=True,
    help="How many combined standard errors/deviations a change must exceed; the paired "
    "test's alpha is its two-sided tail (0.0455 at 2).",
)
@click.option(
    "--kld-tol",
    type=float,
    default=KLD_TOL,
    show_default=True,
    metavar="FRACTION",
    help=f"Smallest fidelity KLD rise that counts, as a fraction of the baseline's (at least {KLD_FLOOR} nats), "
    "on top of non-overlapping CIs.",
)
@click.option(
    "--hardware",
    type=click.Choice(["class", "fingerprint", "any"]),
    default="class",
    show_default=True,
    help="Match rows on the same memory class, the same machine, or anywhere.",
)
@click.option(
    "--speed/--no-speed",
    "gate_speed",
    default=True,
    show_default=True,
    help="Gate speed figures; --no-speed when either run shared its CPU with other work.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.option(
    "--html", "html_path", type=click.Path(dir_okay=False), help="Also write the comparison as one HTML page."
)
@click.option(
    "--ab",
    is_flag=True,
    help="Speed only, same machine: BASELINE alone is an interleaved A/B run (scripts/ab_interleave.py, "
    "what scripts/ci_gate.sh runs), or BASELINE and NEW are the two sides of A/B rounds (the A/B rule below).",
)
@click.option(
    "--ab-target",
    type=float,
    default=AB_TARGET,
    show_default=True,
    metavar="FRACTION",
    help="--ab: decode is ok only when its interval rules out a slowdown this large; "
    "an interval that spans 0 and this is NOT DECIDED.",
)
@click.option(
    "--looks",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="--ab: how many times the caller looks at accumulating rounds (scripts/ci_gate.sh "
    "adds rounds until it can decide); each look is tested at Pocock's level.",
)
def compare_command(
    baseline,
    new,
    quality_tol,
    speed_tol,
    memory_tol,
    z,
    kld_tol,
    hardware,
    gate_speed,
    as_json,
    html_path=None,
    ab=False,
    ab_target=AB_TARGET,
    looks=1,
):
    """Regression gate: compare NEW results against BASELINE.

    Exit status 0 when nothing regressed, 1 on a regression, 2 on bad input (missing file,
    schema mismatch, nothing to compare). A change counts only when it exceeds both the
    tolerance and the two runs' own noise (standard errors for quality, repeat spread for speed).
    Quality is tested paired (exact McNemar on the tasks that flipped) when both runs kept
    per-task verdicts for the same tasks; fidelity (KLD) counts when its CIs no longer overlap.

    With --ab and one FILE (what scripts/ci_gate.sh runs: scripts/ab_interleave.py timed the
    baseline's commit and HEAD repeat by repeat in two live processes on this machine), speed
    only is judged on the pairs: decode's slowdown is the Hodges-Lehmann centre of the pairs'
    differences in log time per token with its Wilcoxon signed-rank interval (widened when
    neighbouring pairs move together); it is a regression when the whole interval is a slowdown
    beyond 2 % (two processes of the same code can differ by a little), ok when the interval
    rules out --ab-target (5 %), and NOT DECIDED in between (reported as such, exit 0: the gate
    could not tell, which is not a pass). False alarms stay under 5 % over all decode checks and
    looks. The output says the smallest slowdown this run could catch 9 times in 10. Prefill and
    TTFT fail only beyond --speed-tol. The rule was chosen by benchmarks/gate_power.py: whole
    interleaved A/A runs (fresh processes each) and runs with a real injected slowdown
    (MINDBENCH_FAULT=slow_decode:0.05), resampled to measure each candidate's false-alarm rate
    and power at 3, 5, 10 and 20 %; the table is in docs/gate.md. With --ab and two record files
    (sides of interleaved rounds), every timed repeat counts by the Mann-Whitney interval of the
    two pools; records without per-repeat samples fall back to the pooled rule.

    \b
    Examples:
      mindbench compare results/baseline.jsonl results/runs.jsonl
      mindbench compare results/baseline.jsonl new.jsonl --speed-tol 0.1 --json
      mindbench compare old.jsonl new.jsonl --hardware any   # quality across machines
      mindbench compare old.jsonl new.jsonl --no-speed       # busy machine: quality only
      mindbench compare old.jsonl new.jsonl --html compare.html
      mindbench compare a.jsonl b.jsonl --ab                 # A/B rounds' verdict (records)
      mindbench compare ab.json --ab                         # the CI gate's interleaved A/B run
    """
    for name, x in (
        ("--quality-tol", quality_tol),
        ("--speed-tol", speed_tol),
        ("--memory-tol", memory_tol),
        ("--z", z),
        ("--kld-tol", kld_tol),
        ("--ab-target", ab_target),
    ):
        if x < 0 or not math.isfinite(x):
            raise BadInput(f"{name} must be a non-negative number, got {x}")
    if new is None:  # --ab on one interleaved run's file
        if not ab:
            raise BadInput("NEW is missing: compare BASELINE NEW (one file only with --ab: an interleaved A/B run)")
        result = compare_interleaved(_load_interleaved(baseline), speed_tol=speed_tol, target=ab_target)
    else:
        base_records = _load(baseline, "BASELINE")
        new_records = _load(new, "NEW")
        schemas = {r.schema for r in base_records + new_records}
        # an A/B run's old side may predate the current schema (compare_ab reads only speed)
        if len(schemas) > 1 and not ab and any(not isinstance(x, int) or x < MIN_SCHEMA for x in schemas):
            raise BadInput(
                f"schema mismatch: the files hold result schemas {sorted(schemas, key=str)}; "
                "refresh the baseline with the current mindbench (see results/README.md)"
            )
        if ab:
            result = compare_ab(base_records, new_records, speed_tol=speed_tol, z=z, target=ab_target, looks=looks)
        else:
            result = compare(
                base_records,
                new_records,
                quality_tol=quality_tol,
                speed_tol=speed_tol,
                memory_tol=memory_tol,
                z=z,
                hardware=hardware,
                gate_speed=gate_speed,
                kld_tol=kld_tol,
            )
    click.echo(json.dumps(result, indent=2) if as_json else render_text(result))
    if html_path:  # the page lives in report_html; written before a regression's exit 1
        from mindbench.present.report_html import write_compare

        write_compare(result, baseline, new or baseline, html_path)
        click.echo(f"wrote {html_path}", err=True)
    if result["regressions"]:
        raise click.exceptions.Exit(1)


def _load_interleaved(path: str) -> dict:
    """The JSON file scripts/ab_interleave.py writes (one object), or a one-line error."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except (OSError, ValueError) as e:
        raise BadInput(
            f"{path}: not an interleaved A/B run ({e.__class__.__name__}); give BASELINE NEW for records"
        ) from None
    return data
