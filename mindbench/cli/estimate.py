"""`mindbench estimate`: memory and speed of one model, format and device, from the architecture
and the device table alone (mindbench.models.perf) - offline, no torch, with every input shown."""

from __future__ import annotations

import json

import click

from mindbench.cli import command
from mindbench.errors import InputError


def this_machine():
    """This machine as a device-table row: its GPU when the table knows it, else its CPU (memory
    bandwidth measured once and cached; compute from the cores and the vector width)."""
    from dataclasses import replace

    from mindbench.models.devices import Device, from_nvml
    from mindbench.models.hardware import cached_cpu_bandwidth, detect

    hw = detect()
    if hw.device == "cuda":
        d = from_nvml(hw.gpu.name, hw.gpu.total_mb)
        if d is not None:
            return replace(d, count=len(hw.gpus)), f"this machine's GPU ({hw.gpu.name})"
    gb_s, source = cached_cpu_bandwidth(hw.fingerprint)
    lanes = 16 if "avx512f" in (hw.cpu_features or []) else 8  # fp32 lanes per vector
    tflops = hw.cores * lanes * 2 * 2 * 3.0e9 / 1e12  # 2 FMA units, 2 flops, ~3 GHz
    dev = Device(
        name=f"this CPU ({hw.cpu}, {hw.cores} cores)",
        vendor="",
        cls="cpu",
        kind="cpu",
        memory_gb=round(hw.ram_mb / 1024, 1),
        bandwidth_gb_s=gb_s or 20.0,
        fp16_tflops=round(tflops, 3),
        int8_tops=round(2 * tflops, 3),
        bf16=False,
        fp8=False,
        source=f"{source}; compute nominal: {hw.cores} cores x {lanes} fp32 lanes x 2 FMA x 3 GHz",
    )
    return dev, "this machine's CPU"


def render(p, dev, where: str, longest: int, tg128: float, pp512: float) -> str:
    from tabulate import tabulate

    i = p.inputs
    rows = [
        ["device", f"{dev.label} [{where}]"],
        ["runtime / format", f"{p.runtime} / {p.precision}"],
        [
            "weights",
            f"{p.weights_mb / 1024:.2f} GiB ({i['params'] / 1e9:.2f}B parameters at "
            f"{i['body_bits_per_weight']:g} bits, output matrix at {i['output_bits_per_weight']:g})",
        ],
        ["KV cache", f"{p.kv_cache_mb / 1024:.2f} GiB at {i['context']} tokens (f16)"],
        ["runtime overhead", f"{p.overhead_mb / 1024:.2f} GiB"],
        [
            "memory at context",
            f"{p.total_mb / 1024:.2f} GiB of {dev.usable_mb / 1024:.1f} GiB usable: "
            + ("fits" if p.fits else "does NOT fit"),
        ],
        ["longest context that fits", f"{longest} tokens" if longest else "none (the weights alone do not fit)"],
        ["pp512 (prefill)", f"{pp512:.0f} tok/s"],
        ["tg128 (decode)", f"{tg128:.1f} tok/s"],
        [f"decode at {i['context']} tokens", f"{p.decode_tok_s:.1f} tok/s"],
        ["active parameters", f"{i['active_params'] / 1e9:.2f}B" + (" (mixture of experts)" if i["moe"] else "")],
        ["bytes read per token", f"{i['bytes_per_token'] / 2**30:.2f} GiB at {i['context']} tokens"],
        [
            "bandwidth / compute",
            f"{i['bandwidth_gb_s']:g} GB/s, {i['fp16_tflops']:g} fp16 TFLOPS"
            + (f" x {i['devices']} ({i['split']} split)" if i["devices"] > 1 else ""),
        ],
        [
            "efficiency",
            f"e_bw {i['e_bw']:g}, {i['t_layer_us']:g} us per layer, prefill e_pp {i['e_pp']:g}: {i['factors']}",
        ],
        ["device spec", i["device_source"]],
    ]
    return tabulate(rows, tablefmt="plain")


@command("estimate")
@click.option("--model", required=True, help="Catalog id (mindbench models) or an architecture shape name.")
@click.option(
    "--precision",
    required=True,
    help="A GGUF type (Q4_K_M, Q8_0, F16, ...) or awq, gptq, fp8, vllm-bf16, bf16, fp16, fp32, int8, int4.",
)
@click.option(
    "--gpu",
    metavar="NAME",
    help="A device from the table ('RTX 4090', '2x H100', 'M2 Max 64GB'); default: this machine.",
)
@click.option(
    "--runtime",
    type=click.Choice(["llamacpp", "openai", "transformers"]),
    default=None,
    help="Default: the format's own (GGUF: llamacpp; awq/gptq/fp8: openai (vLLM); else transformers).",
)
@click.option(
    "--context",
    type=click.IntRange(1, 1_048_576),
    default=4096,
    show_default=True,
    help="Tokens the KV cache is sized for.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def estimate_command(model, precision, gpu, runtime, context, as_json):
    """Memory and speed of MODEL at PRECISION on a device, estimated (no download, no torch).

    Decode from bandwidth, prefill from compute, each with efficiency factors fitted to published
    llama.cpp measurements (benchmarks/fit_estimator.py prints their held-out error).

    \b
    Examples:
      mindbench estimate --model qwen2.5-coder-32b-instruct --precision Q4_K_M --gpu "RTX 4090" --context 8192
      mindbench estimate --model qwen3-30b-a3b --precision Q4_K_M --gpu "M4 Max 64GB" --json
      mindbench estimate --model gpt-oss-120b --precision MXFP4 --gpu "2x RTX 3090"
    """
    from mindbench.models.devices import lookup
    from mindbench.models.perf import max_context, predict, shape, shape_of

    s = shape_of(model)
    if s is None:
        try:
            from mindbench.models.catalog import resolve

            s = shape_of(resolve(model).id)
        except Exception:
            s = None
    if s is None:
        try:
            s = shape(model)
        except InputError:
            raise InputError(
                f"no architecture shape for {model!r}: give a catalog id with one (mindbench models) "
                f"or a shape name from mindbench/models/data/catalog_2026.json"
            ) from None
    dev, where = (lookup(gpu), "device table") if gpu else this_machine()
    p = predict(s, precision, dev, runtime=runtime, context=context, decode_at=context, model=model)
    bench = predict(s, precision, dev, runtime=runtime, context=640, decode_at=64, model=model)
    longest = max_context(s, precision, dev, runtime=runtime)
    if as_json:
        d = p.to_dict()
        d.update(
            device=dev.to_dict(),
            device_from=where,
            pp512_tok_s=round(bench.prefill_tok_s, 1),
            tg128_tok_s=round(bench.decode_tok_s, 2),
            longest_context=longest,
        )
        click.echo(json.dumps(d, indent=2))
    else:
        click.echo(render(p, dev, where, longest, bench.decode_tok_s, bench.prefill_tok_s))
