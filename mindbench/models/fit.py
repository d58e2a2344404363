"""Fit the estimator's efficiency factors to published llama.cpp measurements, and score it on the rest.

    rows = published()                      data/llama_bench_published.csv, one speed row each
    fit = fit_factors(train)                per (backend, weight family[, single/multi GPU]) group
    report = evaluate(test, fit)            median / p90 |error| for decode and prefill, per class

The split is by *device*: a device is held out whole (sha1 of its name, mod 3 == 0), so the
held-out error is the error on hardware the fit never saw - the case `--gpu NAME` is for.
benchmarks/fit_estimator.py runs it and writes data/efficiency_fit.json (the factors
mindbench.models.perf predicts with). Pure Python: a grid search, no numpy.
"""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import dataclass

from mindbench.models.devices import Device, lookup
from mindbench.models.perf import DATA, Shape, format_of, group_keys, predict, quantile, shape

PUBLISHED = DATA / "llama_bench_published.csv"
MIN_ROWS = 3  # a group needs this many training rows to get its own factors


@dataclass
class Row:
    device: Device  # with .count set
    backend: str
    model: str
    quant: str
    pp: float | None
    tg: float | None
    decode_at: int  # tokens cached on average while the tg figure was taken
    source: str
    klass: str  # device class for the error table (cpu when llama.cpp ran on the CPU)

    @property
    def shape(self) -> Shape:
        return shape(self.model)


def _decode_at(test: str) -> int:
    if test.startswith("tg512"):
        return 512 // 2 + 256  # main -n 512 after a prompt of a few hundred tokens
    if test.startswith("tg128"):
        return 64
    if test.startswith("tg64"):
        return 32
    return 128


# Rows kept in the table but not fitted or scored, and why (the reason is printed with the error table).
SKIPPED_WHY = (
    "multi-GPU runs from 2023: llama.cpp then split every matrix across the cards by default "
    "(3090 x6 ran a 7B model at 23 % of one card's speed); since 2024 it splits by layer, which "
    "is what the estimator models"
)


def published(skipped: list | None = None) -> list[Row]:
    rows = []
    with open(PUBLISHED, newline="") as f:
        for r in csv.DictReader(f):
            dev = lookup(r["device"])
            n = int(r["n_devices"] or 1)
            if n > 1 and r["date"] < "2024":
                if skipped is not None:
                    skipped.append(r)
                continue
            if n > 1:
                dev = lookup(f"{n}x {r['device']}")
            num = lambda k: float(r[k]) if r[k] else None
            rows.append(
                Row(
                    device=dev,
                    backend=r["backend"],
                    model=r["model"],
                    quant=r["quant"],
                    pp=num("pp_tok_s"),
                    tg=num("tg_tok_s"),
                    decode_at=_decode_at(r["tg_test"] or ""),
                    source=r["source"],
                    klass="cpu" if r["backend"] == "cpu" else dev.cls,
                )
            )
    return rows


def held_out(device_name: str) -> bool:
    return int(hashlib.sha1(device_name.encode()).hexdigest(), 16) % 3 == 0


def split(rows: list[Row]) -> tuple[list[Row], list[Row]]:
    train = [r for r in rows if not held_out(r.device.name)]
    test = [r for r in rows if held_out(r.device.name)]
    return train, test


