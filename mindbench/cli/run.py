"""`mindbench run`: the sweep's command. It parses and checks every value (harness's checks)
before anything starts, then hands them to harness.sweep and prints the one results table."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click

from mindbench.cli import command
from mindbench.errors import InputError, MindbenchError
from mindbench.runtimes import DEFAULT_RUNTIME
from mindbench.suites import DEFAULT_SUITE
from mindbench.sweep import harness
from mindbench.sweep.harness import (
    DEFAULT_LIMIT,
    DEFAULT_TIMEOUT_S,
    EXECUTORS,
    _check_precisions,
    _host_info,
    _split,
    _took,
    _validate_run,
    default_precisions,
    get_executor,
    resolve_device,
)


def _served(rts: list[str], endpoint) -> tuple[list[str], list[str]]:
    """(endpoints, the chosen runtimes that take one); --endpoint without such a runtime, or such
    a runtime without --endpoint, is one line and exit 2."""
    from mindbench.cli.serve_bench import _endpoints
    from mindbench.runtimes import get_runtime, runtime_names

    served = [rt for rt in rts if rt in runtime_names() and getattr(get_runtime(rt), "takes_endpoint", False)]
    endpoints = _endpoints(endpoint)
    if served and not endpoints:
        raise InputError(f"--runtimes {served[0]} measures a running server: give --endpoint http://HOST:PORT/v1")
    if endpoints and not served:
        raise InputError("--endpoint is for --runtimes openai (a server you run); llamacpp-server starts its own")
    return endpoints, served


def _warn_if_busy(threads: int | None) -> None:
    """Say so when other work already loads the CPU: speed figures measured now will be low and
    noisy (quality is not affected). Measured here: with both cores taken by other jobs, torch at
    2 threads decoded 5-10x slower than at 1, because OpenMP threads wait on each other."""
    try:
        load1 = os.getloadavg()[0]
    except (AttributeError, OSError):
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    if load1 >= cores:
        hint = "" if threads else "; --threads 1 suffers least from sharing"
        click.echo(
            f"Warning: load average {load1:.1f} on {cores} cores before the run: other work shares "
            f"the CPU, so speed figures will be low and noisy (quality is not affected){hint}",
            err=True,
        )


def _lines(path: Path) -> int:
    """Records in a store (one per line), 0 when there is none yet."""
    try:
        with open(path, "rb") as f:
            return sum(1 for line in f if line.strip())
    except OSError:
        return 0


@command("run")
@click.option(
    "--suite",
    "suite",
    default=DEFAULT_SUITE,
    show_default=True,
    help="Suites to score: code, chat, reasoning, data, one subset of a suite (code:easy), a comma list, "
    "all, or none (speed and memory only).",
)
@click.option(
    "--models",
    "--model",
    "models",
    default=None,
    help="Comma-separated model ids (see `mindbench models`). Default: the embedded model.",
)
@click.option(
    "--precisions",
    "--precision",
    "precisions",
    default=None,
    help="Comma-separated: fp32, bf16, fp16, int8, int4 (GGUF types like Q4_1 with --runtimes llamacpp). "
    "Default: fp16,int8,int4 on a GPU, fp32,int4 on a CPU (add int8 with fp32,int8,int4).",
)
@click.option(
    "--runtimes",
    default=DEFAULT_RUNTIME,
    show_default=True,
    help="Comma-separated: transformers, llamacpp (or a plug-in's; see docs/architecture.md).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help=f"Tasks per suite (a fixed, deterministic subset). Default {DEFAULT_LIMIT}; see --full.",
)
@click.option("--full", is_flag=True, help="Every task of every chosen suite.")
@click.option(
    "--repeats", type=click.IntRange(min=1), default=3, show_default=True, help="Timed speed runs after a warm-up."
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=8, show_default=True, help="Generation batch size for suites."
)
# 256 + 64: optimum-benchmark's LLM leaderboard shape, a quarter of the old 512 + 128 (which is
# still --prompt-tokens 512 --new-tokens 128), so the int8/int4 cells of the quick run do not
# spend minutes decoding synthetic text at 5 tok/s on AVX2-only CPUs.
@click.option(
    "--prompt-tokens",
    type=click.IntRange(min=1),
    default=256,
    show_default=True,
    help="Prompt length for prefill speed.",
)
@click.option(
    "--new-tokens", type=click.IntRange(min=2), default=64, show_default=True, help="Tokens decoded for decode speed."
)
@click.option(
    "--code-protocol",
    type=click.Choice(["body", "full"]),
    default="body",
    show_default=True,
    help="How chat models are asked for code: body (the reply opens with the function's signature and "
    "docstring, the model writes the body) or full (it writes the whole function; the old prompt).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default=None,
    help="Results file (JSONL, appended). Default: results/runs.jsonl or $MINDBENCH_RESULTS.",
)
@click.option("--resume", is_flag=True, help="Skip cells already finished (ok, oom, skipped) in --out.")
@click.option(
    "--no-weights",
    is_flag=True,
    help="Random weights from the shipped architecture config: speed and memory of any catalog model, no download, no quality.",
)
@click.option(
    "--log-samples", is_flag=True, help="Write every prompt, output and verdict next to --out (<out>-samples/)."
)
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(min=1),
    default=None,
    help=f"Seconds per cell before it is killed and recorded as timeout. Default {DEFAULT_TIMEOUT_S:g} (x6 with --full).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="CPU threads per cell (torch and llama.cpp; llama-bench's -t). Default: every core.",
)
@click.option(
    "--executor", default="local", show_default=True, help=f"Where cells run: {', '.join(EXECUTORS.builtin)}."
)
@click.option(
    "--ray-address",
    default=None,
    help="Ray cluster to run cells on (e.g. auto, ray://head:10001). Default: $RAY_ADDRESS, else a local Ray.",
)
@click.option(
    "--ray-cpus-per-cell",
    type=click.FloatRange(min=0.5),
    default=None,
    help="CPUs a CPU cell reserves on a Ray node. Default: a whole node, so cells never share cores (speed stays honest).",
)
@click.option(
    "--fidelity/--no-fidelity",
    "fidelity",
    default=None,
    help="Compare each cell's next-token distributions with the reference precision's (fp32 on a CPU, "
    "bf16/fp16 on a GPU) on the shipped text: KL divergence and top-1 agreement with 95% CIs. "
    "Default: on for pretrained weights.",
)
@click.option(
    "--fidelity-tokens",
    type=click.IntRange(min=64),
    default=None,
    help="Tokens of text the fidelity track scores (default 4096; the shipped text holds about 7000).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON instead of the table.")
@click.option(
    "--unsafe-no-sandbox", is_flag=True, help="Run generated code without the sandbox (only for code you trust)."
)
@click.option(
    "--speed-ci",
    type=click.FloatRange(min=0, min_open=True),
    default=0.05,
    show_default=True,
    metavar="FRACTION",
    help="Repeat timed runs (beyond --repeats) until decode tok/s's 95% CI half-width is this fraction of the mean.",
)
@click.option(
    "--speed-max-s",
    type=click.FloatRange(min=0),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="Stop repeating after this much timed work, precise or not (the row is then marked noisy).",
)
@click.option(
    "--llama-bench",
    is_flag=True,
    help="Also measure llama-bench's pp512/tg128 when the prompt/new tokens are not 512/128.",
)
@click.option(
    "--endpoint",
    "endpoint",
    multiple=True,
    help="With --runtimes openai: the server's base URL (http://HOST:PORT/v1); repeat it, a comma list or "
    "@FILE (one a line) for one cell per endpoint. --models then names what the server serves.",
)
@click.option(
    "--api-key-env",
    default="OPENAI_API_KEY",
    show_default=True,
    help="With --endpoint: the environment variable holding the API key (read by the cells, never stored).",
)
def run_command(
    suite,
    models,
    precisions,
    runtimes,
    device,
    limit,
    full,
    repeats,
    batch_size,
    prompt_tokens,
    new_tokens,
    code_protocol,
    out,
    resume,
    no_weights,
    log_samples,
    timeout_s,
    threads,
    executor,
    ray_address,
    ray_cpus_per_cell,
    as_json,
    unsafe_no_sandbox,
    fidelity=None,
    fidelity_tokens=None,
    speed_ci=0.05,
    speed_max_s=60.0,
    llama_bench=False,
    endpoint=(),
    api_key_env="OPENAI_API_KEY",
):
    """Benchmark models x precisions: memory, prefill/decode speed, roofline and quality.

    Each (model, runtime, precision) cell runs in its own process; one that runs out of memory,
    crashes or times out becomes a row with that status and the sweep goes on.

    \b
    Examples:
      mindbench run --suite code                          # embedded model at fp32 and int4 (GPU: fp16, int8, int4)
      mindbench run --suite all --full --repeats 5
      mindbench run --models smollm2-135m-instruct,gemma3-270m --precisions fp32,int4
      mindbench run --no-weights --models mistral-7b-instruct --precisions fp16,int4 --device cuda
      mindbench run --resume --out results/nightly.jsonl  # finish an interrupted sweep
      mindbench run --executor ray --ray-address auto --models tinyllama-1.1b-chat,phi-2
      mindbench run --runtimes openai --endpoint http://127.0.0.1:8000/v1 --models Qwen/Qwen2.5-7B-Instruct
    """
    from mindbench.models.catalog import DEFAULT_MODEL
    from mindbench.paths import default_results

    suites = _split(suite)
    if suites == ["all"]:
        from mindbench.suites import suite_names

        suites = list(suite_names())  # plug-in suites included: "all" is every registered suite
    elif suites == ["none"]:
        suites = []
    if full and limit:
        raise InputError("--full runs every task; drop --limit (or drop --full)")
    if fidelity and no_weights:
        raise InputError("--fidelity compares pretrained distributions; random weights (--no-weights) have none")
    out = Path(out) if out else default_results()
    precs, rts = _split(precisions), _split(runtimes)
    names = _split(models) or [DEFAULT_MODEL]
    endpoints, served = _served(rts, endpoint)
    # names a server serves need no catalog entry; every other runtime's do
    _validate_run(suites, names if len(served) < len(rts) else [], out, executor, no_weights)
    if not rts or (precisions is not None and not precs):
        raise InputError("give at least one precision and one runtime")
    _check_precisions(precs, rts)
    if endpoints:  # wrong URL, refused, 401, unknown model: one line, exit 2, before any cell
        from mindbench.sweep.serve_bench import preflight

        preflight(endpoints, names, api_key_env)
    if precisions is None:  # each runtime's defaults for this device (llama.cpp: the model's own file)
        dev = resolve_device(device, _host_info()[0])
        precs = default_precisions(rts, dev)
    # every model source can be had here (cached or reachable, installed, existing), before any
    # worker starts: one line and exit 2, nothing stored
    from mindbench.sweep.preflight import check_models

    check_models(names, rts, precs, no_weights=no_weights, local=executor == "local")
    samples = str(out.with_name(out.stem + "-samples")) if log_samples else None
    timeout_s = timeout_s or (DEFAULT_TIMEOUT_S * (6 if full else 1))
    _warn_if_busy(threads)
    t_start = time.perf_counter()
    if executor == "ray":
        executor = get_executor("ray", address=ray_address, cpus_per_cell=ray_cpus_per_cell, timeout_s=timeout_s)
    elif ray_address or ray_cpus_per_cell:
        raise MindbenchError("--ray-address and --ray-cpus-per-cell need --executor ray")
    stored_before = _lines(out)
    try:
        records = harness.sweep(
            _split(models) or [DEFAULT_MODEL],
            precs,
            rts,
            suites,
            out=out,
            resume=resume,
            executor=executor,
            device=device,
            timeout_s=timeout_s,
            limit=None if full else (limit or DEFAULT_LIMIT),
            repeats=repeats,
            batch_size=batch_size,
            prompt_tokens=prompt_tokens,
            new_tokens=new_tokens,
            no_weights=no_weights,
            log_samples=samples,
            sandboxed=not unsafe_no_sandbox,
            threads=threads,
            code_protocol=code_protocol,
            fidelity=fidelity,
            fidelity_tokens=fidelity_tokens,
            speed_ci=speed_ci,
            speed_max_s=speed_max_s,
            llama_bench=llama_bench,
            endpoints=endpoints or None,
            api_key_env=api_key_env if endpoints else None,
        )
    except KeyboardInterrupt:
        # Ctrl-C: the cells finished so far are in the store (each is appended when it ends, and
        # the worker of the cell under way dies with us); say how to finish, exit 130 like a shell.
        done = _lines(out) - stored_before
        click.echo(
            f"\ninterrupted after {_took(time.perf_counter() - t_start)}: {done} finished cell(s) stored in {out}; "
            f"the same command with --resume runs only the rest",
            err=True,
        )
        raise SystemExit(130) from None
    if as_json:
        click.echo(json.dumps([r.to_json() for r in records], indent=2, default=str))
    else:
        from mindbench.present.table import text  # the one table, the same as `mindbench report`'s

        click.echo(text(records, "simple"))
        click.echo(f"{len(records)} cells -> {out}", err=True)
    # where each cell's time went (the record's timings_s): what to cut, or what to expect
    from mindbench.sweep.progress import timings_text

    for r in records:
        if timings_text(r.timings_s):
            c = r.config
            click.echo(
                f"time per stage, {c.model} {c.runtime} {c.precision}: "
                f"{timings_text(r.timings_s)}, total {r.timings_s.get('total', 0):.1f} s",
                err=True,
            )
    # the main command's promise is a time: say what it took (with --json too, on stderr)
    click.echo(f"took {_took(time.perf_counter() - t_start)}", err=True)
