"""`mindbench recommend`'s text: one row per task's pick (model, runtime, precision, quality,
memory, speed, and the evidence tier of each), then, for one task, why it was chosen, what was
left out and what to measure next. The decision itself is decide/recommend.py's."""

from __future__ import annotations

from mindbench.decide.recommend import Candidate, Recommendation, _speed
from mindbench.decide.recommend import quality_text as _fmt_q
from mindbench.models.hardware import HardwareProfile


def _row(c: Candidate) -> list:
    return [
        c.model,
        "" if c.params_b is None else c.params_b,
        c.runtime,
        c.precision,
        _fmt_q(c),
        f"{c.memory_mb / 1024:.2f}",
        "" if c.decode_tok_s is None else f"{c.decode_tok_s:.1f}" if c.decode_tok_s >= 1 else f"{c.decode_tok_s:.2f}",
        _tiers(c),
    ]


def _tiers(c: Candidate) -> str:
    """Evidence tier of each figure: quality / memory / speed (mindbench.decide.evidence.TIERS)."""
    from mindbench.decide.evidence import tier

    q = (c.quality or {}).get("source") if c.score is not None else ("published" if c.published else "none")
    return " / ".join("—" if x == "none" else tier(x) for x in (q, c.memory_source, c.speed_source))


HEAD = [
    "model",
    "params B",
    "runtime",
    "precision",
    "quality",
    "memory GiB",
    "decode tok/s",
    "evidence (quality / memory / speed)",
]


def render(recs: list[Recommendation], hw: HardwareProfile, files: list[str], detail: bool) -> str:
    from tabulate import tabulate

    r0 = recs[0]
    out = [
        f"machine: {hw.name} ({hw.device}, {hw.memory_mb / 1024:.1f} GiB, memory class {hw.memory_class}, "
        f"fingerprint {hw.fingerprint}); budget {r0.budget_mb / 1024:.1f} GiB; "
        f"bandwidth {r0.bandwidth['gb_s']:g} GB/s [{r0.bandwidth['source']}]",
        f"results: {r0.evidence['here']} records from this machine, {r0.evidence['similar']} from similar "
        f"hardware, {r0.evidence['ignored']} ignored" + (f" ({', '.join(files)})" if files else " (no result files)"),
        "",
    ]
    rows = [[r.task] + (_row(r.chosen) if r.chosen else ["nothing fits"] + [""] * 7) for r in recs]
    out.append(tabulate(rows, headers=["task"] + HEAD))
    if len(recs) > 1 and not detail:  # (the one-task view says it among the why)
        notes = [f"{r.task}: {r.if_installed['message']}" for r in recs if r.if_installed]
        notes += [f"{r.task}: {r.chosen.install_note()}" for r in recs if r.chosen and r.chosen.install_note()]
        out += [""] + notes if notes else []
    for r in recs:
        if not detail and len(recs) > 1:
            continue
        out += ["", f"{r.task}: " + (r.chosen.label() if r.chosen else "nothing fits")]
        out += [f"  - {w}" for w in r.why]
        if r.decided_by:
            out.append(f"  decided by: {', '.join(dict.fromkeys(r.decided_by))}")
        if r.published_alerts:
            out += ["", "stronger on published evidence (unmeasured here; --prefer published chooses it):"]
            out += [f"  - {a['message']}" for a in r.published_alerts]
        if r.runners_up:
            out += ["", "runners-up:", tabulate([_row(c) for c in r.runners_up], headers=HEAD)]
        if r.pareto:
            out += [
                "",
                f"Pareto front (quality = {r.pareto_quality}; vs memory and speed):",
                tabulate([_row(c) for c in r.pareto], headers=HEAD),
            ]
        if r.to_measure:
            out += ["", "larger models that fit but were never scored here (measure them):"]
            out += [
                f"  mindbench run --model {c.model} --precision {c.precision} --suite {r.task}   "
                f"# ~{c.memory_mb / 1024:.1f} GiB, ~{_speed(c):.1f} tok/s estimated"
                for c in r.to_measure
            ]
        if r.served:
            out += [
                "",
                "served by endpoints (measured through their API, on the server's own hardware: shown beside "
                "this machine's configurations, never ranked against them):",
                tabulate(
                    [
                        [
                            d["model"],
                            d["endpoint"],
                            d["server"],
                            f"{d['quality']['metric']} {d['quality']['score']:.1f} ± {d['quality']['stderr']:.1f} "
                            f"(n={d['quality']['n']})",
                            "" if d["decode_tok_s"] is None else f"{d['decode_tok_s']:.1f}",
                        ]
                        for d in r.served
                    ],
                    headers=["model", "endpoint", "server", "quality", "decode tok/s"],
                ),
            ]
        if r.excluded:
            out.append(
                f"\nexcluded: {len(r.excluded)} configurations, e.g. "
                + "; ".join(f"{c.label()}: {c.excluded}" for c in r.excluded[:3])
            )
    if len(recs) > 1 and not detail:
        out += ["", "why, runners-up and the Pareto front: mindbench recommend --task TASK"]
    return "\n".join(out)
