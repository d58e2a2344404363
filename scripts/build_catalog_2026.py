"""Writes mindbench/models/data/catalog_2026.json: architecture shapes (Hub config.json values, MoE counts) and the
2026 catalog entries with published figures and sources. Edit here and rerun; the JSON is what mindbench reads."""

import json


def dense(L, H, nh, kv, I, V, tied=False, hd=None, window=None, n_global=None, ctx=None):
    d = {
        "layers": L,
        "hidden": H,
        "heads": nh,
        "kv_heads": kv,
        "head_dim": hd or H // nh,
        "intermediate": I,
        "vocab": V,
        "tied": tied,
    }
    if window:
        d.update(sliding_window=window, global_layers=n_global)
    if ctx:
        d["max_context"] = ctx
    return d


def moe(
    L,
    H,
    nh,
    kv,
    hd,
    E,
    k,
    Ie,
    V,
    tied=False,
    shared=0,
    dense_layers=0,
    dense_I=0,
    window=None,
    n_global=None,
    ctx=None,
    kv_per_layer=None,
):
    d = dense(L, H, nh, kv, 0, V, tied, hd, window, n_global, ctx)
    d.update(
        experts=E,
        experts_active=k,
        expert_intermediate=Ie,
        shared_experts=shared,
        dense_layers=dense_layers,
        dense_intermediate=dense_I,
    )
    if kv_per_layer:
        d["kv_elems_per_layer"] = kv_per_layer
    return d


