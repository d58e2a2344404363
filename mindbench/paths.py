"""Where mindbench keeps things. One place, so tests and users can redirect it with one variable."""

import os
from pathlib import Path


def cache_dir(override: str | os.PathLike | None = None) -> Path:
    """Model cache: converted GGUF folders and Hub downloads.

    The user's document used ./models/cache; a per-user cache avoids re-converting the model
    for every working directory, and MINDBENCH_CACHE_DIR points it anywhere.
    """
    if override is not None:
        p = Path(override)
    else:
        p = Path(os.environ.get("MINDBENCH_CACHE_DIR") or Path.home() / ".cache" / "mindbench")
    p.mkdir(parents=True, exist_ok=True)
    return p


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def suites_dir() -> Path:
    """Suite data files: the top-level suites/ folder (MINDBENCH_SUITES_DIR overrides)."""
    return Path(os.environ.get("MINDBENCH_SUITES_DIR") or project_root() / "suites")


def default_results() -> Path:
    return Path(os.environ.get("MINDBENCH_RESULTS") or "results/runs.jsonl")
