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


def temp_prefix(kind: str) -> str:
    """The name prefix of a temp folder this process owns ("mindbench-cell-<pid>-"), so that a
    later run can tell the folders of a process that was killed (-9 runs no cleanup) from live ones."""
    return f"mindbench-{kind}-{os.getpid()}-"


def remove_stale_temp_dirs(kind: str) -> int:
    """Remove the temp folders of `kind` whose owning process is gone; how many were removed.
    A pid that is running again (reused) keeps its folders: leftovers, never a live run's loss."""
    import shutil
    import tempfile

    removed = 0
    root = Path(tempfile.gettempdir())
    for d in root.glob(f"mindbench-{kind}-*-*"):
        pid = d.name.split("-")[2]
        if not (pid.isdigit() and d.is_dir()) or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
            continue
        except ProcessLookupError:
            pass
        except PermissionError:  # alive, someone else's
            continue
        shutil.rmtree(d, ignore_errors=True)
        removed += 1
    return removed
