"""What runs inside one cell's process: load one (model, runtime, precision) once, measure memory
and speed, score every requested suite, and write one record.

    python -m mindbench.sweep.worker CONFIG.json RECORD.json

Why a process per cell: a model that runs out of memory, a native crash in a quantization kernel,
or a hang must cost one row of the table, not the sweep; and memory figures (peak RSS, NVML
per-process) are only meaningful for a process that held nothing else. The parent (harness.py)
classifies what this process could not report itself: a signal or nonzero exit -> "crashed", a
kill after the time limit -> "timeout".

Protocol: the cell config comes in as a JSON file; the record goes out as a JSON file written
atomically (tmp + rename), so a half-written record is never read. Progress events go to stdout
as JSON lines; everything else that libraries print is sent to stderr, so the event channel stays
clean.

Fault injection for tests (honoured only here): MINDBENCH_FAULT="kind[@precision],..." with kind
oom (a real allocation bigger than the device can give, after the model is loaded), segfault (a
real null-pointer dereference) or hang (sleep forever, before loading); the engines' own
corrupt_prompt and slow_decode[:FRACTION] (each timed decode step takes 1 + FRACTION times as long,
twice by default; runtimes/base.py).
"@precision" limits it to
cells of that precision, so one sweep can hold a failing cell among good ones.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from dataclasses import fields
from datetime import datetime, timezone

from mindbench.errors import MindbenchError, faults, is_oom
from mindbench.measure.device import is_cuda
from mindbench.store import results
from mindbench.store.record import Config, Fidelity, Hardware, Load, Memory, Quality, Record, Roofline, Software, Speed
from mindbench.sweep.cellspec import CellSpec  # light: no torch

PARENT_PID_ENV = "MINDBENCH_PARENT_PID"  # set by the harness: the process this worker lives for


# --- records ----------------------------------------------------------------------------------


def new_record(cfg: dict, hardware: dict, software: dict) -> Record:
    """A record with every section present (None where not measured), so readers never guess."""
    config = Config(**{f.name: cfg.get(f.name) for f in fields(Config) if f.name not in _NOT_ASKED})
    hw = Hardware.from_json(hardware)
    return Record(
        cell=results.cell_key(config, hw.fingerprint),
        run_id=cfg.get("run_id"),
        timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        config=config,
        hardware=hw,
        software=Software.from_json(software),
        roofline=Roofline(bandwidth_gb_s=cfg.get("bandwidth_gb_s")),
        timings_s=None,
    )


# config fields a benchmark cell does not fill in from its job (set later, or serve-bench's)
_NOT_ASKED = ("extra", "fault", "kind", "shape", "mode")


def classify(e: BaseException) -> tuple[str, str]:
    """(status, one-line message) for an exception raised inside a cell."""
    msg = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}".rstrip(": ")
    if is_oom(e):
        return "oom", msg
    if isinstance(e, MindbenchError):
        # Not installed, gated, offline, impossible precision here: the model can't be had on this
        # machine as configured. Not a failure of the model, so the row says why and moves on.
        return "skipped", str(e.message if hasattr(e, "message") else e)
    if isinstance(e, KeyboardInterrupt):
        return "error", "interrupted"
    return "error", msg


# --- faults (tests only) ----------------------------------------------------------------------


def active_faults(cfg: dict) -> list[str]:
    """The MINDBENCH_FAULT kinds that apply to this cell (all precisions, or its own)."""
    return faults(cfg.get("precision") or "")


def fault_for(cfg: dict) -> str | None:
    for kind in faults():  # every kind is checked, even one meant for another precision
        name, _, frac = kind.partition(":")
        if name == "slow_decode":  # slow_decode:FRACTION, checked before any model loads
            from mindbench.runtimes.base import slow_decode_fraction

            slow_decode_fraction(frac)
        elif kind not in ("oom", "segfault", "hang", "corrupt_prompt"):
            raise ValueError(
                f"MINDBENCH_FAULT: unknown fault {kind!r} (oom, segfault, hang, corrupt_prompt, slow_decode[:FRACTION])"
            )
    # corrupt_prompt and slow_decode are the engines' own faults (garbled prompts in render(), a
    # slow timed decode); nothing to do here
    return next((k for k in active_faults(cfg) if k != "corrupt_prompt" and not k.startswith("slow_decode")), None)


def genuine_oom(device: str, nbytes: int) -> None:
    """Ask the allocator for more memory than it can give, for real, and let its error propagate."""
    import torch

    if is_cuda(device):
        total = torch.cuda.get_device_properties(device).total_memory
        torch.empty(total + (1 << 30), dtype=torch.uint8, device=device)
        return
    # On CPU, Linux may overcommit, so cap the address space just above what we use now; the
    # allocation then fails inside torch's allocator exactly as a real one would.
    import resource

    from mindbench.measure.memory import vms_bytes

    old = resource.getrlimit(resource.RLIMIT_AS)
    vms = vms_bytes()
    resource.setrlimit(resource.RLIMIT_AS, (vms + (64 << 20), old[1]))
    try:
        torch.empty(max(nbytes, 256 << 20), dtype=torch.uint8)
    finally:
        resource.setrlimit(resource.RLIMIT_AS, old)


def segfault() -> None:
    import ctypes

    ctypes.string_at(0)  # a real null-pointer read: SIGSEGV from the kernel
    os.kill(os.getpid(), 11)  # pragma: no cover - only if the read somehow did not fault


# --- the cell ---------------------------------------------------------------------------------


class _Stages:
    """The cell's stages, for the parent's display and the record's `timings_s`: each start is a
    "phase" event (with the estimated seconds when known) and stops the previous stage's clock."""

    def __init__(self, emit):
        self.emit, self.seconds, self._open = emit, {}, None

    def start(self, phase: str, key: str | None = None, eta_s: float | None = None, book: bool = True) -> None:
        """book=False: the caller books this stage's seconds itself (a suite splits its time)."""
        self.stop()
        self.emit({"event": "phase", "phase": phase, **({"eta_s": round(eta_s, 1)} if eta_s else {})})
        self._open = (key or phase, time.perf_counter()) if book else None

    def stop(self) -> None:
        if self._open:
            key, t0 = self._open
            self.add(key, time.perf_counter() - t0)
            self._open = None

    def add(self, key: str, seconds: float) -> None:
        self.seconds[key] = round(self.seconds.get(key, 0.0) + seconds, 2)