SHAPES = {
    # reference models of the published speed table (Hub config.json values)
    "llama-7b": dense(32, 4096, 32, 32, 11008, 32000, ctx=2048),
    "llama-2-7b": dense(32, 4096, 32, 32, 11008, 32000, ctx=4096),
    "llama-13b": dense(40, 5120, 40, 40, 13824, 32000, ctx=2048),
    "llama-2-13b": dense(40, 5120, 40, 40, 13824, 32000, ctx=4096),
    "llama-30b": dense(60, 6656, 52, 52, 17920, 32000, ctx=2048),
    "llama-65b": dense(80, 8192, 64, 64, 22016, 32000, ctx=2048),
    "llama-2-70b": dense(80, 8192, 64, 8, 28672, 32000, ctx=4096),
    "llama-3-8b": dense(32, 4096, 32, 8, 14336, 128256, ctx=8192),
    "llama-3.1-8b": dense(32, 4096, 32, 8, 14336, 128256, ctx=131072),
    "llama-3-70b": dense(80, 8192, 64, 8, 28672, 128256, ctx=8192),
    "llama-3.3-70b": dense(80, 8192, 64, 8, 28672, 128256, ctx=131072),
    "llama-3.2-1b": dense(16, 2048, 32, 8, 8192, 128256, tied=True, hd=64, ctx=131072),
    "llama-3.2-3b": dense(28, 3072, 24, 8, 8192, 128256, tied=True, hd=128, ctx=131072),
    "tinyllama-1.1b": dense(22, 2048, 32, 4, 5632, 32000, ctx=2048),
    "mistral-7b": dense(32, 4096, 32, 8, 14336, 32000, ctx=32768),
    # the 2026 catalog
    "qwen2.5-coder-0.5b": dense(24, 896, 14, 2, 4864, 151936, tied=True, ctx=32768),
    "qwen2.5-coder-1.5b": dense(28, 1536, 12, 2, 8960, 151936, tied=True, ctx=32768),
    "qwen2.5-coder-3b": dense(36, 2048, 16, 2, 11008, 151936, tied=True, ctx=32768),
    "qwen2.5-coder-7b": dense(28, 3584, 28, 4, 18944, 152064, ctx=32768),
    "qwen2.5-coder-14b": dense(48, 5120, 40, 8, 13824, 152064, ctx=32768),
    "qwen2.5-coder-32b": dense(64, 5120, 40, 8, 27648, 152064, ctx=32768),
    "qwen3-0.6b": dense(28, 1024, 16, 8, 3072, 151936, tied=True, hd=128, ctx=40960),
    "qwen3-1.7b": dense(28, 2048, 16, 8, 6144, 151936, tied=True, hd=128, ctx=40960),
    "qwen3-4b": dense(36, 2560, 32, 8, 9728, 151936, tied=True, hd=128, ctx=40960),
    "qwen3-8b": dense(36, 4096, 32, 8, 12288, 151936, hd=128, ctx=40960),
    "qwen3-14b": dense(40, 5120, 40, 8, 17408, 151936, hd=128, ctx=40960),
    "qwen3-32b": dense(64, 5120, 64, 8, 25600, 151936, hd=128, ctx=40960),
    "qwen3-30b-a3b": moe(48, 2048, 32, 4, 128, 128, 8, 768, 151936, ctx=40960),
    "qwen3-coder-30b-a3b": moe(48, 2048, 32, 4, 128, 128, 8, 768, 151936, ctx=262144),
    "gpt-oss-20b": moe(24, 2880, 64, 8, 64, 32, 4, 2880, 201088, window=128, n_global=12, ctx=131072),
    "gpt-oss-120b": moe(36, 2880, 64, 8, 64, 128, 4, 2880, 201088, window=128, n_global=18, ctx=131072),
    "gemma-3-1b": dense(26, 1152, 4, 1, 6912, 262144, tied=True, hd=256, window=512, n_global=4, ctx=32768),
    "gemma-3-4b": dense(34, 2560, 8, 4, 10240, 262208, tied=True, hd=256, window=1024, n_global=5, ctx=131072),
    "gemma-3-12b": dense(48, 3840, 16, 8, 15360, 262208, tied=True, hd=256, window=1024, n_global=8, ctx=131072),
    "gemma-3-27b": dense(62, 5376, 32, 16, 21504, 262208, tied=True, hd=128, window=1024, n_global=10, ctx=131072),
    "phi-4": dense(40, 5120, 40, 10, 17920, 100352, ctx=16384),
    "phi-4-mini": dense(32, 3072, 24, 8, 8192, 200064, tied=True, ctx=131072),
    "mistral-small-3.1-24b": dense(40, 5120, 32, 8, 32768, 131072, hd=128, ctx=131072),
    # DeepSeek-V2-Lite: MLA caches a 512-dim latent + 64 rope dims per layer; first layer dense
    "deepseek-coder-v2-lite": moe(
        27,
        2048,
        16,
        16,
        192,
        64,
        6,
        1408,
        102400,
        shared=2,
        dense_layers=1,
        dense_I=10944,
        ctx=163840,
        kv_per_layer=576,
    ),
}
QC = "https://arxiv.org/abs/2409.12186"  # Qwen2.5-Coder Technical Report, instruct models table
Q3 = "https://arxiv.org/abs/2505.09388"  # Qwen3 Technical Report
G3 = "https://arxiv.org/abs/2503.19786"  # Gemma 3 Technical Report, instruction-tuned table
DS = "https://arxiv.org/abs/2406.11931"  # DeepSeek-Coder-V2 paper
OSS = "https://arxiv.org/abs/2508.10925"  # gpt-oss-120b & gpt-oss-20b model card


def p(b, s, protocol, src):
    d = {"benchmark": b, "score": s, "protocol": protocol, "source": src}
    if src != QC:
        d["unverified"] = True  # transcribed from the cited source, not re-read when this file was written
    return d


LCB_QC = "LiveCodeBench (2407-2409)"


def qc(he, hep, mb, mbp, lcb, checked=True):
    out = [
        p("HumanEval", he, "pass@1, greedy, the makers' harness", QC),
        p("HumanEval+", hep, "EvalPlus, pass@1, greedy", QC),
        p("MBPP", mb, "pass@1, greedy, the makers' harness", QC),
        p("MBPP+", mbp, "EvalPlus, pass@1, greedy", QC),
    ]
    if lcb is not None:
        out.append(p(LCB_QC, lcb, "pass@1, problems 2024-07 to 2024-09", QC))
    for d in out if not checked else ():
        d["unverified"] = True
    return out


