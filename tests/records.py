"""The one way tests make a result record: the store's own type (mindbench/store/record.py),
built with its constructors, so a test never writes a record's JSON by hand.

    record(model="m", precision="int4", decode=12.0, quality={"code": score(40.0, n=20)})

Defaults describe one ok CPU cell of the packaged model on a test machine ("fp-A"); every keyword
is one field of the record, named as the record names it (units in the names). `score` makes a
suite's Quality (points, as a binary metric: value = points / 100, stderr of the value).
Use `functools.partial(record, ...)` for a file's own defaults.
"""

from __future__ import annotations

import random

from mindbench.measure.serving import RequestResult, summarize_level
from mindbench.store.record import (
    Config,
    Fidelity,
    Figure,
    Hardware,
    Interval,
    Load,
    Memory,
    Quality,
    Record,
    Roofline,
    Speed,
)


def score(
    points: float | None,
    *,
    stderr: float | None = 0.07,
    n: int | None = 50,
    items: dict | None = None,
    metric: str = "pass@1",
    protocol: str | None = None,
    scale: float | None = None,
    higher_is_better: bool | None = None,
    empty_outputs: int | None = None,
) -> Quality:
    """One suite's score. `points` on the score's scale (0-100 for a binary metric, the default);
    `stderr` of the per-item value (0-1 for a binary metric), as the suites report it."""
    unit = scale or 100.0
    return Quality(
        score=points,
        metric=metric,
        value=None if points is None else points / unit,
        stderr=stderr,
        n=n,
        items=items,
        protocol=protocol,
        scale=scale,
        higher_is_better=higher_is_better,
        empty_outputs=empty_outputs,
    )


def fidelity(kld: float, *, lo: float | None = None, hi: float | None = None, top1: float = 0.9, **kw) -> Fidelity:
    """A fidelity section against the fp32 transformers reference on the shipped text."""
    return Fidelity(
        reference=kw.pop("reference", {"runtime": "transformers", "precision": "fp32"}),
        is_reference=kw.pop("is_reference", False),
        text_sha=kw.pop("text_sha", "t" * 64),
        tokens=kw.pop("tokens", 4096),
        documents=kw.pop("documents", 1),
        kld=Interval(kld, kld if lo is None else lo, kld if hi is None else hi),
        top1=Interval(top1, top1, top1),
        **kw,
    )