# Rough rates for the display's first ETAs, before this cell measured anything: decode reads the
# weights once per token at about half the measured read bandwidth; a prefill token costs about a
# tenth of a decode step on a CPU; a task's answer is ~128 tokens, and a batch of B rows decodes
# about B/2 times faster than one row. The display switches to measured rates as items finish.
_EFFICIENCY, _PREFILL_X, _TASK_TOKENS = 0.5, 10.0, 128


def _spec(cell: CellSpec | dict) -> CellSpec:
    """The cell, typed: the job file's dict is parsed once (CellSpec.from_dict)."""
    return cell if isinstance(cell, CellSpec) else CellSpec.from_dict(cell)


def stage_estimates(
    cell: CellSpec | dict, decode_tok_s: float | None, prefill_tok_s: float | None, speed: bool = True
) -> dict:
    """Estimated seconds of the stages still to come (speed, fidelity, each suite)."""
    spec = _spec(cell)
    if not decode_tok_s:
        return {}
    prefill_tok_s = prefill_tok_s or decode_tok_s * _PREFILL_X
    out = {}
    if speed:
        from mindbench.measure.speed import WARMUP_NEW_TOKENS

        prefill = spec.prompt_tokens / prefill_tok_s
        warmup = prefill + min(spec.new_tokens, WARMUP_NEW_TOKENS) / decode_tok_s
        out["speed"] = warmup + int(spec.repeats or 3) * (prefill + spec.new_tokens / decode_tok_s)
    if spec.fidelity and spec.weights != "random":
        out["fidelity"] = int(spec.fidelity_tokens or 4096) / prefill_tok_s
    if spec.weights != "random":
        for choice in spec.suites:
            name = choice.text
            n = int(spec.limit or 100)
            rows = max(1, min(int(spec.batch_size or 1), n))
            out[f"suite {name}"] = n * _TASK_TOKENS / (decode_tok_s * max(1.0, rows / 2))
    return {k: round(v, 1) for k, v in out.items()}


