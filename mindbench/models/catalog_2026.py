"""The 2026 catalog: models people pick now (code and chat, 1B to 120B, mixture-of-experts
included), from data/catalog_2026.json; mindbench.models.catalog merges them into CATALOG and adds
the published figures listed there to the older entries. Data only.

Their speed and memory are estimated from architecture shapes (mindbench.models.perf), not from
the transformers estimator's config files: the recommender plans them for a device in the table.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

DATA = Path(__file__).parent / "data" / "catalog_2026.json"
GGUF_QUANTS = ("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")


@functools.lru_cache(maxsize=1)
def data() -> dict:
    return json.loads(DATA.read_text())


def build(ModelSpec) -> list:
    out = []
    for m in data()["models"]:
        oss = m["id"].startswith("gpt-oss")
        out.append(
            ModelSpec(
                m["id"],
                "hub",
                repo=m["repo"],
                params_b=m["params_b"],
                arch=None,
                categories=tuple(m["categories"]),
                gated=m["gated"],
                chat=True,
                license=m["license"],
                gguf_repo=f"ggml-org/{m['id']}-GGUF" if oss else f"bartowski/{m['gguf']}-GGUF",
                gguf_pattern=(f"{m['id']}-{{quant}}.gguf" if oss else f"{m['gguf']}-{{quant}}.gguf"),
                gguf_quants=("MXFP4",) if oss else GGUF_QUANTS,
                published=tuple(m["published"]),
                notes=m["notes"],
                aliases=tuple(m["aliases"]),
            )
        )
    return out


def extra_published() -> dict[str, list[dict]]:
    """Published figures for models the older catalog already lists (EvalPlus, LiveCodeBench)."""
    return data()["extra_published"]
