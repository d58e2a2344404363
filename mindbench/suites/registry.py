"""The suite registry: the one place that lists suites. The built-in suites are registered exactly
as plug-ins are (a name and the "module:attr" of its Suite); plug-ins come from MINDBENCH_PLUGINS
functions that call `register_suite`, or from entry points in the group `mindbench.suites`."""

from __future__ import annotations

from mindbench.errors import MindbenchError
from mindbench.registry import Registry
from mindbench.suites.base import Metric, Suite

SUITES_REGISTRY = Registry(
    "suite",
    "mindbench.suites",
    {
        "code": "mindbench.suites.code:SUITE",
        "chat": "mindbench.suites.chat:SUITE",
        "reasoning": "mindbench.suites.reasoning:SUITE",
        "data": "mindbench.suites.data:SUITE",
    },
    instantiate=True,
)
SUITES = SUITES_REGISTRY.builtin  # the built-in suites, in order (run --suite all, the default table)
DEFAULT_SUITE = "code"  # what `mindbench run` scores when no --suite is given


def register_suite(suite: Suite) -> None:
    if suite.name in SUITES:
        raise MindbenchError(f"suite {suite.name!r} is built in; give the plug-in suite another name")
    SUITES_REGISTRY.register(suite.name, suite)


def suite_names() -> tuple[str, ...]:
    """Every suite `--suite` accepts: the built-in ones, then the plug-ins'."""
    return SUITES_REGISTRY.names()


def get_suite(name: str) -> Suite:
    return SUITES_REGISTRY.get(name)


def metric_of(suite: str) -> Metric:
    return get_suite(suite).metric
