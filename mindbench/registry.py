"""One registry type for everything mindbench looks up by name: runtimes, suites, executors.

A registry maps a name to an object or to a "module:attr" string naming one, imported on first
use (so `--help` and choosing need no import). Built-ins are registered exactly as plug-ins are;
plug-ins come from

- an entry point in the registry's group (`[project.entry-points."mindbench.suites"]`), or
- MINDBENCH_PLUGINS="module:function[,module:function]": functions called once per process, before
  the first look-up, that call `register`. The variable reaches every worker process, so a sweep's
  cells see the same registries as the command that planned them.

Modelled on lm-evaluation-harness's `lm_eval/api/registry.py`: one small class, no framework.
"""

from __future__ import annotations

import importlib
import os

from mindbench.errors import MindbenchError

_PLUGINS_DONE: set[str] = set()


def resolve(target):
    """The object a "module:attr.sub" string names (anything else is returned as it is)."""
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def load_plugins() -> None:
    """Call each MINDBENCH_PLUGINS function once per process; a broken one is one line naming it."""
    for item in filter(None, (s.strip() for s in os.environ.get("MINDBENCH_PLUGINS", "").split(","))):
        if item not in _PLUGINS_DONE:
            _PLUGINS_DONE.add(item)
            try:
                resolve(item)()
            except Exception as e:
                raise MindbenchError(f"MINDBENCH_PLUGINS: {item} failed: {type(e).__name__}: {e}") from None


class Registry:
    """name -> object, resolved lazily; `instantiate`: a class found there is called once."""

    def __init__(self, kind: str, group: str, builtins: dict[str, object], *, instantiate: bool = False):
        self.kind, self.group, self.instantiate = kind, group, instantiate
        self._targets: dict[str, object] = dict(builtins)
        self.builtin = tuple(builtins)
        self._loaded: dict[str, object] = {}
        self._eps_done = False

    def register(self, name: str, target, *, replace: bool = True) -> None:
        if not replace and name in self._targets:
            raise MindbenchError(f"{self.kind} {name!r} is already registered; give the plug-in another name")
        self._targets[name] = target
        self._loaded.pop(name, None)

    def _plugins(self) -> None:
        if not self._eps_done:
            self._eps_done = True
            from importlib.metadata import entry_points

            for ep in entry_points(group=self.group):
                self._targets.setdefault(ep.name, ep.value)
        load_plugins()

    def names(self) -> tuple[str, ...]:
        """Built-ins first, in their order, then plug-ins in registration order."""
        self._plugins()
        return tuple(self._targets)

    def __contains__(self, name: str) -> bool:
        return name in self.names()

    def target(self, name: str):
        """The raw entry (an object or its "module:attr"), without importing anything."""
        self._plugins()
        return self._targets[name]

    def get(self, name: str):
        if name not in self._loaded:
            if name not in self._targets:
                self._plugins()
            if name not in self._targets:
                raise MindbenchError(f"unknown {self.kind} {name!r}; choose one of {', '.join(self.names())}")
            obj = resolve(self._targets[name])
            self._loaded[name] = obj() if self.instantiate and isinstance(obj, type) else obj
        return self._loaded[name]
