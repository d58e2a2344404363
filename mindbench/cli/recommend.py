"""`mindbench recommend`: the command over mindbench.decide.recommend's policy (commands live in
mindbench/cli/, so recommend, hardware and estimate import each other in one direction only)."""

from __future__ import annotations

import json

import click

from mindbench.cli import command
from mindbench.cli.hardware import hardware_options
from mindbench.decide.recommend import (
    DEFAULT_MIN_TOK_S,
    TASKS,
    budget,
    load_records,
    offline,
    recommend,
    with_cpu_bandwidth,
)
from mindbench.errors import InputError
from mindbench.models.hardware import from_options, parse_size
from mindbench.present.recommendation import render


@command("recommend")
@click.option(
    "--task",
    default="all",
    show_default=True,
    help=f"What the model is for: a suite ({', '.join(TASKS)}, or a plug-in's) or all.",
)
@click.option(
    "--min-tokens-per-sec",
    "min_tok_s",
    type=float,
    default=None,
    help=f"Leave out slower configurations (default: {DEFAULT_MIN_TOK_S:g}, 0 keeps all).",
)
@click.option(
    "--max-memory",
    metavar="SIZE",
    help="Memory the model may use, e.g. 6GB (default: 90% of the GPU, 75% of RAM on a CPU).",
)
@click.option(
    "--context",
    type=click.IntRange(1),
    default=None,
    help="Context length the KV cache is sized for (default: 8192 for code, 2048 otherwise).",
)
@click.option(
    "--results",
    "results_paths",
    multiple=True,
    type=click.Path(dir_okay=False),
    help="Result files (repeatable; default: every results/*.jsonl).",
)
@hardware_options
@click.option("--explain-table", is_flag=True, help="Check the user's document's GPU-memory table row by row.")
@click.option(
    "--max-kld",
    type=float,
    help="Quality-loss budget: mean KL divergence vs the reference precision "
    "(upper 95% bound); the cheapest configuration within it wins.",
)
@click.option(
    "--quality-loss",
    type=click.Choice(["lossless", "near", "any"]),
    help="Named budget: lossless (KLD <= 0.002), near (<= 0.05), any.",
)
@click.option(
    "--prefer",
    type=click.Choice(["measured", "published"]),
    default="measured",
    show_default=True,
    help="published: choose on published figures even when a weaker model was measured here (labelled).",
)
@click.option(
    "--check-estimates",
    is_flag=True,
    help="The estimator's error: against every measured record here "
    "(MAPE, worst case per figure and runtime) and against the published llama.cpp table (median and p90 "
    "|error| on held-out devices, per device class).",
)
@click.option("--longest-context", is_flag=True, help="Per configuration, the longest context that fits the budget.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def recommend_command(
    task,
    min_tok_s,
    max_memory,
    context,
    results_paths,
    profile_name,
    gpu_memory,
    device,
    ram,
    gpu,
    explain_table,
    max_kld,
    quality_loss,
    prefer,
    check_estimates,
    longest_context,
    as_json,
):
    """Best model, runtime and precision for this machine (or a planned one), per task.

    Measured results come first (this machine, then similar hardware); configurations never
    measured are estimated and labelled so.

    \b
    Examples:
      mindbench recommend
      mindbench recommend --task code --json
      mindbench recommend --profile t4-16gb --task chat
      mindbench recommend --gpu "RTX 4090" --task code --context 8192
      mindbench recommend --gpu "2x H100"
      mindbench recommend --gpu-memory 8GB --context 4096
      mindbench recommend --max-memory 2GB --min-tokens-per-sec 10
      mindbench recommend --explain-table
    """
    tasks = _tasks(task)
    records, files = load_records(list(results_paths) or None)
    if explain_table:
        from mindbench.decide.estimate_check import explain_table, render_table

        rows = explain_table(context or 2048, records=records)
        click.echo(json.dumps(rows, indent=2) if as_json else render_table(rows))
        return
    if check_estimates:
        from mindbench.cli.estimate import this_machine
        from mindbench.decide.estimate_check import check, render_check
        from mindbench.models import fit

        rep = check(records)
        pub = fit.run()
        here = fit.against_records(records, this_machine()[0])
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "this_machine": rep,
                        "hardware_estimator_here": here,
                        "published": {
                            "held_out": pub["held_out"],
                            "train": pub["train"],
                            "split": pub["fit"]["split"],
                            "skipped": pub["fit"]["skipped"],
                        },
                    },
                    indent=2,
                )
            )
        else:
            s = pub["fit"]["split"]
            click.echo(
                "against this machine's records:\n" + render_check(rep) + "\n\n"
                f"against the published llama.cpp table (mindbench/models/data/llama_bench_published.csv), "
                f"fitted on {len(s['train_devices'])} devices, scored on {len(s['test_devices'])} held out "
                f"({', '.join(s['test_devices'])}):\n"
                + fit.render(pub["held_out"])
                + "\n\nthe hardware estimator (mindbench estimate, no --gpu) against this machine's quiet llama.cpp "
                "records:\n"
                + (
                    "\n".join(
                        f"  {x['record']}: measured {x['measured']} tok/s, estimated {x['estimated']} "
                        f"({x['error_pct']:+.1f} %)"
                        for x in here
                    )
                    or "  none"
                )
            )
        return
    hw = with_cpu_bandwidth(from_options(profile_name, gpu_memory, device, ram, gpu=gpu), records)
    max_mb = parse_size(max_memory, "--max-memory") if max_memory else None
    if longest_context:
        from mindbench.decide.estimate_check import longest_contexts, render_longest

        rows = longest_contexts(hw, records, budget(hw, max_mb), None if task == "all" else task)
        click.echo(json.dumps(rows, indent=2) if as_json else render_longest(rows))
        return
    # the same call best_config makes for the provider and the agents (one decision); offline
    # (HF_HUB_OFFLINE=1) limits what can load on this machine, not what a planned one could run
    recs = [
        recommend(
            hw,
            records,
            t,
            min_tok_s=min_tok_s,
            max_memory_mb=max_mb,
            context=context,
            max_kld=max_kld,
            quality_loss=quality_loss,
            prefer=prefer,
            available_only=offline() and hw.name == "detected",
        )
        for t in tasks
    ]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "hardware": hw.to_dict(),
                    "results": files,
                    "tasks": {r.task: {k: v for k, v in r.to_dict().items() if k != "hardware"} for r in recs},
                },
                indent=2,
            )
        )
    else:
        click.echo(render(recs, hw, files, detail=task != "all"))


def _tasks(task: str) -> tuple[str, ...]:
    """The suites to recommend for: one, or all registered (plug-ins included)."""
    from mindbench.suites import suite_names

    names = suite_names()
    if task != "all" and task not in names:
        raise InputError(f"unknown task {task!r}; choose one of {', '.join(names)}, all")
    return names if task == "all" else (task,)