def run_cell(cell: CellSpec | dict, emit=lambda ev: None) -> Record:
    """Run one cell in this process and return its record (never raises for cell failures)."""
    spec = _spec(cell)
    cfg = spec.to_dict()  # the record's config, the fault switches and fidelity read the serialized form
    from mindbench.models.fingerprint import hardware, software

    t_start = time.perf_counter()
    record = new_record(cfg, hardware(), software())
    faults = active_faults(cfg)
    if faults:
        # A cell with an injected fault measures the gate, not the model: say so in the record,
        # so the recommender never takes its figures for the model's.
        record.config.fault = ",".join(faults)
    fault = fault_for(cfg)
    engine = None
    mem = None
    stages = _Stages(emit)
    try:
        if fault == "hang":
            emit({"event": "phase", "phase": "hang (fault injection)"})
            while True:
                time.sleep(3600)
        from mindbench.measure import MemoryTracker, measure_bandwidth, measure_speed

        device = spec.device
        if not spec.bandwidth_gb_s:
            # Measured before the model is loaded, so the copy buffers compete with nothing.
            stages.start("bandwidth")
            bw = measure_bandwidth(device)
            record.roofline.bandwidth_gb_s = bw
            emit({"event": "bandwidth", "device": device, "gb_s": bw})
        fid_ref, fid_ref_s = _fidelity_reference(spec, stages)  # before the tracker: not this cell's memory
        with MemoryTracker(device) as mem:
            stages.start("load")
            from mindbench.runtimes import get_engine, get_runtime

            kwargs = {"no_weights": True} if spec.weights == "random" else {}
            if spec.cache_dir:
                kwargs["cache_dir"] = spec.cache_dir
            if spec.threads:
                _set_threads(spec, kwargs)
            if spec.endpoint:  # a served model (runtimes/openai): where, and the key's variable
                kwargs.update(endpoint=spec.endpoint, api_key_env=spec.api_key_env)
            if getattr(get_runtime(spec.runtime), "takes_slots", False):
                kwargs["slots"] = spec.batch_size  # a server mindbench starts: one slot per request in flight
            engine = get_engine(spec.model, spec.precision, device=device, runtime=spec.runtime, **kwargs)
            info = engine.info or {}
            c = record.config
            c.dtype, c.device, c.source, c.revision = (
                engine.dtype,
                engine.device,
                info.get("source"),
                info.get("revision"),
            )
            c.weights = info.get("weights", spec.weights)
            c.threads = info.get("n_threads") or _cpu_threads()
            record.load = Load(
                load_s=engine.load_s,
                cold=info.get("cold"),
                convert_s=info.get("convert_s"),
                fallback_from=info.get("fallback_from"),
            )
            if info.get("requantized_from"):  # a GGUF type made from the shipped file (runtimes/llamacpp)
                record.load.extra.update({k: info.get(k) for k in ("requantized_from", "tensor_types")})
            if engine.memory_footprint() or not info.get("served_model"):  # a remote server's weights: unknown
                mem.set_weights(engine.memory_footprint())
            if fault == "oom":
                genuine_oom(engine.device, engine.memory_footprint())
            if fault == "segfault":
                segfault()

            bpt = engine.weight_bytes()
            bw = record.roofline.bandwidth_gb_s
            guess = _EFFICIENCY * bw * 1e9 / bpt if bw and bpt else None  # roofline decode tok/s
            plan = stage_estimates(spec, guess, None)
            if plan:
                emit({"event": "plan", "eta_s": plan})
            stages.start("speed", eta_s=plan.get("speed"))
            record.speed = _measure_speed(engine, spec, measure_speed, emit)
            decode = record.speed.figure("decode_tok_s").mean
            measured = stage_estimates(spec, decode, record.speed.figure("prefill_tok_s").mean, speed=False)
            if measured:
                emit({"event": "plan", "eta_s": measured})
            record.roofline.bytes_per_token = bpt
            record.roofline.efficiency = roofline_efficiency(decode, bpt, bw)
            record.roofline.bandwidth_method = _bandwidth_method(device)

            if spec.fidelity and spec.weights != "random":
                stages.start("fidelity", eta_s=measured.get("fidelity"))
                from mindbench.suites.fidelity import for_cell

                record.fidelity = Fidelity.from_json(
                    for_cell(
                        engine,
                        cfg,
                        fid_ref,
                        fid_ref_s,
                        progress=lambda done, total, tok_s: emit(
                            {
                                "event": "progress",
                                "stage": "fidelity",
                                "done": done,
                                "total": total,
                                "tok_s": round(tok_s, 1),
                            }
                        ),
                    )
                )

            if spec.weights != "random":  # random weights have no quality to score
                for choice in spec.suites:
                    record.quality[choice.text] = Quality.from_json(
                        _evaluate(engine, choice, spec, stages, measured.get(f"suite {choice.text}"))
                    )
        record.status = "ok"
    except BaseException as e:  # noqa: BLE001 - every failure becomes a row
        status, msg = classify(e)
        record.status, record.error = status, msg[:400]
        if status == "error":
            # An unexpected exception is a bug somewhere: keep where it happened in the record
            # (the worker's log goes with its temporary directory), tokens redacted.
            from mindbench.tokens import redact, resolve_token

            record.traceback = redact(traceback.format_exc(limit=-12)[-3000:], resolve_token()[0])
        if isinstance(e, KeyboardInterrupt):
            raise
    finally:
        if mem is not None:
            mem.stop()
            record.memory = Memory.from_json(mem.to_dict())
        if engine is not None:
            try:
                engine.unload()
            except Exception:
                pass
            if (engine.info or {}).get("served_model"):
                _served_memory(record, engine.info)
        stages.stop()
        record.duration_s = round(time.perf_counter() - t_start, 2)
        record.timings_s = {**stages.seconds, "total": record.duration_s}
    return record


