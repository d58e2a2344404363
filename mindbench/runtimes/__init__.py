"""Runtimes: the same Engine interface over transformers and llama.cpp, and the registry that is
the ONE place listing them.

Each runtime module exports a `Runtime` (runtimes/base.py) that owns its precisions, devices,
per-process set-up, loading and estimator hooks. The harness, worker, provider, recommender and
evidence code ask the registry (`get_runtime`, `runtime_names`, `runtime_for`) and never branch
on a runtime's name, so a runtime added here is usable everywhere at once.

Adding one without editing mindbench: a package declares an entry point in the group
`mindbench.runtimes` (name = "module:attr"), or a process sets MINDBENCH_PLUGINS to
"module:function[,module:function]" (functions called once, before the first look-up; the
variable reaches every worker process, so registrations made there travel with the sweep), or
a test calls `register_runtime`.
"""

from __future__ import annotations

import importlib
import os

from mindbench.runtimes.base import Engine, GenParams, Generation, Runtime, Timing  # noqa: F401

# name -> "module:attr" of its Runtime, imported on first use (importing the runtime modules
# is cheap, but the names alone are enough for --help and for choosing).
_TARGETS: dict[str, object] = {
    "transformers": "mindbench.runtimes.transformers.runtime:RUNTIME",
    "llamacpp": "mindbench.runtimes.llamacpp.runtime:RUNTIME",
}
# The runtime a model runs on when nothing says otherwise (old records without a runtime field
# were all written by it, too).
DEFAULT_RUNTIME = "transformers"
_LOADED: dict[str, Runtime] = {}
_PLUGINS_DONE: set[str] = set()
_ENTRY_POINTS_DONE = False


def register_runtime(name: str, target) -> None:
    """Add (or replace) a runtime: `target` is a Runtime or a "module:attr" string naming one."""
    _TARGETS[name] = target
    _LOADED.pop(name, None)


def load_plugins() -> None:
    """Entry points (group mindbench.runtimes) and MINDBENCH_PLUGINS, each once per process."""
    global _ENTRY_POINTS_DONE
    if not _ENTRY_POINTS_DONE:
        _ENTRY_POINTS_DONE = True
        from importlib.metadata import entry_points
        for ep in entry_points(group="mindbench.runtimes"):
            _TARGETS.setdefault(ep.name, ep.value)
    for item in filter(None, (s.strip() for s in os.environ.get("MINDBENCH_PLUGINS", "").split(","))):
        if item not in _PLUGINS_DONE:
            _PLUGINS_DONE.add(item)
            try:
                _resolve(item)()
            except Exception as e:   # a broken plug-in is one line naming it, not a traceback
                from mindbench.errors import MindbenchError
                raise MindbenchError(f"MINDBENCH_PLUGINS: {item} failed: {type(e).__name__}: {e}") from None


def _resolve(target):
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def runtime_names() -> tuple[str, ...]:
    load_plugins()
    return tuple(_TARGETS)


def get_runtime(name: str | None) -> Runtime:
    """The Runtime called `name` (None: the default one); unknown names are one line."""
    load_plugins()
    name = name or DEFAULT_RUNTIME
    if name not in _LOADED:
        if name not in _TARGETS:
            from mindbench.errors import MindbenchError
            raise MindbenchError(f"unknown runtime {name!r}; choose one of {', '.join(_TARGETS)}")
        rt = _resolve(_TARGETS[name])
        _LOADED[name] = rt() if isinstance(rt, type) else rt
    return _LOADED[name]


def runtimes() -> list[Runtime]:
    return [get_runtime(n) for n in runtime_names()]


def runtime_for(precision: str | None) -> Runtime:
    """The first registered runtime that runs `precision` (the default one for None): how
    runtime="auto" is decided. Registration order breaks ties ("bf16" is torch's, "BF16" GGUF's)."""
    if precision is None:
        return get_runtime(None)
    for rt in runtimes():
        if rt.takes(precision):
            return rt
    from mindbench.errors import PrecisionError
    raise PrecisionError(f"unknown precision {precision!r}: " +
                         "; ".join(f"{rt.name} takes {rt.precision_help}" for rt in runtimes()))


def efficiency_family(name: str | None) -> str:
    """The efficiency family of a record's runtime (None: the default runtime); a runtime this
    process does not know (a plug-in not installed here) is its own family."""
    try:
        return get_runtime(name).efficiency_family
    except Exception:
        return str(name)


def precision_key(precision: str | None) -> tuple:
    """Sort key, widest first: the precisions of the registered runtimes in registration order,
    each runtime's by its quality tiers; unknown ones last, more bits (a number in the name) first."""
    p = str(precision or "")
    for i, rt in enumerate(runtimes()):
        t = rt.tier(p)
        if t is not None:
            return (i, t, p)
    import re
    m = re.search(r"(\d+)", p)
    return (len(_TARGETS), -int(m.group(1)) if m else 0, p)


def get_engine(model, precision: str | None = None, device: str = "auto", runtime: str | None = None,
               **kwargs) -> Engine:
    """Load `model` (name or ModelSpec) on `runtime` and return a ready Engine."""
    return get_runtime(runtime).load(model, precision, device=device, **kwargs)


def __getattr__(name):
    if name == "RUNTIMES":   # kept for callers of the old tuple; computed so plug-ins appear
        return runtime_names()
    raise AttributeError(name)