def record(
    *,
    model: str = "smollm2-135m-instruct",
    runtime: str = "transformers",
    precision: str = "fp32",
    device: str = "cpu",
    weights: str = "pretrained",
    suites: list | None = None,
    limit: int | None = None,
    prompt_tokens: int = 512,
    new_tokens: int = 128,
    threads: int | None = None,
    fault: str | None = None,
    endpoint: str | None = None,
    code_protocol: str | None = None,
    status: str = "ok",
    error: str | None = None,
    timestamp: str = "2025-01-01T00:00:00",
    run_id: str = "r",
    cell: str | None = None,
    schema: int = 2,
    fingerprint: str = "fp-A",
    speed_fingerprint: str | None = "speed-fp-A",
    memory_class: str = "cpu-16gb",
    cpu: str = "x86",
    cores: int = 2,
    ram_mb: float = 16000,
    gpus: list | None = None,
    cpu_features: list | None = None,
    hardware: Hardware | None = None,
    decode: float | None = 20.0,
    decode_std: float | None = 0.5,
    prefill: float | None = 400.0,
    prefill_std: float | None = 10.0,
    ttft: float | None = 30.0,
    ttft_std: float | None = 1.0,
    repeats: int = 3,
    verdict: str | None = "ok",
    samples: dict | None = None,
    weights_mb: float | None = 540.0,
    peak_mb: float | None = 900.0,
    load_s: float | None = 1.0,
    bandwidth_gb_s: float | None = None,
    bytes_per_token: int | None = None,
    efficiency: float | None = None,
    bandwidth_method: str | None = None,
    quality: dict | None = None,
    fidelity: Fidelity | None = None,
    estimated: list | None = None,
    timings_s: dict | None = None,
    duration_s: float | None = None,
) -> Record:
    """One record. A failed cell (status other than ok) measured nothing: its speed, memory and
    quality are empty whatever the keywords say. `hardware`, when given, is the whole machine
    section (e.g. `Hardware.from_json(profile.to_dict())`, as the worker records it) and the
    machine keywords are not used."""
    ok = status == "ok"
    mem_key = "peak_rss_mb" if device == "cpu" else "nvml_process_mb"
    rec = Record(
        schema=schema,
        cell=cell,
        run_id=run_id,
        timestamp=timestamp,
        status=status,
        error=error,
        config=Config(
            model=model,
            runtime=runtime,
            precision=precision,
            dtype="float32",
            device=device,
            weights=weights,
            suites=list(suites if suites is not None else (quality or {}).keys()),
            limit=limit,
            repeats=repeats,
            prompt_tokens=prompt_tokens,
            new_tokens=new_tokens,
            threads=threads,
            fault=fault,
            endpoint=endpoint,
            code_protocol=code_protocol,
        ),
        hardware=hardware
        or Hardware(
            fingerprint=fingerprint,
            speed_fingerprint=speed_fingerprint,
            memory_class=memory_class,
            cpu=cpu,
            cores=cores,
            ram_mb=ram_mb,
            gpus=gpus if gpus is not None else [],
            cpu_features=cpu_features if cpu_features is not None else ["avx2", "fma"],
        ),
        load=Load(load_s=load_s if ok else None),
        memory=Memory(weights_mb=weights_mb, **{mem_key: peak_mb}) if ok else Memory(),
        speed=Speed(
            decode_tok_s=None if decode is None else Figure(decode, decode_std, repeats),
            prefill_tok_s=None if prefill is None else Figure(prefill, prefill_std, repeats),
            ttft_ms=None if ttft is None else Figure(ttft, ttft_std, repeats),
            verdict=verdict,
            samples=samples,
        )
        if ok
        else Speed(),
        roofline=Roofline(
            bandwidth_gb_s=bandwidth_gb_s,
            bytes_per_token=bytes_per_token,
            efficiency=efficiency,
            bandwidth_method=bandwidth_method,
        ),
        quality=dict(quality or {}) if ok else {},
        fidelity=fidelity if ok else None,
        estimated=estimated,
        timings_s=timings_s,
        duration_s=duration_s,
    )
    return rec


# --- serve-bench: request timelines and the record built from them (as serve-bench does) ---------


def requests(n: int, ttft: float, gap: float, seed: int, tokens: int = 16) -> list[RequestResult]:
    """n requests one after another: TTFT around `ttft`, a token every `gap` seconds (+-10 %)."""
    rng, t, out = random.Random(seed), 0.0, []
    for _ in range(n):
        first = t + ttft * rng.uniform(0.9, 1.1)
        chunks = [first + i * gap * rng.uniform(0.9, 1.1) for i in range(tokens)]
        out.append(RequestResult(start=t, end=chunks[-1], first=first, chunk_times=chunks, output_tokens=tokens))
        t = chunks[-1]
    return out


def serving_record(
    levels: dict, *, run: str = "r", fingerprint: str = "s1", status: str = "ok", slo: dict | None = None
) -> Record:
    """One serve-bench record: the chat shape at each concurrency of `levels` (its requests)."""
    rows = [{"concurrency": c, **summarize_level(rs, slo=slo or {})} for c, rs in levels.items()]
    return Record(
        kind="serving",
        cell=f"serve|{run}",
        run_id=run,
        timestamp="2026-12-06T00:00:00",
        status=status,
        config=Config(
            kind="serving",
            model="smollm2-135m-instruct",
            runtime="llamacpp-server",
            precision="Q4_1",
            device="cpu",
            weights="pretrained",
            shape={"name": "chat"},
            mode="concurrency",
        ),
        hardware=Hardware(
            fingerprint="m1", memory_class="cpu-24gb", speed_fingerprint=fingerprint, cpu_features=["avx2"]
        ),
        serving={"levels": rows},
    )
