"""The intra-package import graph of mindbench (module-level and function-level imports alike),
and any cycle in it: `python scripts/import_graph.py [--top-level-only]`.

Function-level imports (the lazy ones that keep --help and recommend free of torch) are listed
too, because a cycle through them still couples two modules; --top-level-only shows the imports
that run when a module is first imported, the ones that can fail at import time."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "mindbench"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def graph(top_level_only: bool = False) -> dict[str, set[str]]:
    mods = {module_name(p): p for p in ROOT.rglob("*.py")}
    out: dict[str, set[str]] = {m: set() for m in mods}
    for name, path in mods.items():
        pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
        tree = ast.parse(path.read_text())
        nodes = tree.body if top_level_only else ast.walk(tree)
        for node in nodes:
            targets = []
            if isinstance(node, ast.ImportFrom):
                base = pkg
                for _ in range(max(node.level - 1, 0)):
                    base = base.rpartition(".")[0]
                mod = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
                # `from . import x` names modules, not the package; `from .m import f` names m
                targets = ([mod] if node.module else []) + [f"{mod}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for t in targets:
                if t in mods and t != name:
                    out[name].add(t)
    return out


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(g[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(g):
        if v not in index:
            visit(v)
    return found


if __name__ == "__main__":
    top = "--top-level-only" in sys.argv
    g = graph(top)
    for m in sorted(g):
        deps = sorted(d.removeprefix("mindbench.") for d in g[m])
        print(f"{m.removeprefix('mindbench.') or 'mindbench'} -> {', '.join(deps) or '-'}")
    cyc = cycles(g)
    print("\ncycles:", "none" if not cyc else "")
    for c in cyc:
        print("  " + " <-> ".join(x.removeprefix("mindbench.") for x in c))
    sys.exit(1 if cyc else 0)
