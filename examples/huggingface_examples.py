#!/usr/bin/env python
"""What the user's guide promises, run for real and offline on the packaged model.

    python examples/huggingface_examples.py                 # full run (a few minutes on 2 cores)
    python examples/huggingface_examples.py --quick         # short answers, one timing repeat
    python examples/huggingface_examples.py --precisions fp32,int4 --json-out figures.json

Four sections, in the guide's order:
  1. loading a model with LocalModelProvider and asking it something;
  2. quantization: the same model at fp32, int8 and int4 (bitsandbytes): load time, memory
     footprint, a greedy answer, and prefill/decode speed measured with the engine's timer;
  3. an agent at work: CodeAgent writes a function, the tests run in the sandbox;
  4. a performance comparison table built from the figures measured in section 2.
Every number printed is measured in this run; nothing is quoted from the guide. On a CPU,
quantization saves memory but is usually not faster (bitsandbytes dequantizes on the fly).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from mindbench import DEFAULT_MODEL, CodeAgent, LocalModelProvider, MindbenchError  # noqa: E402  (light imports only)

# The guide's way of asking for each precision (load_in_8bit / load_in_4bit), fp32 explicit so a
# GPU machine does not silently switch the baseline to fp16.
PRECISION_KWARGS = {
    "fp32": {"precision": "fp32"},
    "bf16": {"precision": "bf16"},
    "fp16": {"precision": "fp16"},
    "int8": {"load_in_8bit": True},
    "int4": {"load_in_4bit": True},
}

QUESTION = "What is the capital of France?"


class _Once(logging.Filter):
    """Let each distinct message through once: bitsandbytes logs "MatMul8bitLt: inputs will be
    cast ..." on every int8 matmul of every token, thousands of identical lines per answer."""

    def __init__(self):
        super().__init__()
        self.seen: set = set()

    def filter(self, record: logging.LogRecord) -> bool:
        new = record.msg not in self.seen
        self.seen.add(record.msg)
        return new


logging.getLogger("bitsandbytes.autograd._functions").addFilter(_Once())


def section(title: str) -> None:
    print(f"\n=== {title} ===", flush=True)


async def example_loading(args) -> LocalModelProvider:
    section("1. Loading a model with LocalModelProvider")
    print(f">>> llm = LocalModelProvider({args.model!r}, device={args.device!r})")
    llm = LocalModelProvider(args.model, device=args.device, precision="fp32")
    t0 = time.perf_counter()
    await llm.aload()
    eng = llm.engine
    print(
        f"loaded {eng.spec.id} ({eng.runtime}, {eng.precision}, {eng.dtype}) on {eng.device} "
        f"in {time.perf_counter() - t0:.2f} s (cold: {eng.info.get('cold')}, source: {eng.info.get('source')})"
    )
    prompt = "How do you create a list in Python?"
    print(f">>> await llm.generate({prompt!r}, system_prompt='You are a helpful assistant.')")
    t0 = time.perf_counter()
    answer = await llm.generate(
        prompt, system_prompt="You are a helpful assistant.", temperature=0.0, max_tokens=args.answer_tokens
    )
    print(answer.strip())
    print(f"({time.perf_counter() - t0:.2f} s)")
    return llm


async def measure_precision(args, precision: str) -> dict:
    """Load at one precision, answer greedily, time prefill and decode, unload."""
    row = {"precision": precision, "status": "ok"}
    llm = LocalModelProvider(args.model, device=args.device, **PRECISION_KWARGS[precision])
    try:
        t0 = time.perf_counter()
        await llm.aload()
        row["load_s"] = round(time.perf_counter() - t0, 3)
        eng = llm.engine
        row.update(device=eng.device, dtype=eng.dtype, weights_mb=round(llm.memory_footprint() / 2**20, 1))
        row["answer"] = (await llm.generate(QUESTION, temperature=0.0, max_tokens=args.answer_tokens)).strip()
        # The generate above is the warm-up; then the engine's own timer (tokenization outside
        # the timed region) over `repeats` runs, reporting the mean.
        runs = [
            await asyncio.to_thread(eng.timed_run, args.prompt_tokens, args.new_tokens) for _ in range(args.repeats)
        ]
        row["prefill_tok_s"] = round(sum(r.prefill_tok_s for r in runs) / len(runs), 1)
        row["decode_tok_s"] = round(sum(r.decode_tok_s for r in runs) / len(runs), 2)
        row["ttft_ms"] = round(1000 * sum(r.ttft_s for r in runs) / len(runs), 1)
    except MindbenchError as e:  # e.g. bitsandbytes missing: a row that says so
        row.update(status="skipped", error=e.message)
    finally:
        llm.unload_model()
    return row