def _fidelity_reference(spec: CellSpec, stages: _Stages):
    """The reference distribution a non-reference cell is compared with (mindbench/suites/fidelity.py):
    from the cache, or computed now when missing. (None, 0) when this cell has no fidelity phase
    or is the reference itself; ({"error": ...}, 0) when it cannot be had."""
    if not spec.fidelity or spec.weights == "random":
        return None, 0.0
    from mindbench.suites import fidelity

    if fidelity.is_reference(spec.to_dict()):
        return None, 0.0
    stages.start("fidelity reference", key="fidelity_reference")
    try:
        # the reference runs here on the reference runtime: a cell of that runtime applies
        # --threads now (a cell of another runtime applies its own at load)
        if spec.threads and spec.runtime == fidelity.REFERENCE_RUNTIME:
            _set_threads(spec, {})
        return fidelity.ensure_reference(
            spec.model,
            spec.device,
            int(spec.fidelity_tokens or fidelity.DEFAULT_TOKENS),
            spec.cache_dir,
        )
    except Exception as e:  # noqa: BLE001 - the cell's other figures still count
        status, msg = classify(e)
        return {"error": f"no {fidelity.reference_precision(spec.device)} reference: {msg}"[:300]}, 0.0


def _served_memory(record: Record, info: dict) -> None:
    """A served model's memory is the server's: its peak resident set where mindbench started it
    (llamacpp-server), else whatever the server publishes, else "not reported"; this process's
    own peak is the client's and is kept apart, never shown as the model's."""
    mem = record.memory
    mem.extra["client_peak_rss_mb"] = mem.peak_rss_mb
    mem.peak_rss_mb = info.get("server_peak_rss_mb")
    mem.extra["server"] = {
        "peak_rss_mb": info.get("server_peak_rss_mb"),
        "how": info.get("server_memory_how"),
        "reported": info.get("server_memory") or "not reported",
    }
    if record.server is None:
        record.server = info.get("server")


