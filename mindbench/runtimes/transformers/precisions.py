"""The transformers runtime's precision vocabulary, widest first (the quality tiers): said once, read by
the runtime (runtime.py) and the loader (loading.py) alike."""

PRECISIONS = ("fp32", "bf16", "fp16", "int8", "int4")
