"""present: see docs/architecture.md."""
