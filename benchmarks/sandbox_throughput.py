"""What the sandbox costs, old against new: the code suite's 213 canonical solutions (HumanEval's
164 and the 49 easy ones), each run as the suite runs it, through the sandbox of an earlier commit
(one process: program and checks in one interpreter) and through this one (the program in the
sandbox, the checks in a separate trusted process).

    python benchmarks/sandbox_throughput.py [--old-rev 0fb12c0] [--workers 2] [--latency 40]

Prints, side by side: per-program latency (one program at a time: median and p90 wall ms),
the suite's scoring wall time with `workers` in parallel, and CPU ms per program (all processes
a program needs, from RUSAGE_CHILDREN: the honest figure on a shared host, where wall time
depends on what else runs). The old sandbox is loaded from git (`git show REV:...`).
"""

import argparse
import importlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def load_old(rev: str):
    """The sandbox package as it was at `rev`, importable as mb_old_sandbox."""
    pkg = Path(tempfile.mkdtemp(prefix="mb-old-sandbox-")) / "mb_old_sandbox"
    pkg.mkdir()
    for name in ("__init__.py", "checked.py"):
        text = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{rev}:mindbench/sandbox/{name}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        (pkg / name).write_text(text.replace("from mindbench.sandbox.checked", "from mb_old_sandbox.checked"))
    sys.path.insert(0, str(pkg.parent))
    return importlib.import_module("mb_old_sandbox"), importlib.import_module("mb_old_sandbox.checked")


def programs(old_checked):
    """(old, new) program lists for the code suite's canonical solutions."""
    from mindbench.suites import scoring
    from mindbench.suites.registry import get_suite

    suite = get_suite("code")
    tasks = suite.load()
    new = [suite.program(t, t.prompt + t.fields["canonical_solution"], False) for t in tasks]
    old = [
        old_checked.Checked(
            scoring.build_program(t.prompt, t.fields["entry_point"], t.prompt + t.fields["canonical_solution"]),
            f"{t.fields['test']}\n\ncheck({t.fields['entry_point']})\n",
            plain_returns=True,
        )
        for t in tasks
    ]
    return old, new


def latency_ms(run_python, progs) -> list[float]:
    out = []
    for p in progs:
        t0 = time.perf_counter()
        res = run_python(p, timeout_s=10.0)
        out.append(1000 * (time.perf_counter() - t0))
        assert res.passed, res.reason
    return out


def suite_run(run_many, progs, workers, close=lambda: None) -> tuple[float, float]:
    close()
    cpu0, t0 = _children_cpu_s(), time.perf_counter()
    res = run_many(progs, timeout_s=10.0, workers=workers)
    wall = time.perf_counter() - t0
    close()  # the new sandbox's checker processes: counted once they are reaped
    cpu = _children_cpu_s() - cpu0
    failed = [i for i, r in enumerate(res) if not r.passed]
    assert not failed, f"canonical solutions failed: {failed[:5]}"
    return wall, 1000 * cpu / len(progs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-rev", default="0fb12c0", help="commit whose sandbox is 'old'")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--latency", type=int, default=40, help="programs timed one at a time")
    args = ap.parse_args()
    from mindbench import sandbox

    old_mod, old_checked = load_old(args.old_rev)
    old_progs, new_progs = programs(old_checked)
    print(f"isolation (new): {sandbox.isolation_report()}")
    print(
        f"{len(new_progs)} programs, {args.workers} workers, {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} (other work on this host inflates wall times)"
    )
    step = max(1, len(new_progs) // args.latency)
    lat = {"old": [], "new": []}
    for i in range(0, len(new_progs), step):  # interleaved, so load changes hit both alike
        lat["old"] += latency_ms(old_mod.run_python, old_progs[i : i + 1])
        lat["new"] += latency_ms(sandbox.run_python, new_progs[i : i + 1])
    suite = {
        "old": suite_run(old_mod.run_many, old_progs, args.workers),
        "new": suite_run(sandbox.run_many, new_progs, args.workers, sandbox.close_checkers),
    }
    print(f"{'':28}{'old':>10}{'new':>10}{'new/old':>10}")
    rows = [
        ("latency median (ms)", statistics.median(lat["old"]), statistics.median(lat["new"])),
        ("latency p90 (ms)", statistics.quantiles(lat["old"], n=10)[-1], statistics.quantiles(lat["new"], n=10)[-1]),
        (f"suite wall, {args.workers} workers (s)", suite["old"][0], suite["new"][0]),
        ("CPU per program (ms)", suite["old"][1], suite["new"][1]),
    ]
    for name, o, n in rows:
        print(f"{name:28}{o:10.1f}{n:10.1f}{n / o:10.2f}")
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
