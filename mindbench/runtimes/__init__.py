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

from mindbench.errors import PrecisionError
from mindbench.registry import Registry, load_plugins  # noqa: F401  (load_plugins: re-exported)
from mindbench.runtimes.base import Engine, Generation, GenParams, Runtime, Timing  # noqa: F401

# The runtimes shipped with mindbench, registered exactly as a plug-in would be: name ->
# "module:attr" of its Runtime, imported on first use (the names alone are enough for --help).
RUNTIMES_REGISTRY = Registry(
    "runtime",
    "mindbench.runtimes",
    {
        "transformers": "mindbench.runtimes.transformers.runtime:RUNTIME",
        "llamacpp": "mindbench.runtimes.llamacpp.runtime:RUNTIME",
        "llamacpp-server": "mindbench.runtimes.llamacpp_server.runtime:RUNTIME",
        "openai": "mindbench.runtimes.openai.runtime:RUNTIME",
    },
    instantiate=True,
)
# The runtime a model runs on when nothing says otherwise (old records without a runtime field
# were all written by it, too).
DEFAULT_RUNTIME = "transformers"


def register_runtime(name: str, target) -> None:
    """Add (or replace) a runtime: `target` is a Runtime or a "module:attr" string naming one."""
    RUNTIMES_REGISTRY.register(name, target)


def unregister_runtime(name: str) -> None:
    """Forget a runtime (tests that register a throw-away one)."""
    RUNTIMES_REGISTRY._targets.pop(name, None)
    RUNTIMES_REGISTRY._loaded.pop(name, None)


def runtime_names() -> tuple[str, ...]:
    return RUNTIMES_REGISTRY.names()


def get_runtime(name: str | None) -> Runtime:
    """The Runtime called `name` (None: the default one); unknown names are one line."""
    return RUNTIMES_REGISTRY.get(name or DEFAULT_RUNTIME)


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
    raise PrecisionError(
        f"unknown precision {precision!r}: " + "; ".join(f"{rt.name} takes {rt.precision_help}" for rt in runtimes())
    )


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
    return (len(runtime_names()), -int(m.group(1)) if m else 0, p)


def get_engine(
    model, precision: str | None = None, device: str = "auto", runtime: str | None = None, **kwargs
) -> Engine:
    """Load `model` (name or ModelSpec) on `runtime` and return a ready Engine."""
    return get_runtime(runtime).load(model, precision, device=device, **kwargs)
