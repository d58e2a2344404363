"""runtimes/llamacpp: see docs/architecture.md."""
