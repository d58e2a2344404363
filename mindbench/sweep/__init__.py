"""sweep: see docs/architecture.md."""