def _measure_speed(engine, spec: CellSpec, measure_speed, emit=lambda ev: None) -> Speed:
    """The speed section: figures, verdict and contention, plus the settings the runtime ran
    with (threads, OpenMP wait policy), which decide CPU speed as much as the code does."""
    from mindbench.measure.speed import CI_TARGET, MAX_S

    speed = measure_speed(
        engine,
        spec.prompt_tokens,
        spec.new_tokens,
        spec.repeats,
        ci_target=spec.speed_ci or CI_TARGET,
        max_s=spec.speed_max_s or MAX_S,
        llama_bench=bool(spec.llama_bench),
        progress=lambda done, total, tok_s: emit(
            {"event": "progress", "stage": "speed", "done": done, "total": total, "tok_s": round(tok_s, 2)}
        ),
        # a served model: the server's CPU time is this measurement's, not contention
        **({"probe": engine.contention_probe()} if hasattr(engine, "contention_probe") else {}),
    )
    out = speed.to_dict()
    info = engine.info or {}
    out["runtime_settings"] = {
        "threads": info.get("n_threads") or _cpu_threads(),
        # unset means libgomp's default (spin a while, then sleep): what a user's own script gets
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY") or "default (unset)",
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
    }
    if info.get("linear_kernel"):  # transformers on the CPU: oneDNN's matmul or torch's (runtimes/onednn.py)
        out["runtime_settings"]["linear_kernel"] = info["linear_kernel"]
    return Speed.from_json(out)


def roofline_efficiency(decode_tok_s: float | None, bytes_per_token: int | None, read_gb_s: float | None):
    """Decode tok/s x bytes read per token / measured read bandwidth: the fraction of the memory
    ceiling reached (at most 1 when the ceiling is right; see measure/bandwidth.py)."""
    if not decode_tok_s or not bytes_per_token or not read_gb_s:
        return None
    return round(decode_tok_s * bytes_per_token / (read_gb_s * 1e9), 4)


def _bandwidth_method(device: str) -> str:
    from mindbench.measure.bandwidth import method

    return method(device)


def _set_threads(spec: CellSpec, kwargs: dict) -> None:
    """--threads, as the cell's runtime takes it (llama.cpp: n_threads at load; torch: now)."""
    from mindbench.runtimes import get_runtime

    get_runtime(spec.runtime).set_threads(spec.threads, kwargs)


def _cpu_threads() -> int | None:
    """CPU threads torch computes with: on a busy machine 1 thread can beat 2 by 10x (OpenMP
    threads wait on each other when a core is taken), so CPU speeds need this beside them."""
    torch = sys.modules.get("torch")
    return torch.get_num_threads() if torch is not None else None


