"""The package's floor plan is a contract, not a wish: the layer order in pyproject.toml
(import-linter) holds on the tree, an upward import breaks it, the top of mindbench/ holds only the
package's public face, and no module imports the errors inside a function."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")
# The package's face: what a user imports (provider, agents, chat), what every layer shares (errors,
# paths, tokens, the registry type), nothing else. docs/architecture.md says why each is here.
TOP_LEVEL = {"__init__.py", "agents.py", "chat.py", "errors.py", "paths.py", "provider.py", "registry.py", "tokens.py"}


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
    )


def test_the_layer_contract_holds_and_an_upward_import_breaks_it(tmp_path):
    ok = _lint(ROOT)
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in ok.stdout
    # The same tree with one import pointing up (the measurements reaching for the decisions).
    shutil.copytree(ROOT / "mindbench", tmp_path / "mindbench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    speed = tmp_path / "mindbench" / "measure" / "speed.py"
    speed.write_text(speed.read_text() + "\n\ndef _upward():\n    from mindbench.decide import recommend  # noqa\n")
    bad = _lint(tmp_path)
    assert bad.returncode == 1, bad.stdout[-3000:]
    assert "mindbench.measure is not allowed to import mindbench.decide" in bad.stdout
    assert "mindbench.measure.speed -> mindbench.decide.recommend" in bad.stdout


def test_the_top_of_the_package_is_its_public_face():
    top = {p.name for p in (ROOT / "mindbench").glob("*.py")}
    assert top == TOP_LEVEL, f"new top-level module(s) {sorted(top - TOP_LEVEL)}: put them in a subpackage"


def test_no_module_imports_the_errors_inside_a_function():
    # errors.py imports nothing, so importing it at the top costs nothing and cannot cycle.
    late = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in (ROOT / "mindbench").rglob("*.py")
        for i, line in enumerate(p.read_text().splitlines(), 1)
        if re.match(r"\s+from mindbench\.errors import", line)
    ]
    assert not late, late
