"""`mindbench serve-bench`'s work: for each model on each endpoint (given, or a llama.cpp server
started here), each request shape and each concurrency (or rate), drive the load, summarize it
(measure/serving.py) and append one serving record per (model, runtime, shape, mode) to the
store. The command (cli/serve_bench.py) only parses options.

A serving record (store/record.py's Record, `kind == "serving"`):
  config   model, runtime, precision, source, endpoint (never the key), shape, mode, levels,
           requests per level, warm-up/cool-down, slo (ms)
  server   what the endpoint said it is (flavor, version, models; llama.cpp's /props) and the
           memory it reports ("not reported" when none)
  serving  {"levels": [{"concurrency" | "rate", req/s, output tok/s, goodput, ttft/tpot/itl/e2e
           percentiles with 95 % intervals, ...}]}
"""

from __future__ import annotations

import sys
import time
import uuid
from dataclasses import replace
from datetime import datetime, timezone

from mindbench.errors import MindbenchError
from mindbench.store.record import Config, Hardware, Record, Software, cell_key

MODES = ("concurrency", "rate")
# --concurrency auto: 1, 2, 4, ... until a level's output tok/s is less than AUTO_GROWTH above the
# best before it (more users only queue), at most AUTO_MAX users.
AUTO_GROWTH = 0.10
AUTO_MAX = 64


def preflight(endpoints: list[str], models: list[str], api_key_env: str | None) -> dict:
    """Every (endpoint, model) checked before any load: one line and exit 2 on a wrong URL, a
    refused connection, a 401 or a model the server does not serve. Returns {(endpoint, model): probe}."""
    from mindbench.runtimes.openai.runtime import probe

    return {(e, m): probe(e, m, api_key_env) for e in endpoints for m in models}


def server_slots(mode: str, levels, requests: int) -> int:
    """Slots for a server started here: as many as requests will be in flight at once, so none
    queues in the server: the largest concurrency (AUTO_MAX under auto); at a rate, every request
    of a level may be (an open loop), at most AUTO_MAX."""
    if mode == "concurrency":
        return AUTO_MAX if levels == "auto" else max(int(v) for v in levels)
    return min(AUTO_MAX, requests or 20)