async def example_quantization(args) -> list[dict]:
    section("2. Quantization: the same model at " + ", ".join(args.precisions))
    rows = []
    for p in args.precisions:
        how = ", ".join(f"{k}={v!r}" for k, v in PRECISION_KWARGS[p].items())
        print(f">>> LocalModelProvider({args.model!r}, {how})", flush=True)
        row = await measure_precision(args, p)
        rows.append(row)
        if row["status"] != "ok":
            print(f"  skipped: {row['error']}")
            continue
        print(
            f"  load {row['load_s']:.2f} s | weights {row['weights_mb']:.1f} MB | "
            f"prefill {row['prefill_tok_s']:.1f} tok/s | decode {row['decode_tok_s']:.2f} tok/s"
        )
        print(f"  {QUESTION} -> {row['answer']!r}")
    return rows


async def example_agent(args, llm: LocalModelProvider) -> dict:
    section("3. An agent at work: CodeAgent")
    task = "Write a function that returns the sum of a list."
    tests = "assert sum_list([1, 2, 3]) == 6\nassert sum_list([]) == 0"
    print(">>> agent = CodeAgent(llm_provider=llm)")
    print(f">>> await agent.process({task!r}, tests={tests!r})")
    agent = CodeAgent(llm_provider=llm, max_attempts=args.attempts, max_tokens=args.code_tokens)
    t0 = time.perf_counter()
    res = await agent.process(task, tests=tests)
    for i, (prompt, reply) in enumerate(res.transcript, 1):
        print(f"--- attempt {i}: prompt ---\n{prompt}\n--- attempt {i}: reply ---\n{reply.strip()}")
    print(
        f"--- result ---\npassed: {res.passed} | attempts: {res.attempts} | "
        f"{time.perf_counter() - t0:.2f} s | error: {res.error}"
    )
    if res.code:
        print(f"code (tested in the sandbox):\n{res.code.rstrip()}")
    return {"passed": res.passed, "attempts": res.attempts, "error": res.error, "code": res.code}


def example_comparison(rows: list[dict]) -> None:
    section("4. Performance comparison (measured in this run)")
    from tabulate import tabulate

    base = next((r for r in rows if r["precision"] == "fp32" and r["status"] == "ok"), None)
    table = []
    for r in rows:
        if r["status"] != "ok":
            table.append([r["precision"], "skipped", "", "", "", "", r["error"][:40]])
            continue
        vs = f"{r['decode_tok_s'] / base['decode_tok_s']:.2f}x" if base else ""
        mem = f"{r['weights_mb'] / base['weights_mb']:.2f}x" if base else ""
        table.append(
            [
                r["precision"],
                f"{r['load_s']:.2f}",
                f"{r['weights_mb']:.1f}",
                mem,
                f"{r['decode_tok_s']:.2f}",
                vs,
                r["answer"][:40].replace("\n", " "),
            ]
        )
    print(
        tabulate(
            table,
            headers=["precision", "load s", "weights MB", "memory vs fp32", "decode tok/s", "speed vs fp32", "answer"],
            tablefmt="github",
            disable_numparse=True,
        )
    )  # print the figures as formatted: "15.30" stays "15.30"
    print("Speeds depend on the machine and on what else runs on it; rerun to see the noise.")


async def main(args) -> dict:
    llm = await example_loading(args)
    try:
        rows = await example_quantization(args)  # each precision its own provider, unloaded after
        agent = await example_agent(args, llm) if not args.skip_agent else None
    finally:
        llm.unload_model()
    example_comparison(rows)
    return {"model": args.model, "precisions": rows, "agent": agent}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_MODEL, help="catalog name or Hub id (default: the packaged model)")
    ap.add_argument("--device", default="auto", help="auto, cpu or cuda")
    ap.add_argument("--precisions", default="fp32,int8,int4", help="comma-separated, from fp32,bf16,fp16,int8,int4")
    ap.add_argument("--quick", action="store_true", help="short answers and one timing run (used by the tests)")
    ap.add_argument("--skip-agent", action="store_true", help="leave out the CodeAgent example")
    ap.add_argument("--json-out", type=Path, help="also write every measured figure to this JSON file")
    args = ap.parse_args(argv)
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    bad = [p for p in args.precisions if p not in PRECISION_KWARGS]
    if bad:
        ap.error(f"unknown precision(s) {', '.join(bad)}; choose from {', '.join(PRECISION_KWARGS)}")
    q = args.quick
    args.answer_tokens = 16 if q else 64
    args.prompt_tokens, args.new_tokens = (32, 16) if q else (128, 64)
    args.repeats = 1 if q else 3
    args.code_tokens, args.attempts = (96, 2) if q else (256, 3)
    return args


if __name__ == "__main__":
    a = parse_args()
    try:
        figures = asyncio.run(main(a))
    except MindbenchError as e:
        sys.exit(f"Error: {e.message}")
    if a.json_out:
        a.json_out.write_text(json.dumps(figures, indent=2))
        print(f"\nfigures written to {a.json_out}")