def _evaluate(engine, choice, spec: CellSpec, stages: _Stages, eta_s: float | None = None) -> dict:
    """Score one suite (a cellspec.SuiteChoice: the suite and the subset, already split). Its
    time goes to the record's `generation` until the last answer is generated, the rest (the
    programs still running, scoring) to `execution`."""
    from mindbench.suites import evaluate

    suite = choice.text
    stages.start(f"suite {suite}", eta_s=eta_s, book=False)
    emit, t0 = stages.emit, time.perf_counter()
    generated = []  # when the last answer came

    def progress(*args, **kw):
        # suites.evaluate calls progress(stage, done, total); tolerate (done, total) too.
        stage = args[0] if args and isinstance(args[0], str) else kw.get("stage")
        nums = [a for a in args if not isinstance(a, str)]
        done = kw.get("done", nums[0] if nums else None)
        total = kw.get("total", nums[1] if len(nums) > 1 else None)
        if stage == "generate" and done is not None and done == total:
            generated.append(time.perf_counter())
        emit(
            {
                "event": "progress",
                "suite": suite,
                "stage": stage,
                "done": done,
                "total": total,
                **{k: kw[k] for k in ("tokens", "seconds") if k in kw},
            }
        )  # for the bar's tok/s

    log = spec.log_samples
    if log:
        from pathlib import Path

        log = Path(log) / f"{spec.model}-{spec.runtime}-{spec.precision}-{suite}.jsonl".replace("/", "_").replace(
            ":", "-"
        )
        log.parent.mkdir(parents=True, exist_ok=True)
    # "code:easy" scores one subset of a suite; the record keeps the whole name, so it is never
    # matched against the whole suite's score.
    try:
        out = evaluate(
            engine,
            choice.name,
            limit=spec.limit,
            batch_size=spec.batch_size,
            log_samples=log,
            sandboxed=spec.sandboxed,
            progress=progress,
            subset=choice.subset,
            **({"code_protocol": spec.code_protocol} if spec.code_protocol else {}),
        )
    finally:  # a suite that fails still shows where its time went
        end = time.perf_counter()
        gen_end = generated[0] if generated else end
        stages.add("generation", gen_end - t0)
        stages.add("execution", end - gen_end)
    return dict(out)


# --- process plumbing -------------------------------------------------------------------------


def _event_channel():
    """Keep the real stdout for events; point fd 1 at stderr so stray prints can't corrupt them."""
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = os.fdopen(os.dup(2), "w", buffering=1)
    out = os.fdopen(fd, "w", buffering=1)
    lock = threading.Lock()

    def emit(ev: dict) -> None:
        with lock:
            try:
                out.write(json.dumps(ev, default=str) + "\n")
                out.flush()
            except (OSError, ValueError):
                pass  # the parent stopped listening; the record file still carries the result

    return emit


def _die_with_parent() -> None:
    """Exit when the harness dies (e.g. SIGKILL): an orphan cell would compete with the resumed
    run for the CPU and skew its figures. On Linux the kernel delivers SIGKILL at once
    (PR_SET_PDEATHSIG; it needs no GIL, so it works mid-import or mid-kernel); elsewhere a thread
    polls the parent pid."""
    expected = int(os.environ.get(PARENT_PID_ENV) or os.getppid())
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1 = PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != expected:  # the parent died before we could ask
        os._exit(70)

    def loop():
        while True:
            time.sleep(0.5)
            if os.getppid() != expected:
                os._exit(70)

    threading.Thread(target=loop, name="mindbench-parent-watch", daemon=True).start()


def write_json_atomic(path: str, obj: dict) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, default=str)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _setup_process(cfg: dict) -> None:
    """The runtime's per-process set-up (environment that native libraries read once, e.g. the
    OpenMP wait policy), before anything imports torch. An unknown runtime is left for run_cell,
    which records it as the cell's error."""
    from mindbench.runtimes import get_runtime

    try:
        rt = get_runtime(cfg.get("runtime"))
    except MindbenchError:
        return
    rt.setup_process(cfg)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m mindbench.sweep.worker CONFIG.json RECORD.json", file=sys.stderr)
        return 2
    cfg_path, out_path = argv
    with open(cfg_path) as f:
        cfg = json.load(f)
    _setup_process(cfg)
    emit = _event_channel()
    _die_with_parent()
    record = run_cell(cfg, emit)
    write_json_atomic(out_path, record.to_json())
    emit({"event": "done", "status": record.status})
    return 0


if __name__ == "__main__":
    sys.exit(main())
