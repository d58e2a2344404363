"""`mindbench serve-bench`: a serving benchmark against OpenAI-compatible endpoints (or a llama.cpp
server mindbench starts): concurrency sweep or Poisson request rate, request shapes, warm-up and
cool-down trimmed, TTFT/ITL/E2E percentiles with intervals, goodput under an SLO. The work is
mindbench.sweep.serve_bench; the table and plot mindbench.present.serving."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from mindbench.cli import command
from mindbench.errors import InputError


def _split(text):
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _endpoints(values) -> list[str]:
    """--endpoint repeated, comma lists, or @FILE (one URL a line, # comments)."""
    out = []
    for v in values or ():
        if v.startswith("@"):
            p = Path(v[1:])
            if not p.is_file():
                raise InputError(f"--endpoint {v}: no such file")
            out += [ln.split("#", 1)[0].strip() for ln in p.read_text().splitlines() if ln.split("#", 1)[0].strip()]
        else:
            out += _split(v)
    return out


@command("serve-bench")
@click.option(
    "--endpoint",
    "endpoint",
    multiple=True,
    help="OpenAI-compatible base URL (http://HOST:PORT/v1); repeat it, give a comma list, or @FILE (one a line).",
)
@click.option(
    "--models",
    "--model",
    "models",
    required=True,
    help="Served model names (comma list); with --runtimes, catalog ids or .gguf paths.",
)
@click.option(
    "--runtimes",
    "runtime",
    default=None,
    help="Instead of --endpoint: llamacpp-server (mindbench starts llama.cpp's llama-server, with the largest "
    "concurrency as its slots; $MINDBENCH_LLAMA_SERVER names the binary).",
)
@click.option(
    "--precision", default=None, help="With --runtimes llamacpp-server: the GGUF type (default: the file's own)."
)
@click.option(
    "--api-key-env",
    default="OPENAI_API_KEY",
    show_default=True,
    help="Environment variable holding the API key (read here, never stored).",
)
@click.option(
    "--concurrency",
    default=None,
    help="Concurrency levels, e.g. 1,2,4,8 (default when --rate is not given), or auto: 1, 2, 4, ... until "
    "output tok/s grows less than 10 % (at most 64).",
)
@click.option(
    "--rate", default=None, help="Request rates (req/s, Poisson arrivals), e.g. 0.5,1,2; instead of --concurrency."
)
@click.option(
    "--shape",
    "shape",
    default="chat",
    show_default=True,
    help="Request shapes: chat (512/128), code (256/256), long (2048/128) or NAME=PROMPT/OUTPUT tokens; comma list.",
)
@click.option(
    "--requests",
    type=click.IntRange(min=2),
    default=None,
    help="Requests per level. Default: max(4 x concurrency, 12); 20 per rate.",
)
@click.option(
    "--warmup",
    type=click.IntRange(min=0),
    default=None,
    help="Requests left out at the start of each level (default: the concurrency).",
)
@click.option(
    "--cooldown", type=click.IntRange(min=0), default=None, help="Last completions left out (default: concurrency - 1)."
)
@click.option(
    "--slo", default="ttft=500ms,itl=50ms", show_default=True, help="Goodput targets: ttft, itl, e2e (ms or s)."
)
@click.option(
    "--threads", type=click.IntRange(min=1), default=None, help="Server threads (llamacpp-server). Default: every core."
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    default="results/serving.jsonl",
    show_default=True,
    help="Results file (JSONL, appended; the same store format as `run`).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also save a PNG: E2E and TTFT p50/p99 against output tok/s, one point per level.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON instead of the table.")
def serve_bench_command(
    endpoint,
    models,
    runtime,
    precision,
    api_key_env,
    concurrency,
    rate,
    shape,
    requests,
    warmup,
    cooldown,
    slo,
    threads,
    out,
    plot_path,
    as_json,
):
    """Serving benchmark: latency percentiles, throughput and goodput per concurrency or rate.

    \b
    Examples:
      mindbench serve-bench --endpoint http://127.0.0.1:8000/v1 --models Qwen/Qwen2.5-7B-Instruct --concurrency 1,2,4,8,16
      mindbench serve-bench --runtimes llamacpp-server --models smollm2-135m-instruct --concurrency 1,2,4,8 --shape code
      mindbench serve-bench --endpoint @endpoints.txt --models my-model --rate 1,2,4 --slo ttft=300ms,itl=40ms
    """
    from mindbench.measure.serving import parse_slo
    from mindbench.runtimes.openai.loadgen import parse_levels, parse_shapes
    from mindbench.sweep.serve_bench import serve_bench

    t0 = time.perf_counter()
    eps = _endpoints(endpoint)
    if bool(eps) == bool(runtime):
        raise InputError(
            "give --endpoint URL (a running server) or --runtimes llamacpp-server (one started here), not both"
        )
    if runtime and runtime != "llamacpp-server":
        raise InputError(f"--runtimes {runtime!r}: serve-bench starts llamacpp-server; any other server: --endpoint")
    if concurrency and rate:
        raise InputError("--concurrency and --rate are two kinds of sweep: give one")
    mode = "rate" if rate else "concurrency"
    if concurrency == "auto":  # doubling until throughput stops growing (sweep/serve_bench.py)
        levels = "auto"
    else:
        levels = (
            parse_levels(rate, "rate", integer=False)
            if rate
            else parse_levels(concurrency or "1,2,4,8", "concurrency", integer=True)
        )
    shapes, slo_s = parse_shapes(shape), parse_slo(slo)
    model_list = _split(models)
    if not model_list:
        raise InputError("--models: give at least one model name")
    try:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"--out {out}: {e.strerror}") from None
    records = serve_bench(
        models=model_list,
        endpoints=eps,
        runtime=runtime,
        api_key_env=api_key_env,
        shapes=shapes,
        mode=mode,
        levels=levels,
        requests=requests or 0,
        slo=slo_s,
        out=out,
        precision=precision,
        threads=threads,
        warmup=warmup,
        cooldown=cooldown,
    )
    if as_json:
        click.echo(json.dumps([r.to_json() for r in records], indent=2, default=str))
    else:
        from mindbench.present.serving import text

        click.echo(text(records))
        click.echo(f"{len(records)} serving records -> {out}", err=True)
    if plot_path:
        from mindbench.present.serving import plot

        for lat in ("e2e_ms", "ttft_ms"):
            p = Path(plot_path)
            made = plot(records, p if lat == "e2e_ms" else p.with_name(f"{p.stem}-ttft{p.suffix}"), latency=lat)
            if made:
                click.echo(f"plot -> {made}", err=True)
    click.echo(f"took {time.perf_counter() - t0:.1f} s", err=True)