def _key_rows(rows: list[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for r in rows:
        for k in group_keys(r.backend, format_of(r.quant).family, r.device.count > 1, r.device.cls):
            out.setdefault(k, []).append(r)
    return out


def _decode_terms(r: Row) -> tuple[float, float]:
    """(bytes/bandwidth seconds, layers) of a row: decode time = a / e_bw + layers * t_layer."""
    from mindbench.models.perf import decode_bytes

    nbytes = decode_bytes(r.shape, format_of(r.quant), r.decode_at)
    return nbytes / (r.device.bandwidth_gb_s * 1e9), r.shape.layers


def _fit_decode(rows: list[Row]) -> tuple[float, float]:
    """e_bw and t_layer (µs) minimising the mean |log(estimate / measured)| (grid, then refined)."""
    terms = [(*_decode_terms(r), r.tg) for r in rows if r.tg]

    def loss(e, t_us):
        return sum(abs(math.log((a / e + layers * t_us * 1e-6) * tg)) for a, layers, tg in terms) / len(terms)

    best = min((loss(e / 100, t), e / 100, t) for e in range(5, 101, 2) for t in range(0, 301, 10))
    _, e0, t0 = best
    best = min(
        (loss(e, t), e, t)
        for e in [max(0.01, e0 + d / 1000) for d in range(-20, 21, 2)]
        for t in [max(0.0, t0 + d) for d in range(-10, 11, 1)]
    )
    return round(best[1], 3), round(best[2], 1)


def _pp_terms(r: Row) -> tuple[float, float]:
    """(log of the device's fp16 TFLOPS, log of the measured FLOP/s in TFLOPS) of a prefill row."""
    flops = 2 * (r.shape.active_body_params + r.shape.embed_params)
    return math.log(r.device.fp16_tflops * r.device.count), math.log(r.pp * flops / 1e12)


def _fit_alpha(rows: list[Row]) -> float:
    """Exponent of prefill in compute: big tensor-core GPUs reach a smaller share of their peak
    (llama.cpp's kernels are not tuned to them), so achieved ~ peak^alpha, alpha < 1. Least
    squares on logs over the backend's rows, clamped to [0.3, 1]."""
    pts = [_pp_terms(r) for r in rows if r.pp]
    if len(pts) < 4:
        return 1.0
    mx = sum(x for x, _ in pts) / len(pts)
    my = sum(y for _, y in pts) / len(pts)
    sxx = sum((x - mx) ** 2 for x, _ in pts)
    if sxx < 1e-9:
        return 1.0
    return round(min(1.0, max(0.3, sum((x - mx) * (y - my) for x, y in pts) / sxx)), 3)


def _fit_prefill(rows: list[Row], alpha: float) -> float:
    """e_pp: the median over rows of achieved TFLOPS / peak^alpha (a robust log-space fit)."""
    logs = [y - alpha * x for x, y in (_pp_terms(r) for r in rows if r.pp)]
    return round(math.exp(quantile(logs, 0.5)), 4) if logs else 0.3


def fit_factors(train: list[Row]) -> dict:
    groups = {}
    alphas = {b: _fit_alpha([r for r in train if r.backend == b]) for b in {r.backend for r in train}}
    alphas["all"] = _fit_alpha(train)
    for key, rows in _key_rows(train).items():
        alpha = alphas.get(key.split("|")[0], alphas["all"])
        tg_rows = [r for r in rows if r.tg]
        pp_rows = [r for r in rows if r.pp]
        if len(tg_rows) < MIN_ROWS and key != "all":
            continue
        e_bw, t_layer = _fit_decode(tg_rows) if tg_rows else (0.6, 20.0)
        groups[key] = {
            "e_bw": e_bw,
            "t_layer_us": t_layer,
            "pp_alpha": alpha,
            "e_pp": _fit_prefill(pp_rows, alpha) if len(pp_rows) >= MIN_ROWS or key == "all" else None,
            "n": len(tg_rows),
            "n_pp": len(pp_rows),
        }
    # a group with decode data but too few prefill rows takes its parent's e_pp
    for key, g in groups.items():
        if g["e_pp"] is None:
            parents = [
                k
                for k in (key.rsplit("|", 1)[0], key.split("|")[0], "all")
                if k in groups and k != key and groups[k]["e_pp"] is not None
            ]
            g["e_pp"] = groups[parents[0]]["e_pp"]
    return {"groups": groups}


@dataclass
class Err:
    row: Row
    figure: str  # decode | prefill
    measured: float
    estimated: float

    @property
    def pct(self) -> float:
        return 100 * (self.estimated - self.measured) / self.measured


def errors(rows: list[Row], fit: dict) -> list[Err]:
    out = []
    for r in rows:
        p = predict(
            r.shape,
            r.quant,
            r.device,
            runtime="llamacpp",
            context=r.decode_at + 1,
            decode_at=r.decode_at,
            fit=fit,
            backend=r.backend,
        )
        if r.tg:
            out.append(Err(r, "decode", r.tg, p.decode_tok_s))
        if r.pp:
            out.append(Err(r, "prefill", r.pp, p.prefill_tok_s))
    return out


def summarize(errs: list[Err]) -> list[dict]:
    """Per figure and device class (and over all): n, median and p90 |error| %, worst row."""
    out = []
    for fig in ("decode", "prefill"):
        sel = [e for e in errs if e.figure == fig]
        classes = sorted({e.row.klass for e in sel})
        for cls in classes + ["all"]:
            xs = [e for e in sel if cls == "all" or e.row.klass == cls]
            if not xs:
                continue
            a = [abs(e.pct) for e in xs]
            worst = max(xs, key=lambda e: abs(e.pct))
            out.append(
                {
                    "figure": fig,
                    "class": cls,
                    "n": len(xs),
                    "median_abs_pct": round(quantile(a, 0.5), 1),
                    "p90_abs_pct": round(quantile(a, 0.9), 1),
                    "worst_pct": round(worst.pct, 1),
                    "worst": f"{worst.row.device.label} {worst.row.backend} {worst.row.model} {worst.row.quant}",
                }
            )
    return out


def run(rows: list[Row] | None = None) -> dict:
    """Fit on the training devices, score on the held-out ones: the estimator's published-table check."""
    skipped: list = []
    rows = published(skipped) if rows is None else rows
    train, test = split(rows)
    fit = fit_factors(train)
    fit["split"] = {
        "train_devices": sorted({r.device.name for r in train}),
        "test_devices": sorted({r.device.name for r in test}),
        "rule": "a device is held out when int(sha1(name), 16) % 3 == 0",
        "train_rows": len(train),
        "test_rows": len(test),
    }
    fit["skipped"] = {"rows": len(skipped), "why": SKIPPED_WHY}
    return {"fit": fit, "held_out": summarize(errors(test, fit)), "train": summarize(errors(train, fit))}


def render(summary: list[dict]) -> str:
    from tabulate import tabulate

    return tabulate(
        [
            [s["figure"], s["class"], s["n"], s["median_abs_pct"], s["p90_abs_pct"], s["worst_pct"], s["worst"]]
            for s in summary
        ],
        headers=["figure", "device class", "n", "median |err| %", "p90 |err| %", "worst %", "worst row"],
    )


def against_records(records: list, dev: Device) -> list[dict]:
    """The hardware estimator against this machine's own llama.cpp records (decode tok/s of quiet,
    ok runs; `dev` is this machine as a table row): what `estimate` without --gpu would have said.
    `records` are the store's `Record`s, read by attribute (the store sits above this module)."""
    from mindbench.models.perf import shape_of

    rows = []
    for r in records:
        cfg = r.config
        dec = r.speed.figure("decode_tok_s").value
        s = shape_of(cfg.model or "")
        if cfg.runtime != "llamacpp" or r.status != "ok" or not dec or s is None or not r.speed_usable:
            continue
        prompt, new = cfg.prompt_tokens or 512, cfg.new_tokens or 128
        p = predict(s, cfg.precision, dev, runtime="llamacpp", context=prompt + new, decode_at=prompt + new // 2)
        rows.append(
            {
                "record": f"{cfg.model} {cfg.precision}",
                "measured": round(dec, 2),
                "estimated": round(p.decode_tok_s, 2),
                "error_pct": round(100 * (p.decode_tok_s - dec) / dec, 1),
            }
        )
    return rows
