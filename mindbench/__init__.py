"""mindbench: measure open language models at every precision, then recommend and serve the best.

    from mindbench import LocalModelProvider, CodeAgent

The public API is importable from the package itself, but nothing is imported until it is first
used (PEP 562 module __getattr__): `import mindbench` and `mindbench --help` stay instant and
never pull in torch.
"""

__version__ = "0.1.0"

# name -> the module (under mindbench) that defines it
_EXPORTS = {
    "LocalModelProvider": "provider",
    "CodeAgent": "agents",
    "ChatAgent": "agents",
    "DataAnalysisAgent": "agents",
    "CodeResult": "agents",
    "AnalysisResult": "agents",
    "extract_code": "agents",
    "get_engine": "runtimes",
    "get_runtime": "runtimes",
    "register_runtime": "runtimes",
    "Runtime": "runtimes.base",
    "Engine": "runtimes.base",
    "GenParams": "runtimes.base",
    "Generation": "runtimes.base",
    "Timing": "runtimes.base",
    "ModelSpec": "models.catalog",
    "CATALOG": "models.catalog",
    "DEFAULT_MODEL": "models.catalog",
    "load_suite": "suites",
    "evaluate": "suites",
    "SUITES": "suites",
    "Suite": "suites",
    "Task": "suites",
    "Metric": "suites",
    "register_suite": "suites",
    "run_python": "sandbox",
    "run_many": "sandbox",
    "SandboxResult": "sandbox",
    "Checked": "sandbox.checked",
    "best_config": "decide.recommend",
    "MindbenchError": "errors",
    "ModelNotFoundError": "errors",
    "GatedModelError": "errors",
    "OfflineError": "errors",
    "MissingDependencyError": "errors",
    "PrecisionError": "errors",
    "OutOfMemoryError": "errors",
    "InputError": "errors",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'mindbench' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