def default_trim(mode: str, level, requests: int) -> tuple[int, int]:
    """(warm-up, cool-down) requests left out of the steady-state window: a concurrency level's
    first burst of N and the N - 1 that finish with fewer in flight; 10 % each side at a rate."""
    if mode == "concurrency":
        w = min(int(level), max(0, requests // 3))
        return w, max(0, min(int(level) - 1, requests // 3))
    k = max(1, requests // 10) if requests >= 10 else 0
    return k, k


def bench_engine(
    engine,
    *,
    shapes,
    mode: str,
    levels: list,
    requests: int,
    slo: dict,
    warmup: int | None = None,
    cooldown: int | None = None,
    seed: int = 0,
    log=None,
) -> list[dict]:
    """One serving record's body per shape: the levels' summaries, in order."""
    from mindbench.measure.serving import summarize_level
    from mindbench.runtimes.openai.loadgen import run_concurrency, run_rate

    out = []
    auto = levels == "auto"
    for si, shape in enumerate(shapes):
        rows = []
        todo, best = ([1] if auto else list(levels)), None
        while todo:
            level = todo.pop(0)
            n = requests if requests else (max(4 * int(level), 12) if mode == "concurrency" else 20)
            w, c = default_trim(mode, level, n)
            w = w if warmup is None else warmup
            c = c if cooldown is None else cooldown
            if log:
                log(f"{engine.spec.id} {shape[0]} {shape[1]}/{shape[2]} tokens, {mode} {level}: {n} requests")
            t0 = time.perf_counter()

            def progress(done, total):
                if log and (done == total or done % max(1, total // 4) == 0):
                    log(f"  {done}/{total} requests ({time.perf_counter() - t0:.0f} s)")

            run = run_concurrency if mode == "concurrency" else run_rate
            # a seed of its own per shape and level: each prompt opens with a number drawn from it,
            # and one seed for all sent every level the first level's prompts again (a shorter
            # shape's are prefixes of a longer one's), which a server's prompt cache (llama-server's
            # slots and RAM cache, vLLM's prefix cache) answered without a prefill: TTFT 45 ms at
            # c=2 against 1.4 s at c=1, and throughput counted work never done
            lvl_seed = seed + 7919 * len(rows) + 104729 * si
            results = run(engine, shape, level, n, seed=lvl_seed, progress=progress)
            summary = summarize_level(results, warmup=w, cooldown=c, slo=slo)
            rows.append({mode: level, **summary, "wall_s": round(time.perf_counter() - t0, 2)})
            if auto:  # double the users until throughput stops growing (AUTO_GROWTH) or AUTO_MAX
                tput = summary.get("output_tok_s") or 0.0
                if best is not None and tput < best * (1 + AUTO_GROWTH):
                    rows[-1]["auto_stop"] = (
                        f"output tok/s {tput:.1f} is within {AUTO_GROWTH:.0%} of the best before "
                        f"({best:.1f}): throughput stopped growing"
                    )
                elif level * 2 <= AUTO_MAX:
                    todo.append(level * 2)
                best = max(best or 0.0, tput)
        out.append({"shape": {"name": shape[0], "prompt_tokens": shape[1], "output_tokens": shape[2]}, "levels": rows})
    return out


def record_for(
    engine, body: dict, *, mode: str, levels: list, requests: int, slo: dict, run_id: str, endpoint: str | None
) -> Record:
    info = engine.info or {}
    config = Config(
        kind="serving",
        model=engine.spec.id,
        runtime=engine.runtime,
        precision=engine.precision,
        device=engine.device,
        source=info.get("source"),
        revision=info.get("revision"),
        endpoint=endpoint,
        shape=body["shape"],
        mode=mode,
        suites=[],
        weights="pretrained",
        extra={
            "levels": [lv.get(mode) for lv in body["levels"]],
            "requests_per_level": requests or None,
            "slo_ms": {k: v * 1000 for k, v in slo.items()},
        },
    )
    return _record(
        config,
        # the key names the shape and mode as a cell key names its suites
        replace(config, suites=[f"serve:{body['shape']['name']}:{mode}"]),
        run_id,
        status="ok",
        server={
            **(info.get("server") or {}),
            "memory": info.get("server_memory") or "not reported",
            **(
                {"settings": info["server_settings"], "slots": info.get("slots")} if info.get("server_settings") else {}
            ),
        },
        serving={"levels": body["levels"]},
    )


def failed_record(model: str, runtime: str, error: str, run_id: str, endpoint: str | None) -> Record:
    """A server that would not start or a model that would not load: a row saying why."""
    config = Config(kind="serving", model=model, runtime=runtime, endpoint=endpoint, suites=[])
    return _record(config, config, run_id, status="skipped", error=error[:400])


def _record(config: Config, keyed: Config, run_id: str, **fields) -> Record:
    """A serving record on this machine, now: its key from `keyed` and the machine's fingerprint."""
    from mindbench.models.fingerprint import hardware, software

    hw = Hardware.from_json(hardware())
    return Record(
        kind="serving",
        cell=cell_key(keyed, hw.fingerprint),
        run_id=run_id,
        timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        config=config,
        hardware=hw,
        software=Software.from_json(software()),
        **fields,
    )


def serve_bench(
    *,
    models: list[str],
    endpoints: list[str] | None,
    runtime: str | None,
    api_key_env: str | None,
    shapes,
    mode: str,
    levels: list,
    requests: int,
    slo: dict,
    out,
    precision: str | None = None,
    threads: int | None = None,
    warmup: int | None = None,
    cooldown: int | None = None,
    seed: int = 0,
    log=None,
) -> list[Record]:
    """Run the benchmark and append each record to `out`; returns the records. Endpoints are
    checked first (preflight), before any load."""
    from mindbench.runtimes import get_engine, get_runtime
    from mindbench.store import results

    log = log or (lambda msg: print(f"mindbench: {msg}", file=sys.stderr, flush=True))
    run_id = uuid.uuid4().hex[:12]
    records = []
    if endpoints:
        probes = preflight(endpoints, models, api_key_env)
        from mindbench.runtimes.openai.runtime import open_engine

        jobs = [
            (m, e, lambda m=m, e=e: open_engine(e, m, probes[(e, m)], api_key_env=api_key_env))
            for e in endpoints
            for m in models
        ]
    else:
        rt = get_runtime(runtime)
        rt.check_available()
        kw = {"n_threads": threads} if threads else {}
        if getattr(rt, "takes_slots", False):
            kw["slots"] = server_slots(mode, levels, requests)
        jobs = [(m, None, lambda m=m: get_engine(m, precision, device="auto", runtime=rt.name, **kw)) for m in models]
    for model, endpoint, open_it in jobs:
        try:
            engine = open_it()
        except MindbenchError as e:
            if endpoint:  # checked a moment ago: the endpoint went away
                raise
            rec = failed_record(model, runtime, str(e), run_id, endpoint)
            results.append(out, rec)
            records.append(rec)
            log(f"{model}: {e}")
            continue
        try:
            bodies = bench_engine(
                engine,
                shapes=shapes,
                mode=mode,
                levels=levels,
                requests=requests,
                slo=slo,
                warmup=warmup,
                cooldown=cooldown,
                seed=seed,
                log=log,
            )
        finally:
            engine.unload()
        for body in bodies:
            rec = record_for(
                engine,
                body,
                mode=mode,
                levels=levels,
                requests=requests,
                slo=slo,
                run_id=run_id,
                endpoint=endpoint or engine.info.get("endpoint"),
            )
            if not endpoint:
                rec.server.update(
                    {k: engine.info[k] for k in ("server_peak_rss_mb", "server_memory_how") if k in engine.info}
                )
            results.append(out, rec)
            records.append(rec)
    return records