def g3(he, mbpp, lcb):
    return [
        p("HumanEval", he, "pass@1, instruction-tuned, the makers' harness", G3),
        p("MBPP", mbpp, "pass@1, 3-shot", G3),
        p("LiveCodeBench", lcb, "the makers' window, as in the report", G3),
    ]


def m(id, repo, shape, params_b, active_b, cats, licence, gguf, *, published=(), gated=False, notes="", aliases=()):
    return {
        "id": id,
        "repo": repo,
        "shape": shape,
        "params_b": params_b,
        "active_params_b": active_b,
        "categories": cats,
        "license": licence,
        "gated": gated,
        "gguf": gguf,
        "published": list(published),
        "notes": notes,
        "aliases": list(aliases),
    }


MODELS = [
    m(
        "qwen2.5-coder-3b-instruct",
        "Qwen/Qwen2.5-Coder-3B-Instruct",
        "qwen2.5-coder-3b",
        3.09,
        None,
        ["code", "data"],
        "qwen-research (non-commercial)",
        "Qwen2.5-Coder-3B-Instruct",
        published=qc(84.1, 80.5, 73.6, 62.4, None, checked=False),
    ),
    m(
        "qwen2.5-coder-32b-instruct",
        "Qwen/Qwen2.5-Coder-32B-Instruct",
        "qwen2.5-coder-32b",
        32.76,
        None,
        ["code", "data"],
        "apache-2.0",
        "Qwen2.5-Coder-32B-Instruct",
        published=qc(92.7, 87.2, 90.2, 75.1, 31.4),
    ),
    m(
        "qwen3-1.7b",
        "Qwen/Qwen3-1.7B",
        "qwen3-1.7b",
        1.72,
        None,
        ["chat", "reasoning"],
        "apache-2.0",
        "Qwen_Qwen3-1.7B",
        notes="hybrid thinking / non-thinking chat model",
    ),
    m(
        "qwen3-32b",
        "Qwen/Qwen3-32B",
        "qwen3-32b",
        32.8,
        None,
        ["chat", "reasoning", "code"],
        "apache-2.0",
        "Qwen_Qwen3-32B",
        published=[p("LiveCodeBench v5", 65.7, "thinking mode, problems 2024-10 to 2025-02", Q3)],
        notes="hybrid thinking / non-thinking chat model",
    ),
    m(
        "qwen3-30b-a3b",
        "Qwen/Qwen3-30B-A3B",
        "qwen3-30b-a3b",
        30.5,
        3.3,
        ["chat", "reasoning", "code"],
        "apache-2.0",
        "Qwen_Qwen3-30B-A3B",
        published=[p("LiveCodeBench v5", 62.6, "thinking mode, problems 2024-10 to 2025-02", Q3)],
        notes="mixture of experts: 128 experts, 8 active per token (3.3B active)",
    ),
    m(
        "qwen3-coder-30b-a3b-instruct",
        "Qwen/Qwen3-Coder-30B-A3B-Instruct",
        "qwen3-coder-30b-a3b",
        30.5,
        3.3,
        ["code", "data"],
        "apache-2.0",
        "Qwen_Qwen3-Coder-30B-A3B-Instruct",
        notes="mixture of experts (3.3B active); agentic coding model, 256k context; no sourced pass@1 figure here",
    ),
    m(
        "gpt-oss-20b",
        "openai/gpt-oss-20b",
        "gpt-oss-20b",
        20.9,
        3.6,
        ["chat", "reasoning", "code"],
        "apache-2.0",
        "openai_gpt-oss-20b",
        published=[
            p("SWE-bench Verified", 60.7, "high reasoning effort", OSS),
            p("MMLU", 85.3, "high reasoning effort", OSS),
        ],
        notes="mixture of experts, 32 experts, 4 active (3.6B active); experts ship in MXFP4 (4.25 bits)",
    ),
    m(
        "gpt-oss-120b",
        "openai/gpt-oss-120b",
        "gpt-oss-120b",
        116.8,
        5.1,
        ["chat", "reasoning", "code"],
        "apache-2.0",
        "openai_gpt-oss-120b",
        published=[
            p("SWE-bench Verified", 62.4, "high reasoning effort", OSS),
            p("MMLU", 90.0, "high reasoning effort", OSS),
        ],
        notes="mixture of experts, 128 experts, 4 active (5.1B active); experts ship in MXFP4 (4.25 bits)",
    ),
    m(
        "gemma-3-27b-it",
        "google/gemma-3-27b-it",
        "gemma-3-27b",
        27.0,
        None,
        ["chat", "reasoning", "code"],
        "gemma",
        "google_gemma-3-27b-it",
        gated=True,
        published=g3(87.8, 74.4, 29.7),
        notes="multimodal checkpoint; the text decoder only",
    ),
    m(
        "llama-3.1-70b-instruct",
        "meta-llama/Llama-3.1-70B-Instruct",
        "llama-3.3-70b",
        70.6,
        None,
        ["chat", "reasoning", "code"],
        "llama3.1",
        "Meta-Llama-3.1-70B-Instruct",
        gated=True,
        published=[
            p(
                "HumanEval",
                80.5,
                "pass@1, 0-shot, as on the model card",
                "https://huggingface.co/meta-llama/Llama-3.1-70B-Instruct",
            ),
            p(
                "MBPP+",
                86.0,
                "EvalPlus base version, as on the model card",
                "https://huggingface.co/meta-llama/Llama-3.1-70B-Instruct",
            ),
        ],
    ),
    m(
        "llama-3.3-70b-instruct",
        "meta-llama/Llama-3.3-70B-Instruct",
        "llama-3.3-70b",
        70.6,
        None,
        ["chat", "reasoning", "code"],
        "llama3.3",
        "Llama-3.3-70B-Instruct",
        gated=True,
        published=[
            p(
                "HumanEval",
                88.4,
                "pass@1, 0-shot, as on the model card",
                "https://huggingface.co/meta-llama/Llama-3.3-70B-Instruct",
            ),
            p(
                "MBPP+",
                87.6,
                "EvalPlus base version, as on the model card",
                "https://huggingface.co/meta-llama/Llama-3.3-70B-Instruct",
            ),
        ],
    ),
    m(
        "phi-4",
        "microsoft/phi-4",
        "phi-4",
        14.7,
        None,
        ["chat", "reasoning", "code"],
        "mit",
        "phi-4",
        published=[
            p("HumanEval", 82.6, "pass@1, as in the report", "https://arxiv.org/abs/2412.08905"),
            p("HumanEval+", 82.8, "pass@1, as in the report", "https://arxiv.org/abs/2412.08905"),
        ],
    ),
    m(
        "mistral-small-3.1-24b-instruct",
        "mistralai/Mistral-Small-3.1-24B-Instruct-2503",
        "mistral-small-3.1-24b",
        24.0,
        None,
        ["chat", "reasoning", "code"],
        "apache-2.0",
        "mistralai_Mistral-Small-3.1-24B-Instruct-2503",
        published=[
            p(
                "HumanEval",
                88.41,
                "pass@1, as on the model card",
                "https://huggingface.co/mistralai/Mistral-Small-3.1-24B-Instruct-2503",
            )
        ],
        notes="multimodal checkpoint; the text decoder only",
    ),
    m(
        "devstral-small-2507",
        "mistralai/Devstral-Small-2507",
        "mistral-small-3.1-24b",
        23.6,
        None,
        ["code"],
        "apache-2.0",
        "mistralai_Devstral-Small-2507",
        published=[
            p(
                "SWE-bench Verified",
                53.6,
                "OpenHands scaffold, as on the model card",
                "https://huggingface.co/mistralai/Devstral-Small-2507",
            )
        ],
        notes="agentic coding model fine-tuned from Mistral Small 3.1",
    ),
    m(
        "deepseek-coder-v2-lite-instruct",
        "deepseek-ai/DeepSeek-Coder-V2-Lite-Instruct",
        "deepseek-coder-v2-lite",
        15.7,
        2.4,
        ["code", "data"],
        "deepseek (commercial use allowed)",
        "DeepSeek-Coder-V2-Lite-Instruct",
        published=[
            p("HumanEval", 81.1, "pass@1, as in the paper", DS),
            p("MBPP+", 68.8, "EvalPlus, as in the paper", DS),
            p("LiveCodeBench", 24.3, "problems 2023-12 to 2024-06, as in the paper", DS),
        ],
        notes="mixture of experts: 64 routed + 2 shared experts, 6 active (2.4B active); multi-head latent attention",
    ),
]
# Published figures for models already in the catalog (merged by id; the catalog keeps its own entries)
EXTRA_PUBLISHED = {
    "qwen2.5-coder-0.5b-instruct": qc(61.6, 57.3, 52.4, 43.7, 5.5),
    "qwen2.5-coder-1.5b-instruct": qc(70.7, 66.5, 69.2, 59.4, 15.7),
    "qwen2.5-coder-7b-instruct": qc(88.4, 84.1, 83.5, 71.7, 18.2),
    "qwen2.5-coder-14b-instruct": qc(89.6, 87.2, 86.2, 72.8, 23.4),
    "gemma-3-1b-it": g3(41.5, 35.2, 1.9),
    "gemma-3-4b-it": g3(71.3, 63.2, 12.6),
    "gemma-3-12b-it": g3(85.4, 73.0, 24.6),
    "llama-3.1-8b-instruct": [
        p(
            "HumanEval",
            72.6,
            "pass@1, 0-shot, as on the model card",
            "https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct",
        ),
        p(
            "MBPP+",
            72.8,
            "EvalPlus base version, as on the model card",
            "https://huggingface.co/meta-llama/Llama-3.1-8B-Instruct",
        ),
    ],
}
SHAPE_OF_EXISTING = {
    "qwen2.5-coder-0.5b-instruct": "qwen2.5-coder-0.5b",
    "qwen2.5-coder-1.5b-instruct": "qwen2.5-coder-1.5b",
    "qwen2.5-coder-7b-instruct": "qwen2.5-coder-7b",
    "qwen2.5-coder-14b-instruct": "qwen2.5-coder-14b",
    "qwen3-0.6b": "qwen3-0.6b",
    "qwen3-4b": "qwen3-4b",
    "qwen3-8b": "qwen3-8b",
    "qwen3-14b": "qwen3-14b",
    "llama-3.2-1b-instruct": "llama-3.2-1b",
    "llama-3.2-3b-instruct": "llama-3.2-3b",
    "llama-3.1-8b-instruct": "llama-3.1-8b",
    "gemma-3-1b-it": "gemma-3-1b",
    "gemma-3-4b-it": "gemma-3-4b",
    "gemma-3-12b-it": "gemma-3-12b",
    "phi-4-mini-instruct": "phi-4-mini",
    "mistral-7b-instruct-v0.3": "mistral-7b",
    "deepseek-r1-distill-llama-8b": "llama-3.1-8b",
}
out = {
    "about": "Architecture shapes for the hardware estimator (mindbench.models.perf; values of each model's Hub config.json, "
    "mixture-of-experts counts included) and the 2026 catalog entries with published figures and their sources. "
    "Scores are as the makers report them, with their protocols; never compared with scores measured here. Figures marked unverified were transcribed from the cited source but not re-read against it when this file was written (the Qwen2.5-Coder figures were checked against the report and the issue that asked for them).",  # noqa: E501
    "shapes": SHAPES,
    "models": MODELS,
    "extra_published": EXTRA_PUBLISHED,
    "shape_of": SHAPE_OF_EXISTING,
}
json.dump(
    out,
    open(__import__("pathlib").Path(__file__).parents[1] / "mindbench/models/data/catalog_2026.json", "w"),
    indent=1,
)
print(len(SHAPES), len(MODELS))
