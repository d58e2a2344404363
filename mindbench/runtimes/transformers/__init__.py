"""runtimes/transformers: see docs/architecture.md."""
