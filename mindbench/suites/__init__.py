"""Task suites: load the data files in suites/, prompt a model per its kind, score its outputs.

A suite is one file here (code.py, chat.py, reasoning.py, data.py: its tasks, its request per model
kind, the program its output asks to run, its verdict, its metric) plus one line in registry.py.
base.py holds what every suite is made of, pipeline.py the one path from a suite to a score.
Nothing here imports torch; the engine does the generating. This module is the package's face:
the names callers use, re-exported.
"""

from mindbench.suites.base import (  # noqa: F401
    CODE_PROTOCOLS,
    CODE_TIMEOUT_S,
    DATA_MEMORY_MB,
    DEFAULT_CODE_PROTOCOL,
    FileSuite,
    Metric,
    Request,
    Suite,
    Task,
    only_subset,
    select,
)
from mindbench.suites.pipeline import (  # noqa: F401
    SAMPLE_TEMPERATURE,
    build_request,
    evaluate,
    load_suite,
    program_for,
    run_programs,
    verdict,
)
from mindbench.suites.registry import (  # noqa: F401
    DEFAULT_SUITE,
    SUITES,
    SUITES_REGISTRY,
    get_suite,
    metric_of,
    register_suite,
    suite_names,
)


def __getattr__(name):
    # The suites' own constants live in their files; these two names are read from outside.
    if name == "CODE_STOPS":
        from mindbench.suites.code import CODE_STOPS

        return CODE_STOPS
    raise AttributeError(name)
